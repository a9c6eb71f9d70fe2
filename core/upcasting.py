"""Upcasters: turning old event schemas into the current one on read, raw payloads untouched."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from core.errors import EventscopeError
from core.events import RecordedEvent

__all__ = ["UpcastFailed", "UpcasterDefinition", "Upcasters", "schema_version_of", "upcaster"]

_UPCASTER = "__eventscope_upcaster__"
JsonObject = dict[str, Any]


def schema_version_of(event: RecordedEvent) -> int:
    """``metadata.schema_version`` (default 1)."""
    version = event.metadata.get("schema_version", 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


@dataclass(frozen=True, slots=True)
class UpcasterDefinition:
    """Turns ``event_type`` data of schema ``from_version`` into ``from_version + 1``."""

    event_type: str
    from_version: int
    function: Callable[[JsonObject], JsonObject]
    module: str = ""

    def describe(self) -> str:
        """``OrderPlaced:1->2``."""
        return f"{self.event_type}:{self.from_version}->{self.from_version + 1}"


def upcaster(
    event_type: str, *, from_version: int
) -> Callable[[Callable[[JsonObject], JsonObject]], Callable[[JsonObject], JsonObject]]:
    """Register ``upcast(data) -> data`` from one schema version of an event type to the next.

    It receives a copy of the data, so it may change and return it.
    """
    if not isinstance(from_version, int) or from_version < 1:
        raise TypeError("@upcaster needs from_version, an integer >= 1")

    def register(
        function: Callable[[JsonObject], JsonObject],
    ) -> Callable[[JsonObject], JsonObject]:
        setattr(
            function,
            _UPCASTER,
            UpcasterDefinition(event_type, from_version, function, function.__module__),
        )
        return function

    return register


def upcaster_of(value: object) -> UpcasterDefinition | None:
    """The upcaster a function was registered as, if any."""
    found = getattr(value, _UPCASTER, None)
    return found if isinstance(found, UpcasterDefinition) else None


class UpcastFailed(EventscopeError):
    """An upcaster raised or returned something that is not a JSON object."""

    def __init__(self, event: RecordedEvent, step: UpcasterDefinition, reason: str) -> None:
        super().__init__(
            f"upcasting {step.describe()} failed at position {event.position} "
            f"({event.stream_id} v{event.version}): {reason}"
        )
        self.position = event.position
        self.event_id = event.event_id
        self.step = step.describe()
        self.reason = reason


class Upcasters:
    """The upcasters in force, chained by (event type, schema version)."""

    def __init__(self, definitions: Iterable[UpcasterDefinition] = ()) -> None:
        self._steps: dict[tuple[str, int], UpcasterDefinition] = {}
        self._types: set[str] = set()
        for definition in definitions:
            self.add(definition)

    def add(self, definition: UpcasterDefinition) -> None:
        """Add one step; a second step for the same (type, version) is refused."""
        key = (definition.event_type, definition.from_version)
        if key in self._steps:
            raise ValueError(f"two upcasters for {definition.describe()}")
        self._steps[key] = definition
        self._types.add(definition.event_type)

    def __len__(self) -> int:
        return len(self._steps)

    def current_version(self, event_type: str) -> int:
        """The schema version events of this type are written in today (1 without upcasters)."""
        version = 1
        while (event_type, version) in self._steps:
            version += 1
        return version

    def applies_to(self, event: RecordedEvent) -> bool:
        """Whether an upcaster would change this event."""
        return (event.type, schema_version_of(event)) in self._steps

    def upcast(self, event: RecordedEvent, *, keep_raw: bool = True) -> RecordedEvent:
        """The event in its current schema (the same object when nothing applies).

        Args:
            keep_raw: give each step a copy, so the event passed in stays as stored (an
                inspector shows both). A reader that drops the raw event (a projection
                runner) passes False and saves the copy.

        Raises:
            UpcastFailed: a step raised or returned something that is not a dict.
        """
        if event.type not in self._types:
            return event
        version = schema_version_of(event)
        step = self._steps.get((event.type, version))
        if step is None:
            return event
        data: Any = event.data
        while step is not None:
            try:
                data = step.function(copy.deepcopy(data) if keep_raw else data)
            except Exception as error:
                raise UpcastFailed(event, step, f"{type(error).__name__}: {error}") from error
            if not isinstance(data, dict):
                raise UpcastFailed(event, step, f"returned {type(data).__name__}, not a dict")
            version += 1
            step = self._steps.get((event.type, version))
        return event._replace(data=data, metadata={**event.metadata, "schema_version": version})

    def upcast_all(
        self,
        events: Iterable[RecordedEvent],
        on_failure: Callable[[UpcastFailed], None],
        *,
        keep_raw: bool = True,
    ) -> Iterator[RecordedEvent]:
        """Upcast a stream of events; a failure is reported and the raw event passed on
        (with ``keep_raw=False`` it may have been changed by the steps before the one
        that failed)."""
        for event in events:
            try:
                yield self.upcast(event, keep_raw=keep_raw)
            except UpcastFailed as failure:
                on_failure(failure)
                yield event
