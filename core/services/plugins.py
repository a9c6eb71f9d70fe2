"""The plugins service: what the loaded plugins contribute, and reloading them from disk."""

from __future__ import annotations

import threading
from collections.abc import Callable

from core.errors import EventscopeError
from core.registry import PluginInfo, Registry

__all__ = ["Plugins"]


class Plugins:
    """The registry in use, replaced whole by :meth:`reload`.

    Other services read :attr:`registry` at each call, so a reload reaches them all;
    :attr:`generation` tells them when what they built from the old one (projection
    runners, fold snapshots) must go.

    Args:
        registry: the plugins loaded now.
        rediscover: loads the plugins again from the same places (None: the registry
            was given whole, and cannot be reloaded).
    """

    def __init__(
        self, registry: Registry, rediscover: Callable[[], Registry] | None = None
    ) -> None:
        self._registry = registry
        self._rediscover = rediscover
        self._generation = 1
        self._lock = threading.Lock()

    @property
    def registry(self) -> Registry:
        """Everything the loaded plugins contribute."""
        return self._registry

    @property
    def generation(self) -> int:
        """Grows by one at each reload."""
        return self._generation

    def catalog(self) -> list[PluginInfo]:
        """Every plugin found, loaded or failed, in load order."""
        return list(self._registry.plugins)

    def reload(self) -> list[PluginInfo]:
        """Load every plugin again from disk (a file changed since sees its new code);
        returns the new catalog.

        Raises:
            EventscopeError: these plugins were given, not discovered.
        """
        if self._rediscover is None:
            raise EventscopeError("these plugins were given, not found on disk: no reload")
        registry = self._rediscover()
        with self._lock:
            self._registry = registry
            self._generation += 1
        return self.catalog()
