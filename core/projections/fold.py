"""Folding a projection over events in memory: the replay fallback and the plugin test kit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from core.events import RecordedEvent
from core.projections.definition import DictView, Projection
from core.upcasting import Upcasters, UpcastFailed

__all__ = ["fold_projection"]


def _raise(failure: UpcastFailed) -> None:
    raise failure


def fold_projection(
    projection: type[Projection],
    events: Iterable[RecordedEvent],
    *,
    upcasters: Upcasters | None = None,
    on_upcast_failure: Callable[[UpcastFailed], None] = _raise,
) -> dict[str, dict[str, Any]]:
    """The read model ``projection`` builds from ``events`` (oldest first), as {key: doc}.

    Events are upcast first (a failure is raised, unless ``on_upcast_failure`` takes
    it, in which case the raw event is applied).
    """
    view = DictView()
    instance = projection()
    source = events if upcasters is None else upcasters.upcast_all(events, on_upcast_failure)
    for event in source:
        instance.apply(view, event)
    return {key: view.documents[key] for key in sorted(view.documents)}
