"""A test kit for plugin authors: "given these events, the read model is this".

Example::

    from core.testkit import given

    def test_balances():
        history = given(
            ("account-1", "Deposited", {"account": "1", "amount": 10}),
            ("account-1", "Withdrawn", {"account": "1", "amount": 3}),
        )
        assert history.project(Balances) == {"1": {"balance": 7}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.commands.definition import CommandDefinition, EvolverDefinition, command_of, evolver_of
from core.events import NewEvent, RecordedEvent, new_event_id
from core.projections.definition import Projection
from core.projections.fold import fold_projection
from core.upcasting import UpcasterDefinition, Upcasters, upcaster_of

__all__ = ["History", "given", "recorded"]

_START = datetime(2026, 1, 1, tzinfo=UTC)
EventSpec = (
    RecordedEvent
    | tuple[str, str, Mapping[str, Any]]
    | tuple[str, str, Mapping[str, Any], Mapping[str, Any]]
)


def recorded(
    stream_id: str,
    event_type: str,
    data: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    position: int = 1,
    version: int = 0,
    at: datetime | None = None,
) -> RecordedEvent:
    """One RecordedEvent, for tests."""
    return RecordedEvent(
        position,
        stream_id,
        version,
        event_type,
        dict(data or {}),
        dict(metadata or {}),
        new_event_id(),
        at or _START + timedelta(minutes=position),
    )


class History:
    """Events given to a test, with positions, versions and times filled in."""

    def __init__(self, events: Sequence[RecordedEvent]) -> None:
        self.events = list(events)

    def project(
        self, projection: type[Projection], *, upcasters: Sequence[Callable[..., Any]] = ()
    ) -> dict[str, dict[str, Any]]:
        """The read model ``projection`` builds from these events ({key: doc}, sorted).

        Args:
            projection: the Projection subclass.
            upcasters: ``@upcaster`` functions to apply on read, as the console would.
        """
        chain = _upcasters(upcasters)
        return fold_projection(projection, self._in_schemas(chain), upcasters=chain)

    def decide(
        self,
        handler: Callable[..., Any],
        data: Mapping[str, Any],
        *,
        evolve: Callable[..., Any] | None = None,
        upcasters: Sequence[Callable[..., Any]] = (),
    ) -> list[tuple[str, dict[str, Any]]]:
        """The events a ``@command`` handler decides, given this history as its stream.

        Args:
            handler: the ``@command`` function.
            data: the command's data (checked against its fields first).
            evolve: the ``@evolver`` function folding the stream (None: state is None).
            upcasters: ``@upcaster`` functions to apply before folding.

        Raises:
            Rejected: the handler (or the field check) refuses the command.
        """
        definition = command_of(handler)
        if not isinstance(definition, CommandDefinition):
            raise TypeError(f"{handler!r} is not a @command function")
        checked = definition.checked_data(data)
        state = None
        if evolve is not None:
            folding = evolver_of(evolve)
            if not isinstance(folding, EvolverDefinition):
                raise TypeError(f"{evolve!r} is not an @evolver function")
            chain = _upcasters(upcasters)
            state = folding.fold([chain.upcast(event) for event in self._in_schemas(chain)])
        decided = []
        for item in definition.handler(state, checked):
            if isinstance(item, NewEvent):
                decided.append((item.type, dict(item.data)))
            else:
                decided.append((item[0], dict(item[1])))
        return decided

    def _in_schemas(self, chain: Upcasters) -> list[RecordedEvent]:
        """Events without a ``schema_version`` are taken to be in the current schema."""
        return [
            event
            if "schema_version" in event.metadata or chain.current_version(event.type) == 1
            else event._replace(
                metadata={**event.metadata, "schema_version": chain.current_version(event.type)}
            )
            for event in self.events
        ]


def _upcasters(functions: Sequence[Callable[..., Any]]) -> Upcasters:
    definitions = [upcaster_of(function) for function in functions]
    missing = [f for f, d in zip(functions, definitions, strict=True) if d is None]
    if missing:
        raise TypeError(f"not @upcaster functions: {missing!r}")
    return Upcasters(d for d in definitions if isinstance(d, UpcasterDefinition))


def given(*events: EventSpec) -> History:
    """A history from events: RecordedEvents, or ``(stream, type, data[, metadata])``.

    Positions count from 1, each stream's versions from 0, and times advance a minute
    per event from 2026-01-01T00:00Z (a RecordedEvent keeps its own time). An event
    whose metadata has no ``schema_version`` is taken to be in the current schema (as
    events the command bus appends are); give ``{"schema_version": 1}`` for an old one.
    """
    versions: dict[str, int] = {}
    built: list[RecordedEvent] = []
    for position, spec in enumerate(events, start=1):
        data: Mapping[str, Any]
        metadata: Mapping[str, Any] = {}
        if isinstance(spec, RecordedEvent):
            stream_id, event_type, data = spec.stream_id, spec.type, spec.data
            metadata = spec.metadata
        else:
            stream_id, event_type, data = spec[0], spec[1], spec[2]
            if len(spec) > 3:
                metadata = spec[3]
        version = versions.get(stream_id, -1) + 1
        versions[stream_id] = version
        at = spec.recorded_at if isinstance(spec, RecordedEvent) else None
        built.append(
            recorded(
                stream_id, event_type, data, metadata, position=position, version=version, at=at
            )
        )
    return History(built)
