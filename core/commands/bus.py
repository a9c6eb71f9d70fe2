"""The command bus: decide from a stream's state, append at that state's version, retry."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from core.commands.definition import CommandDefinition, Rejected
from core.errors import WrongExpectedVersion
from core.events import NO_STREAM, ExpectedVersion, NewEvent, RecordedEvent, category_of
from core.registry import Registry
from core.store import AppendResult, EventStore, WriteTransaction

__all__ = ["DEFAULT_ATTEMPTS", "AuditHook", "CommandBus", "CommandResult"]

DEFAULT_ATTEMPTS: Final = 5
#: Event ids of a command run with an idempotency key are uuid5(this, command/key/index).
_IDEMPOTENCY_NAMESPACE: Final = uuid.UUID("6f1c3f64-5b1e-4b8a-9a77-2c1d3e0f9a10")


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did.

    ``events`` are the appended events (or, for a repeated idempotency key, the ones
    appended the first time); a dry run leaves them empty and fills ``proposed``.
    ``data`` is the checked data (defaults filled in); ``audit`` the audit event
    committed with the events, when the run was audited.
    """

    command: str
    stream_id: str
    expected_version: ExpectedVersion
    events: list[RecordedEvent] = field(default_factory=list)
    proposed: list[NewEvent] = field(default_factory=list)
    dry_run: bool = False
    duplicate: bool = False
    attempts: int = 1
    data: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    audit: RecordedEvent | None = None


#: Appends a run's audit event in the transaction that appends its events (before it
#: commits) and returns it as recorded.
AuditHook = Callable[[WriteTransaction, CommandResult], RecordedEvent]


