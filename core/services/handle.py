"""One store handle: the open store and its read models, swapped only once drained.

Every service reaches the store through :meth:`StoreHandle.use`, never by keeping a
reference: the console switches a store between read-only and writable while panels
are loading, and a query still running on the old connections must not see them
closed under it, nor may a new query start on a store about to go.

A swap (:meth:`StoreHandle.switch`) opens the new store first (a failure changes
nothing), then stops new operations from starting, interrupts the ones running on the
old store (their statements stop and raise ``Cancelled`` in their own threads: no
exception is ever injected into a thread), waits until every one of them has left,
installs the new store and only then closes the old one. Operations asked for during
the swap wait for it and run on the new store. :meth:`StoreHandle.close` drains the
same way and is final: a closed handle raises ``StoreClosed``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from core.errors import StoreBusy, StoreClosed, StoreError
from core.projections.history import HistoryStore, open_history
from core.sources import ForeignSource, read_only_error
from core.store import EventStore, SqlEventStore
from core.store.sql import display_location

__all__ = ["DRAIN_SECONDS", "OpenStore", "StoreHandle"]

#: How long a swap or a close waits for the operations running on the old store.
DRAIN_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class OpenStore:
    """The store in use and its read models (None: it keeps none), as one unit.

    ``generation`` grows by one at each swap, so a service can tell that what it
    derived from an earlier store (a projection runner, a cache) must be rebuilt.
    """

    store: EventStore
    history: HistoryStore | None
    generation: int

    def require_history(self) -> HistoryStore:
        """The read models, or a StoreError saying why the store keeps none."""
        if self.history is None:
            raise StoreError(
                f"{display_location(self.store.location)} keeps no read models "
                "(an older store opened read-only)"
            )
        return self.history


def reopen_store(store: EventStore, *, read_only: bool) -> EventStore:
    """The same store opened again in the other mode.

    Raises:
        StoreError: the store cannot be opened in another mode (the in-memory store).
        StoreUnusable: it can no longer be opened.
    """
    if isinstance(store, ForeignSource):
        raise read_only_error(store.display_location, store.tool)
    if not isinstance(store, SqlEventStore):
        raise StoreError(f"{store.location}: an in-memory store has no read-only mode")
    return SqlEventStore.open(store.location, read_only=read_only)


class StoreHandle:
    """The one open store of a workspace, switched and closed safely.

    Args:
        store: the store to start with (the handle owns it and closes it).
        drain_seconds: how long a swap or a close waits for running operations.
    """

    def __init__(self, store: EventStore, *, drain_seconds: float = DRAIN_SECONDS) -> None:
        self.drain_seconds = drain_seconds
        self._opened = OpenStore(store, open_history(store), 1)
        self._changed = threading.Condition()
        self._swap_lock = threading.Lock()
        self._users = 0
        self._held: dict[int, int] = {}  # thread id -> operations it has entered
        self._swapping = False
        self._closed = False

    # -- what it holds ------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """The store's path or URL, as given (a URL may hold a password)."""
        return self._opened.store.location

    @property
    def display_location(self) -> str:
        """The store's path or URL fit to show: a password becomes ``***``."""
        return display_location(self._opened.store.location)

    @property
    def read_only(self) -> bool:
        """Whether the store in use refuses writes."""
        return self._opened.store.read_only

    @property
    def store(self) -> EventStore:
        """The store in use at this moment, for tests and diagnostics. Services never
        keep it: they go through :meth:`use`, which a swap waits for."""
        return self._opened.store

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @property
    def running(self) -> int:
        """How many operations are using the store now."""
        with self._changed:
            return self._users

    # -- using it -----------------------------------------------------------------------------

    @contextmanager
    def use(self) -> Iterator[OpenStore]:
        """The store for one operation; a swap waits until the block has left.

        A thread already inside an operation enters again at once (a service calling
        another); any other thread waits while a swap is under way, then gets the new
        store.

        Raises:
            StoreClosed: the handle is closed.
        """
        me = threading.get_ident()
        with self._changed:
            while True:
                if self._closed:
                    raise StoreClosed(f"{self.display_location}: the store is closed")
                if not self._swapping or self._held.get(me):
                    break
                self._changed.wait()
            self._users += 1
            self._held[me] = self._held.get(me, 0) + 1
            opened = self._opened
        try:
            yield opened
        finally:
            with self._changed:
                self._users -= 1
                left = self._held[me] - 1  # ``me``: where it entered (a generator may move)
                if left:
                    self._held[me] = left
                else:
                    del self._held[me]
                self._changed.notify_all()

    # -- swapping and closing -----------------------------------------------------------------

    def switch(
        self,
        *,
        read_only: bool,
        prepare: Callable[[EventStore], object] | None = None,
        reopen: Callable[..., EventStore] | None = None,
    ) -> None:
        """Open the store again read-only or writable and use that from now on.

        Args:
            read_only: the mode wanted (nothing happens if it is the mode in use).
            prepare: called with the newly opened store before anything is swapped (the
                writable switch records itself in ``$audit`` there); if it raises, the
                new store is closed and the old one stays in use.
            reopen: opens the store in the other mode (default :func:`reopen_store`).

        Raises:
            StoreUnusable: the store could not be opened again (nothing changed).
            StoreBusy: operations on the old store did not stop within
                ``drain_seconds`` (nothing changed).
        """
        with self._swap_lock:
            current = self._opened.store
            if current.read_only == read_only:
                return
            opener = reopen if reopen is not None else reopen_store
            self._swap(lambda: opener(current, read_only=read_only), prepare)

    def replace(self, store: EventStore) -> None:
        """Use another, already open store from now on (the handle owns it): the old
        one is drained and closed first.

        Raises:
            StoreBusy: operations on the old store did not stop in time (``store`` is
                closed then, the old one stays in use).
        """
        with self._swap_lock:
            self._swap(lambda: store, None)

    def _swap(
        self, open_new: Callable[[], EventStore], prepare: Callable[[EventStore], object] | None
    ) -> None:
        if self._held.get(threading.get_ident()):
            raise RuntimeError("a store cannot be swapped from inside one of its operations")
        if self._closed:
            raise StoreClosed(f"{self.display_location}: the store is closed")
        new = open_new()
        try:
            if prepare is not None:
                prepare(new)
            old = self._drain()
            history = open_history(new)
        except BaseException:
            new.close()
            raise
        with self._changed:
            self._opened = OpenStore(new, history, old.generation + 1)
            self._swapping = False
            self._changed.notify_all()
        old.store.close()

    def _drain(self) -> OpenStore:
        """Stop new operations, interrupt the running ones and wait until they left.

        Returns the store they were using, with the handle still swapping; on failure
        the handle goes on with that store.
        """
        with self._changed:
            self._swapping = True
            old = self._opened
        old.store.interrupt()
        with self._changed:
            drained = self._changed.wait_for(lambda: self._users == 0, self.drain_seconds)
            if drained:
                return old
            running, self._swapping = self._users, False
            self._changed.notify_all()
        old.store.resume()
        raise StoreBusy(
            f"{display_location(old.store.location)}: {running} operation(s) still running "
            f"after {self.drain_seconds:g} s; the store was not switched"
        )

    def close(self) -> None:
        """Drain and close the store; the handle is unusable afterwards (again: nothing).

        Operations still running after ``drain_seconds`` are left to fail on the
        closed store.
        """
        with self._swap_lock:
            if self._closed:
                return
            try:
                old = self._drain()
            except StoreBusy:
                old = self._opened
            with self._changed:
                self._closed = True
                self._swapping = False
                self._changed.notify_all()
            old.store.close()
