"""How a plugin defines a projection: a ``Projection`` subclass with ``@handles`` methods."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Final, Protocol, TypeVar

from core.events import RecordedEvent

__all__ = ["DictView", "Projection", "View", "copy_document", "handles"]

JsonDoc = dict[str, Any]
_Handler = TypeVar("_Handler", bound=Callable[..., Any])
_HANDLES = "__eventscope_handles__"
#: Values a copy can share with the original: nothing can change them in place.
_IMMUTABLE: Final = frozenset({str, int, float, bool, type(None)})


class View(Protocol):
    """A read model as a projection handler sees it: JSON documents by string key."""

    def get(self, key: str) -> JsonDoc | None:
        """A copy of the document at ``key``, or None."""

    def put(self, key: str, doc: JsonDoc) -> None:
        """Store ``doc`` at ``key`` (a copy is kept)."""

    def delete(self, key: str) -> None:
        """Remove the document at ``key`` (nothing happens if there is none)."""


def handles(*event_types: str) -> Callable[[_Handler], _Handler]:
    """Mark a projection method as the handler of one or more event types.

    Example::

        @handles("Deposited", "Withdrawn")
        def changed(self, view, event): ...
    """
    if not event_types or not all(isinstance(t, str) and t for t in event_types):
        raise TypeError("@handles needs one or more event type names")

    def mark(function: _Handler) -> _Handler:
        setattr(function, _HANDLES, (*getattr(function, _HANDLES, ()), *event_types))
        return function

    return mark


class Projection:
    """Base class of a projection (a read model built from events).

    Subclasses set ``name`` (unique) and ``version`` (a new version is built side by
    side with the old one) and mark handlers with ``@handles``. A handler must be a
    pure function of (view, event): that is what makes replay, time travel and
    comparison correct.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    #: Seconds between scheduled runs: near real time by default.
    interval: ClassVar[float] = 0.5
    #: Seconds one handler call may take before the projection is faulted at its event:
    #: checked at each view call and when the handler returns (see ``isolated``).
    time_limit: ClassVar[float] = 10.0
    #: Apply the handlers in a child process that is killed when a call runs past
    #: ``time_limit``: the hard stop for handlers that can block in C code (a socket,
    #: ``time.sleep``) or loop without calling the view, at the price of a process and
    #: of sending every event to it.
    isolated: ClassVar[bool] = False
    #: MiB an isolated projection's process may allocate beyond what it holds once its
    #: plugin is loaded: past it an allocation fails (MemoryError) and the projection is
    #: faulted at that event, instead of the machine running out of memory. Only an
    #: isolated projection can be held to it (in-process, all memory is the console's).
    memory_limit: ClassVar[int] = 1024
    #: Event type -> name of the method handling it; filled in for every subclass.
    handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attribute, value in vars(klass).items():
                for event_type in getattr(value, _HANDLES, ()):
                    table[event_type] = attribute
        cls.handlers = table

    @classmethod
    def reference(cls) -> str:
        """``name:version``, the identity of this read model."""
        return f"{cls.name}:{cls.version}"

    @classmethod
    def event_types(cls) -> tuple[str, ...]:
        """The event types this projection handles, sorted."""
        return tuple(sorted(cls.handlers))

    def apply(self, view: View, event: RecordedEvent) -> bool:
        """Apply one event; returns whether a handler ran (unhandled types are skipped)."""
        method = self.handlers.get(event.type)
        if method is None:
            return False
        getattr(self, method)(view, event)
        return True


def copy_document(doc: JsonDoc) -> JsonDoc:
    """A copy of a document that shares nothing mutable with it.

    A JSON document is dicts and lists of text, numbers, booleans and nulls: those
    containers are copied and the scalars shared, which costs a tenth of
    ``copy.deepcopy`` (no memo of every object visited). Anything else a handler put
    in a document is deep-copied as before.
    """
    copied = doc.copy()
    for value in copied.values():
        if type(value) not in _IMMUTABLE:
            break
    else:
        return copied  # a flat document (most are): the shallow copy is a full one
    for key, value in copied.items():
        if type(value) not in _IMMUTABLE:
            copied[key] = _copy_value(value)
    return copied


def _copy_value(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return copy_document(value)
    if kind is list:
        return [item if type(item) in _IMMUTABLE else _copy_value(item) for item in value]
    return copy.deepcopy(value)


class DictView:
    """A read model held in a dict; ``get`` returns copies, as every view must."""

    def __init__(self, documents: dict[str, JsonDoc] | None = None) -> None:
        self.documents: dict[str, JsonDoc] = documents if documents is not None else {}

    def get(self, key: str) -> JsonDoc | None:
        """A copy of the document, so a handler can change it freely."""
        doc = self.documents.get(key)
        return None if doc is None else copy_document(doc)

    def put(self, key: str, doc: JsonDoc) -> None:
        """Store a copy of ``doc``: what the handler does with it afterwards changes nothing."""
        if not isinstance(key, str):
            raise TypeError(f"read-model keys are text, not {type(key).__name__}")
        if not isinstance(doc, dict):
            raise TypeError(f"read-model documents are JSON objects, not {type(doc).__name__}")
        self.documents[key] = copy_document(doc)

    def delete(self, key: str) -> None:
        """Remove the document if it is there."""
        self.documents.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.documents))

    def __len__(self) -> int:
        return len(self.documents)