class CommandBus:
    """Runs plugin commands against a store.

    Each attempt folds the target stream with the category's ``@evolver`` (events
    upcast first), lets the handler decide, and appends at exactly the version the
    state was folded from; a conflicting writer makes the next attempt decide again.

    Args:
        store: where the events go.
        registry: the loaded plugins (commands, evolvers, upcasters).
        max_attempts: attempts before a WrongExpectedVersion is given up on.
    """

    def __init__(
        self, store: EventStore, registry: Registry, *, max_attempts: int = DEFAULT_ATTEMPTS
    ) -> None:
        self._store = store
        self._registry = registry
        self.max_attempts = max_attempts

    def execute(
        self,
        name: str,
        data: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        dry_run: bool = False,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        audit: AuditHook | None = None,
    ) -> CommandResult:
        """Run a command.

        The handler decides outside any transaction (plugin code holds no write lock);
        the append then checks the version the state was folded from. With ``audit``,
        every run that is not a dry run commits in one write transaction: its events
        (none for a repeated key or an empty decision) and what ``audit`` appends. A
        rejection or a failure commits neither.

        Args:
            name: the command's name.
            data: its data, checked against the command's fields.
            idempotency_key: a retry with the same key appends nothing and returns the
                events of the first run.
            dry_run: decide, but append nothing; the events are in ``proposed``.
            correlation_id: stamped on every event (default: this command's id).
            causation_id: what caused this command (default: this command's id).
            audit: appends the run's audit event in the events' transaction.

        Raises:
            UnknownCommand: no plugin defines it.
            Rejected: the data fails the field check, or the handler rejects it.
            WrongExpectedVersion: other writers kept winning for ``max_attempts`` tries.
            StoreReadOnly: the store is open read-only (and this is no dry run).
        """
        definition = self._registry.command(name)
        checked = definition.checked_data(data)
        stream_id = definition.stream_for(checked)
        command_id = (
            str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{name}\x00{idempotency_key}"))
            if idempotency_key is not None
            else str(uuid.uuid4())
        )
        metadata: dict[str, Any] = {
            "correlation_id": correlation_id or command_id,
            "causation_id": causation_id or command_id,
            "command": name,
            "command_id": command_id,
        }
        if idempotency_key is not None:
            metadata["idempotency_key"] = idempotency_key
        run = CommandResult(
            name, stream_id, NO_STREAM, data=checked, idempotency_key=idempotency_key
        )
        attempt = 0
        while True:
            attempt += 1
            if idempotency_key is not None and not dry_run:
                earlier = self._earlier_run(stream_id, name, idempotency_key)
                if earlier:
                    expected = (
                        ExpectedVersion.exact(earlier[0].version - 1)
                        if earlier[0].version
                        else NO_STREAM
                    )
                    done = replace(run, expected_version=expected, events=earlier, attempts=attempt)
                    return self._commit(replace(done, duplicate=True), [], audit)
            state, version = self._state_of(stream_id)
            expected = NO_STREAM if version is None else ExpectedVersion.exact(version)
            proposed = self._decide(definition, state, checked, metadata, idempotency_key)
            decided = replace(run, expected_version=expected, attempts=attempt)
            if dry_run:
                return replace(decided, proposed=proposed, dry_run=True)
            try:
                return self._commit(decided, proposed, audit)
            except WrongExpectedVersion:
                if attempt >= self.max_attempts:
                    raise
                continue

    def _commit(
        self, decided: CommandResult, proposed: Sequence[NewEvent], audit: AuditHook | None
    ) -> CommandResult:
        """Append ``proposed`` at the decided version, and the audit event if asked, in
        one transaction; the result carries the recorded events."""
        if audit is None:
            if not proposed:
                return decided
            appended = self._store.append_to_stream(
                decided.stream_id, proposed, decided.expected_version
            )
            return _with_appended(decided, appended)
        with self._store.transaction() as unit:
            done = decided
            if proposed:
                appended = unit.append_to_stream(
                    decided.stream_id, proposed, decided.expected_version
                )
                done = _with_appended(decided, appended)
            return replace(done, audit=audit(unit, done))

    def _state_of(self, stream_id: str) -> tuple[Any, int | None]:
        """The stream folded by its category's evolver, and the version it was folded to."""
        folding = self._registry.evolvers.get(category_of(stream_id))
        state = folding.initial() if folding is not None else None
        version: int | None = None
        upcast = self._registry.upcasters.upcast
        for event in self._store.read_stream(stream_id):
            version = event.version
            if folding is not None:
                state = folding.function(state, upcast(event))
        return state, version

    def _decide(
        self,
        definition: CommandDefinition,
        state: Any,
        data: dict[str, Any],
        metadata: dict[str, Any],
        idempotency_key: str | None,
    ) -> list[NewEvent]:
        decided = definition.handler(state, dict(data))
        if decided is None:
            return []
        events: list[NewEvent] = []
        for index, item in enumerate(decided):
            if isinstance(item, NewEvent):
                event_type, event_data, event_metadata = item.type, item.data, item.metadata
            elif isinstance(item, tuple) and len(item) in (2, 3):
                event_type, event_data = item[0], item[1]
                event_metadata = item[2] if len(item) == 3 else {}
            else:
                raise Rejected(
                    f"the {definition.name} handler returned {item!r}; expected "
                    "(type, data), (type, data, metadata) or NewEvent"
                )
            stamped = {**event_metadata, **metadata}
            if "schema_version" not in stamped:
                current = self._registry.upcasters.current_version(event_type)
                if current > 1:
                    stamped["schema_version"] = current
            if idempotency_key is not None:
                event_id = str(
                    uuid.uuid5(
                        _IDEMPOTENCY_NAMESPACE, f"{definition.name}\x00{idempotency_key}\x00{index}"
                    )
                )
                events.append(NewEvent(event_type, event_data, stamped, event_id))
            else:
                events.append(NewEvent(event_type, event_data, stamped))
        return events

    def _earlier_run(self, stream_id: str, name: str, key: str) -> list[RecordedEvent]:
        """The events a run of this command with this key appended, if there was one."""
        first_id = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{name}\x00{key}\x000"))
        first = self._store.event_by_id(first_id)
        if first is None:
            return []
        found = []
        for event in self._store.read_stream(first.stream_id, from_version=first.version):
            if (
                event.metadata.get("idempotency_key") != key
                or event.metadata.get("command") != name
            ):
                break
            found.append(event)
        return found


def _with_appended(decided: CommandResult, appended: AppendResult) -> CommandResult:
    return replace(decided, events=appended.events, duplicate=appended.duplicate)
