"""The bootstrap: opens one store handle, loads the plugins and wires the services.

Panels and commands take the one service they use (``workspace.events``,
``.writing``, ``.projections``, ``.timetravel``, ``.commands``, ``.plugins``);
nothing else holds the store. See docs/architecture.md for who uses which.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

from core.registry import Registry
from core.services.commands import Commands
from core.services.events import EventQueries
from core.services.handle import StoreHandle
from core.services.plugins import Plugins
from core.services.projections import ProjectionService
from core.services.timetravel import TimeTravel
from core.services.writing import Writing
from core.store import EventStore, open_store

__all__ = ["Workspace"]


class Workspace:
    """An open store and the services over it.

    Args:
        store: the event store (SQLite, PostgreSQL or in memory); the workspace owns it.
        registry: the loaded plugins (default: none).
        rediscover: loads the plugins again for ``plugins.reload()`` (None: no reload).
    """

    def __init__(
        self,
        store: EventStore,
        registry: Registry | None = None,
        *,
        rediscover: Callable[[], Registry] | None = None,
    ) -> None:
        self.handle = StoreHandle(store)
        self.plugins = Plugins(registry if registry is not None else Registry(), rediscover)
        self.events = EventQueries(self.handle, self.plugins)
        self.writing = Writing(self.handle, self.plugins)
        self.projections = ProjectionService(self.handle, self.plugins, self.writing)
        self.timetravel = TimeTravel(self.handle, self.plugins)
        self.commands = Commands(self.handle, self.plugins)

    @classmethod
    def open(
        cls,
        location: str,
        *,
        read_only: bool = True,
        plugin_dirs: Sequence[str | os.PathLike[str]] = (),
        load_plugins: bool = True,
    ) -> Workspace:
        """Open the store at a path or URL (read-only unless asked) and load the plugins.

        Raises:
            StoreUnusable: the store is missing (read-only), corrupt, newer or unreachable.
        """
        discover = functools.partial(Registry.discover, plugin_dirs)
        registry = discover() if load_plugins else Registry()
        store = open_store(location, read_only=read_only)
        return cls(store, registry, rediscover=discover if load_plugins else None)

    @property
    def registry(self) -> Registry:
        """The plugins loaded now."""
        return self.plugins.registry

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self.handle.read_only

    @property
    def location(self) -> str:
        """The store's path or URL, as given (a URL may hold a password)."""
        return self.handle.location

    @property
    def display_location(self) -> str:
        """The store's path or URL fit to show: a password becomes ``***``."""
        return self.handle.display_location

    def close(self) -> None:
        """Stop the projection runners, drain and close the store (final)."""
        self.projections.close()
        self.handle.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
