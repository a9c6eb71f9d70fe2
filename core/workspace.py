"""The bootstrap: opens one store handle, loads the plugins and wires the services.

Panels and commands take the one service they use (``workspace.events``,
``.writing``, ``.projections``, ``.timetravel``, ``.commands``, ``.plugins``);
nothing else holds the store. See docs/architecture.md for who uses which.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from core.registry import Registry
from core.services.commands import Commands
from core.services.events import EventQueries
from core.services.handle import StoreHandle
from core.services.plugins import Plugins
from core.services.projections import ProjectionService
from core.services.timetravel import TimeTravel
from core.services.writing import Writing
from core.sources import ForeignSource, default_models_location, is_foreign, open_source
from core.store import EventStore, SqlEventStore, open_store
from core.store.sql.engines import is_url

__all__ = ["Workspace"]


def _open_with_models(
    location: str, models: str | os.PathLike[str] | None, *, read_only: bool
) -> ForeignSource:
    """Another tool's store, read-only, with its sidecar store of read models attached."""
    source = open_source(location)
    try:
        where = models if models is not None else default_models_location(location)
        if read_only and not is_url(str(where)) and not Path(where).exists():
            return source  # nothing built yet, and a read-only open creates nothing
        if not read_only and not is_url(str(where)):
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        source.models = SqlEventStore.open(where, read_only=read_only)
    except BaseException:
        source.close()
        raise
    return source


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
        models: str | os.PathLike[str] | None = None,
    ) -> Workspace:
        """Open the store at a path or URL (read-only unless asked) and load the plugins.

        Another tool's store (``eventsourcing+…``, ``messagedb+…``) is always read
        only; its read models live in a sidecar Eventscope store, ``models`` (default:
        :func:`~core.sources.default_models_location`), opened in the mode asked. Read-only,
        a sidecar that does not exist yet is not created: there are no read models then.

        Raises:
            StoreUnusable: the store is missing (read-only), corrupt, newer or unreachable.
        """
        discover = functools.partial(Registry.discover, plugin_dirs)
        registry = discover() if load_plugins else Registry()
        if is_foreign(str(location)):
            store: EventStore = _open_with_models(str(location), models, read_only=read_only)
        else:
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
        store = self.handle.store
        self.projections.close()
        self.handle.close()
        if isinstance(store, ForeignSource) and store.models is not None:
            store.models.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
