"""Demo histories: plugins contribute them (``@demo_history``); the CLI and GUI write them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from core.events import NewEvent, to_micros
from core.store import EventStore, ImportRecord, ImportResult
from core.store.port import prepare_events

__all__ = ["DemoDefinition", "DemoEvent", "demo_history", "demo_of", "write_demo"]

_DEMO = "__eventscope_demo__"


@dataclass(frozen=True, slots=True)
class DemoEvent:
    """One event of a demo history, with the stream version and time it must have."""

    stream_id: str
    event: NewEvent
    version: int
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class DemoDefinition:
    """A demo history generator: ``generate(orders=N, seed=S)`` yields DemoEvents in order."""

    name: str
    generate: Callable[..., Iterable[DemoEvent]]
    module: str = ""


def demo_history(
    name: str,
) -> Callable[[Callable[..., Iterable[DemoEvent]]], Callable[..., Iterable[DemoEvent]]]:
    """Register a deterministic demo history generator (same seed, same events)."""

    def register(
        function: Callable[..., Iterable[DemoEvent]],
    ) -> Callable[..., Iterable[DemoEvent]]:
        setattr(function, _DEMO, DemoDefinition(name, function, function.__module__))
        return function

    return register


def demo_of(value: object) -> DemoDefinition | None:
    """The demo a function was registered as, if any."""
    found = getattr(value, _DEMO, None)
    return found if isinstance(found, DemoDefinition) else None


def write_demo(store: EventStore, events: Iterable[DemoEvent]) -> ImportResult:
    """Append a demo history in one all-or-nothing import (re-writing it appends nothing)."""
    return store.import_records(_records(events))


def _records(events: Iterable[DemoEvent]) -> Iterator[ImportRecord]:
    for line, item in enumerate(events, start=1):
        (prepared,) = prepare_events([item.event])
        yield ImportRecord(
            line, item.stream_id, prepared, item.version, to_micros(item.recorded_at)
        )
