"""The commands service: the plugins' commands, run or tried (dry run) against the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.commands.bus import DEFAULT_ATTEMPTS, CommandBus, CommandResult
from core.commands.definition import CommandDefinition
from core.services.handle import StoreHandle
from core.services.plugins import Plugins

__all__ = ["Commands"]


class Commands:
    """Plugin commands: decide from the stream's state, append at its version.

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
        """Run a plugin command (see :meth:`CommandBus.execute`); ``dry_run`` decides
        and appends nothing.

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
            )

    def dry_run(self, name: str, data: Mapping[str, Any]) -> CommandResult:
        """The events a command would append now, appending nothing."""
        return self.execute(name, data, dry_run=True)
