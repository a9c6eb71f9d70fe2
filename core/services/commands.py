"""The commands service: the plugins' commands, run (audited) or tried (dry run) against
the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from core.commands.bus import DEFAULT_ATTEMPTS, CommandBus, CommandResult
from core.commands.definition import CommandDefinition
from core.events import NewEvent, RecordedEvent
from core.services.handle import StoreHandle
from core.services.plugins import Plugins
from core.services.writing import AUDIT_STREAM, operator_name
from core.store import WriteTransaction

__all__ = ["COMMAND_AUDIT_TYPE", "Commands", "audit_command"]

#: The type of the ``$audit`` event each executed command commits with.
COMMAND_AUDIT_TYPE: Final = "CommandExecuted"


def audit_command(unit: WriteTransaction, result: CommandResult) -> RecordedEvent:
    """Append the ``$audit`` record of an executed command on ``unit`` (the transaction
    of its events): its name, checked data, stream, the events' ids and positions (the
    first run's for a repeated idempotency key, flagged ``duplicate``) and the operator."""
    data: dict[str, Any] = {
        "command": result.command,
        "data": dict(result.data),
        "stream": result.stream_id,
        "event_ids": [event.event_id for event in result.events],
        "positions": [event.position for event in result.events],
        "duplicate": result.duplicate,
        "user": operator_name(),
    }
    if result.idempotency_key is not None:
        data["idempotency_key"] = result.idempotency_key
    appended = unit.append_to_stream(AUDIT_STREAM, [NewEvent(COMMAND_AUDIT_TYPE, data)])
    return appended.events[0]


class Commands:
    """Plugin commands: decide from the stream's state, append at its version.

    Every execution that is not a dry run is audited: its events and a
    ``CommandExecuted`` event in ``$audit`` commit in one transaction (see
    :func:`audit_command`), a repeated idempotency key included (it appends no events
    but is recorded, ``duplicate`` true). A rejected or failed command writes nothing,
    no audit either: nothing changed, and the operator is told why at once.

    Args:
        handle: the store.
        plugins: the commands, evolvers and upcasters.
    """

    def __init__(
        self, handle: StoreHandle, plugins: Plugins, *, max_attempts: int = DEFAULT_ATTEMPTS
    ) -> None:
        self._handle = handle
        self._plugins = plugins
        #: Attempts before a command that keeps losing races gives up.
        self.max_attempts = max_attempts

    def catalog(self) -> list[CommandDefinition]:
        """Every loaded command, by name."""
        return [
            self._plugins.registry.commands[name]
            for name in sorted(self._plugins.registry.commands)
        ]

    def execute(
        self,
        name: str,
        data: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        dry_run: bool = False,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> CommandResult:
        """Run a plugin command (see :meth:`CommandBus.execute`) and audit it;
        ``dry_run`` decides and appends nothing (no audit either).

        Raises:
            UnknownCommand: no plugin defines it.
            Rejected: the data fails the field check, or the handler rejects it.
            WrongExpectedVersion: other writers kept winning.
            StoreReadOnly: the store is open read-only (and this is no dry run).
        """
        with self._handle.use() as opened:
            bus = CommandBus(opened.store, self._plugins.registry, max_attempts=self.max_attempts)
            return bus.execute(
                name,
                data,
                idempotency_key=idempotency_key,
                dry_run=dry_run,
                correlation_id=correlation_id,
                causation_id=causation_id,
                audit=None if dry_run else audit_command,
            )

    def dry_run(self, name: str, data: Mapping[str, Any]) -> CommandResult:
        """The events a command would append now, appending nothing."""
        return self.execute(name, data, dry_run=True)
