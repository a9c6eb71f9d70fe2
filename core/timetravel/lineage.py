"""Stepping and lineage: what one event changed in a read model, and where a document
came from (every event that changed it, with the change each made).

Both rest on handlers being pure functions of (view, event): the effect of the event at
position P is its handler run once on the read model as it was at P - 1, which is
exactly the change the read model's history recorded at P.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from core.events import RecordedEvent
from core.projections.definition import DictView, JsonDoc, Projection
from core.timetravel.diff import changed_paths

__all__ = ["DocumentChange", "EventEffect", "apply_one_event", "changes_by_fold", "changes_of"]


@dataclass(frozen=True, slots=True)
class DocumentChange:
    """One document changed by one event: before and after (None: absent) and the paths."""

    key: str
    position: int
    before: JsonDoc | None
    after: JsonDoc | None
    paths: tuple[str, ...]
    event: RecordedEvent | None = None  # the event that made it, when looked up

    @property
    def kind(self) -> str:
        """``added``, ``removed`` or ``changed``."""
        if self.before is None:
            return "added"
        return "removed" if self.after is None else "changed"

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON-ready values (the event as its contract JSON)."""
        shown: dict[str, Any] = {
            "key": self.key,
            "position": self.position,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
            "paths": list(self.paths),
        }
        if self.event is not None:
            shown["event"] = self.event.to_dict()
        return shown


@dataclass(frozen=True, slots=True)
class EventEffect:
    """What one event did to a read model: the documents it changed, in key order."""

    event: RecordedEvent
    handled: bool  # whether the projection has a handler for its type
    changes: tuple[DocumentChange, ...]

    def to_dict(self) -> dict[str, Any]:
        """The effect as JSON-ready values."""
        return {
            "event": self.event.to_dict(),
            "handled": self.handled,
            "changes": [change.to_dict() for change in self.changes],
        }


def _change(
    key: str, position: int, before: JsonDoc | None, after: JsonDoc | None
) -> DocumentChange:
    """A document change with its paths (every top-level field for an added/removed one)."""
    if before is not None and after is not None:
        paths = tuple(changed_paths(before, after))
    else:
        paths = ()
    return DocumentChange(key, position, before, after, paths)


class _StepView:
    """A view over a read model as it was before an event: reads load documents on demand,
    writes are kept aside, so the event's effect is what differs afterwards."""

    def __init__(self, load: Callable[[str], JsonDoc | None]) -> None:
        self._load = load
        self.before: dict[str, JsonDoc | None] = {}
        self.after: dict[str, JsonDoc | None] = {}

    def _current(self, key: str) -> JsonDoc | None:
        if key in self.after:
            return self.after[key]
        if key not in self.before:
            self.before[key] = self._load(key)
        return self.before[key]

    def get(self, key: str) -> JsonDoc | None:
        found = self._current(key)
        return None if found is None else _copy(found)

    def put(self, key: str, doc: JsonDoc) -> None:
        if not isinstance(key, str):
            raise TypeError(f"read-model keys are text, not {type(key).__name__}")
        if not isinstance(doc, dict):
            raise TypeError(f"read-model documents are JSON objects, not {type(doc).__name__}")
        self._current(key)
        self.after[key] = _copy(doc)

    def delete(self, key: str) -> None:
        self._current(key)
        self.after[key] = None


def apply_one_event(
    projection: type[Projection], event: RecordedEvent, load: Callable[[str], JsonDoc | None]
) -> EventEffect:
    """Run ``event`` through the projection on the read model just before it.

    Args:
        load: a document of the read model as it was before the event (None: absent).
    """
    view = _StepView(load)
    handled = projection().apply(view, event)
    changes = [
        _change(key, event.position, view.before[key], after)
        for key, after in sorted(view.after.items())
        if view.before[key] != after or _json(view.before[key]) != _json(after)
    ]
    return EventEffect(event, handled, tuple(changes))


def changes_of(
    key: str, versions: Iterable[tuple[int, int, JsonDoc]], current: int
) -> list[DocumentChange]:
    """A document's changes from its stored versions ``(valid_from, valid_to, doc)`` in
    order: each version was made by the event at its ``valid_from``; a version that ends
    with no successor starting there was deleted at its ``valid_to`` (``current`` is the
    ``valid_to`` of a version still valid)."""
    found: list[DocumentChange] = []
    previous: tuple[int, int, JsonDoc] | None = None
    for valid_from, valid_to, doc in versions:
        before = None
        if previous is not None and previous[1] == valid_from:
            before = previous[2]
        elif previous is not None and previous[1] != current:
            found.append(_change(key, previous[1], previous[2], None))
        found.append(_change(key, valid_from, before, doc))
        previous = (valid_from, valid_to, doc)
    if previous is not None and previous[1] != current:
        found.append(_change(key, previous[1], previous[2], None))
    return found


def changes_by_fold(
    projection: type[Projection], events: Iterable[RecordedEvent], key: str
) -> list[DocumentChange]:
    """A document's changes found by folding ``events`` (upcast, in order): the fallback
    for a read model whose history does not reach back far enough."""
    view = DictView()
    instance = projection()
    previous: JsonDoc | None = None
    found: list[DocumentChange] = []
    for event in events:
        if not instance.apply(view, event):
            continue
        now = view.documents.get(key)  # replaced, never changed in place: no copy needed
        if now is not previous and _json(now) != _json(previous):
            found.append(_change(key, event.position, previous, now))
        previous = now
    return found


def _copy(doc: JsonDoc) -> JsonDoc:
    copied: JsonDoc = orjson.loads(orjson.dumps(doc))
    return copied


def _json(doc: JsonDoc | None) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
