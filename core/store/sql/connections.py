"""The connections of one SQL store, shared by its collaborators: reads, writes, errors,
and the interrupt and close switches that stop them."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import psycopg
from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import PoolProxiedConnection

from core.errors import Cancelled, StoreClosed, StoreCorrupt, StoreReadOnly
from core.jobs import current_job
from core.store.schema import events, streams
from core.store.sql.engines import display_location, translated

__all__ = ["EVENT_COLUMNS", "STREAM_COLUMNS", "Connections", "head_in"]

#: A RawEvent's columns, in its field order.
EVENT_COLUMNS: Final = (
    events.c.position,
    events.c.stream_id,
    events.c.version,
    events.c.type,
    events.c.data,
    events.c.metadata,
    events.c.event_id,
    events.c.recorded_at,
)
#: A StreamInfo's columns (see core.store.port.stream_info_from_row).
STREAM_COLUMNS: Final = (
    streams.c.stream_id,
    streams.c.category,
    streams.c.version,
    streams.c.first_position,
    streams.c.last_position,
    streams.c.first_recorded_at,
    streams.c.last_recorded_at,
)
#: The head: the last position and its time.
#: What the drivers (and SQLAlchemy) raise; translate() turns them into core.errors.
_DRIVER_ERRORS: Final = (UnicodeDecodeError, sa_exc.DBAPIError, sqlite3.Error, psycopg.Error)
#: SQLite reader connections kept idle for the next read (more are opened when threads
#: read at once, and closed after).
_IDLE_READERS: Final = 4
HEAD_SQL: Final = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"


def head_in(cursor: Any) -> tuple[int, int]:
    """The last position and its ``recorded_at`` as seen by a driver cursor ((0, 0): empty)."""
    cursor.execute(HEAD_SQL)
    row = cursor.fetchone()
    return (0, 0) if row is None else (row[0], row[1])


class Connections:
    """One store's engine and the ways to use it: a read transaction, the write
    transaction on the kept writer connection, and driver errors as core.errors.

    Args:
        engine: the store's engine.
        location: the store's location (a path or a URL), for messages.
        read_only: whether writes are refused.
        clock: microseconds since the epoch, for ``recorded_at``.
        interrupted: the interrupt flag (a SQLite engine's progress handlers already
            check it: see :func:`core.store.sql.engines.sqlite_engine`).
        busy_timeout: seconds a PostgreSQL writer waits for the events lock.
        sqlite_connect: what opens a SQLite store's connections: reads then run on
            connections of their own (see :meth:`driver_reading`).
    """

    def __init__(
        self,
        engine: Engine,
        location: str,
        *,
        read_only: bool,
        clock: Callable[[], int],
        interrupted: threading.Event,
        busy_timeout: float = 30.0,
        sqlite_connect: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        #: The driver's parameter marker (``?`` or ``%s``).
        self.marker = "?" if self.sqlite else "%s"
        #: What starts an append's transaction: SQLite's write lock, or PostgreSQL's
        #: events lock, which serialises writers so positions are gapless and ordered.
        #: A writer waits ``busy_timeout`` seconds for it, then gets StoreBusy (SQLite's
        #: busy timeout is set on its connections; PostgreSQL's is this lock_timeout).
        self.begin_write = (
            "BEGIN IMMEDIATE"
            if self.sqlite
            else f"SET LOCAL lock_timeout = {max(1, round(busy_timeout * 1000))}; "
            "LOCK TABLE events IN EXCLUSIVE MODE"
        )
        self.location = location
        self.read_only = read_only
        self.clock = clock
        self.interrupted = interrupted
        self._closed = False
        self._write_lock = threading.Lock()
        self._writer: PoolProxiedConnection | None = None
        self._writer_busy = False
        # PostgreSQL: the driver connections checked out of the pool (the writer among
        # them), so an interrupt can cancel what runs on them from another thread.
        self._checked_out: dict[int, Any] = {}
        self._checked_out_lock = threading.Lock()
        # SQLite readers kept idle between reads (see driver_reading).
        self._sqlite_connect = sqlite_connect if self.sqlite else None
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        if not self.sqlite:
            event.listen(engine, "checkout", self._on_checkout)
            event.listen(engine, "checkin", self._on_checkin)

    def _on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        with self._checked_out_lock:
            self._checked_out[id(record)] = dbapi_connection

    def _on_checkin(self, dbapi_connection: Any, record: Any) -> None:
        with self._checked_out_lock:
            self._checked_out.pop(id(record), None)

    def shown(self) -> str:
        """The location fit to show (no password)."""
        return display_location(self.location)

    def ensure_usable(self) -> None:
        """Raise unless the store may start an operation.

        Raises:
            StoreClosed: :meth:`close` was called.
            Cancelled: the store is interrupted (until :meth:`resume`).
        """
        if self._closed:
            raise StoreClosed(f"{self.shown()}: the store is closed")
        if self.interrupted.is_set():
            raise Cancelled(f"{self.shown()}: the store is interrupted")

    # -- interrupting and closing ------------------------------------------------------

    def interrupt(self) -> None:
        """Stop every statement running on the store's connections (from any thread).

        SQLite's progress handlers see the flag at their next check (every 50,000 VM
        steps); a PostgreSQL statement is cancelled on the server, connection by
        connection (a round trip each, on the calling thread).
        """
        self.interrupted.set()
        if self.sqlite:
            return
        with self._checked_out_lock:
            running = list(self._checked_out.values())
        writer = self._writer
        idle_writer = None if writer is None or self._writer_busy else writer.dbapi_connection
        for connection in running:
            if connection is idle_writer:
                continue  # nothing to stop; a late cancel could hit a write after resume()
            try:
                connection.cancel_safe()
            except Exception:  # a connection that is gone runs nothing
                pass

    def resume(self) -> None:
        """Let operations run again after :meth:`interrupt` (not after :meth:`close`)."""
        if not self._closed:
            self.interrupted.clear()

    def close(self) -> None:
        """Interrupt, then release every connection; the store stays closed for good."""
        if self._closed:
            return
        self._closed = True
        self.interrupt()
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._readers_lock:
            idle, self._idle_readers = self._idle_readers, []
        for reader in idle:
            reader.close()
        self.engine.dispose()

    # -- transactions and error translation --------------------------------------------

    @contextmanager
    def translate(self) -> Iterator[None]:
        """Turn driver errors raised in the block into core.errors (an interrupted or
        cancelled statement into Cancelled)."""
        try:
            yield
        except _DRIVER_ERRORS as error:
            raise self.translated(error) from error

    def translated(self, error: BaseException) -> BaseException:
        """A driver error (one of _DRIVER_ERRORS) as the core.errors exception to raise."""
        if isinstance(error, UnicodeDecodeError):
            # SQLite's message about a damaged schema can quote bytes that are not UTF-8.
            message = bytes(error.object).decode(errors="replace")[:200]
            return StoreCorrupt(f"{self.shown()}: the database is damaged ({message})")
        job = current_job()
        if self.interrupted.is_set() or (job is not None and job.cancelled):
            return Cancelled("cancelled")  # the statement was interrupted
        sqlite_file = Path(self.location) if self.sqlite else None
        return translated(error, self.shown(), sqlite_file)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction; a cancelled :class:`~core.jobs.Job` interrupts its statement.

        SQLite's connections check the job from a progress handler; a PostgreSQL
        statement is cancelled on the server from a background thread (see
        :meth:`core.jobs.Job.cancel`).

        Raises:
            StoreClosed, Cancelled: see :meth:`ensure_usable`.
        """
        self.ensure_usable()
        with self.translate():
            with self.engine.connect() as conn:
                # Checked again now that an interrupt can see (and cancel) the connection.
                self.ensure_usable()
                job = None if self.sqlite else current_job()
                if job is None:
                    with conn.begin():
                        yield conn
                    return
                driver: Any = conn.connection.driver_connection
                with job.on_cancel(driver.cancel_safe), conn.begin():
                    yield conn

    @contextmanager
    def driver_reading(self, *, snapshot: bool = True) -> Iterator[Any]:
        """A driver cursor for a read, without SQLAlchemy's pool and transaction layers.

        SQLite: on a connection of the store's own (an idle one kept from an earlier
        read, or a new one), in one transaction (``snapshot``) or in each statement's own
        (a single statement needs no BEGIN); an application's small read spent ten times
        the database's work in SQLAlchemy's pool, events and transactions. Cancellation
        is the progress handler's, as on every store connection. PostgreSQL: a
        :meth:`reading` transaction's cursor.

        Raises:
            StoreClosed, Cancelled: see :meth:`ensure_usable`.
        """
        if self._sqlite_connect is None:
            with self.reading() as conn:
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                try:
                    yield cursor
                finally:
                    cursor.close()
            return
        self.ensure_usable()
        with self._readers_lock:
            reader = self._idle_readers.pop() if self._idle_readers else None
        try:  # errors translated as translate() does, without a second generator
            if reader is None:
                reader = self._sqlite_connect()
            cursor = reader.cursor()
            try:
                if snapshot:
                    cursor.execute("BEGIN")
                yield cursor
            finally:
                cursor.close()
                if reader.in_transaction:
                    reader.rollback()  # it read only: nothing to keep
        except _DRIVER_ERRORS as error:
            raise self.translated(error) from error
        finally:
            if reader is not None:
                with self._readers_lock:
                    keep = not self._closed and len(self._idle_readers) < _IDLE_READERS
                    if keep:
                        self._idle_readers.append(reader)
                if not keep:
                    reader.close()

    @contextmanager
    def writing(self, begin: str | None = None) -> Iterator[Any]:
        """A write transaction on the driver's cursor of this store's writer connection.

        SQLite: ``BEGIN IMMEDIATE``, so a second writer waits for the lock (up to the
        busy timeout) instead of failing at its first write. PostgreSQL: the events
        table locked (unless ``begin`` says otherwise). The driver is used directly and
        the writer connection is kept (writes are serialised anyway): a single durable
        append spent most of its non-fsync time in SQLAlchemy's pool and statement layers.

        Raises:
            StoreClosed, Cancelled: see :meth:`ensure_usable`.
            StoreReadOnly: the store is open read-only.
        """
        self.ensure_usable()
        if self.read_only:
            raise StoreReadOnly(f"{self.shown()} is open read-only; open it writable to write")
        with self._write_lock:
            try:  # errors translated as translate() does, without a second generator
                if self._writer is None:
                    self._writer = self.engine.raw_connection()
                pooled = self._writer
                driver: Any = pooled.driver_connection
                cursor = driver.cursor()
                self._writer_busy = True
                try:
                    self.ensure_usable()  # after busy is set: an interrupt now cancels the write
                    cursor.execute(begin or self.begin_write)
                    yield cursor
                    driver.commit()
                except BaseException as error:
                    try:
                        driver.rollback()
                    except Exception:  # the connection is broken: replaced below
                        pass
                    broken = isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
                    if broken and not isinstance(error, psycopg.errors.QueryCanceled):
                        self._writer = None
                        pooled.invalidate()
                    raise
                finally:
                    self._writer_busy = False
                    cursor.close()
            except _DRIVER_ERRORS as error:
                raise self.translated(error) from error
