"""The SQL event store: one facade over SQLite and PostgreSQL, delegating to collaborators
that share one :class:`~core.store.sql.connections.Connections`."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Dialect, Engine

from core.errors import StoreCorrupt
from core.events import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    from_micros,
    wall_clock_micros,
)
from core.store.port import (
    AppendResult,
    CheckReport,
    EventFilter,
    EventStore,
    ImportRecord,
    ImportResult,
    RawEvent,
    WriteTransaction,
)
from core.store.schema import CHECKSUM_SCHEMA
from core.store.sql import admin
from core.store.sql.appends import Appends
from core.store.sql.connections import Connections
from core.store.sql.engines import (
    hold_sqlite_file,
    inspect_sqlite_file,
    is_url,
    postgres_engine,
    release_sqlite_file,
    sqlite_connector,
    sqlite_engine,
    sqlite_path,
)
from core.store.sql.migrations import Migration, migrate_schema, prepare_schema
from core.store.sql.reads import PAGE_SIZE, Reads, decoded
from core.store.sql.search import SearchIndex
from core.store.validation import DEFAULT_MAX_PAYLOAD_BYTES

__all__ = ["SqlEventStore"]


class SqlEventStore(EventStore):
    """An event store in SQLite (a file path) or PostgreSQL (a SQLAlchemy URL).

    Use :meth:`open`; it checks the store before anything can change it.

    Args:
        engine: the store's engine (see :mod:`core.store.sql.engines`).
        location: the store's location, for messages.
        read_only: refuse writes.
        clock: microseconds since the epoch, for ``recorded_at``.
        max_payload_bytes: the size limit of ``data`` and of ``metadata``.
        page_size: rows per keyset page.
        interrupted: the interrupt flag the engine's connections check (SQLite's
            progress handlers); a new one when not given.
        busy_timeout: seconds a PostgreSQL writer waits for another's lock before
            StoreBusy (SQLite's engine sets its own; see :meth:`open`).
        sqlite_connect: what opens the SQLite engine's connections (its small reads
            then run on connections of their own, outside SQLAlchemy's pool).
    """

    def __init__(
        self,
        engine: Engine,
        location: str,
        *,
        read_only: bool,
        clock: Callable[[], int] = wall_clock_micros,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        page_size: int = PAGE_SIZE,
        interrupted: threading.Event | None = None,
        busy_timeout: float = 30.0,
        sqlite_connect: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:
        self._connections = Connections(
            engine,
            location,
            read_only=read_only,
            clock=clock,
            interrupted=interrupted or threading.Event(),
            busy_timeout=busy_timeout,
            sqlite_connect=sqlite_connect,
        )
        self._index = SearchIndex(self._connections)
        self._reads = Reads(self._connections, self._index, page_size)
        self._appends = Appends(self._connections, self._reads.stream_info, max_payload_bytes)
        self.location = location
        self.read_only = read_only
        # The SQLite file this store holds open (see engines.hold_sqlite_file).
        self._held_file: Path | None = None

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout: float = 30.0,
        clock: Callable[[], int] = wall_clock_micros,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> SqlEventStore:
        """Open (and, when writable and new, create) a store.

        Args:
            location: a SQLite file path or a SQLAlchemy URL (``postgresql+psycopg://…``).
            read_only: open for inspection; nothing, not even a missing file, is created.
            busy_timeout: seconds a writer waits for another writer before StoreBusy
                (SQLite's busy timeout; PostgreSQL's lock_timeout on the events lock).
            clock: microseconds since the epoch, for ``recorded_at`` (tests inject one).
            max_payload_bytes: the size limit of ``data`` and of ``metadata``.

        Raises:
            StoreUnusable: missing, corrupt, not an Eventscope store, newer schema, or
                unreachable (its subclasses say which); OlderSchema: an older shared
                (PostgreSQL) store opened writable (see :meth:`migrate`).
        """
        store = cls._connect(location, read_only, busy_timeout, clock, max_payload_bytes)
        try:
            store._index.schema = prepare_schema(store._connections)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _connect(
        cls,
        location: str | os.PathLike[str],
        read_only: bool,
        busy_timeout: float,
        clock: Callable[[], int],
        max_payload_bytes: int,
    ) -> SqlEventStore:
        """A store on its engine, its schema not yet looked at."""
        location = os.fspath(location)
        interrupted = threading.Event()
        sqlite_connect = None
        if is_url(location) and not location.startswith("sqlite"):
            engine = postgres_engine(location, read_only)
        else:
            path = sqlite_path(location)
            inspect_sqlite_file(path, read_only)
            sqlite_connect = sqlite_connector(path, read_only, busy_timeout, interrupted)
            engine = sqlite_engine(sqlite_connect)
            location = str(path)
            hold_sqlite_file(path)  # released by close()
        store = cls(
            engine,
            location,
            read_only=read_only,
            clock=clock,
            max_payload_bytes=max_payload_bytes,
            interrupted=interrupted,
            busy_timeout=busy_timeout,
            sqlite_connect=sqlite_connect,
        )
        store._held_file = None if is_url(location) else Path(location)
        return store

    @classmethod
    def migrate(cls, location: str | os.PathLike[str]) -> Migration:
        """Bring the store at ``location`` to this Eventscope's schema explicitly
        (``eventscope migrate``; see :func:`~core.store.sql.migrations.migrate_schema`):
        the one way a shared PostgreSQL store is upgraded.

        Raises:
            StoreUnusable: missing server, corrupt, foreign or newer store.
        """
        store = cls._connect(location, False, 30.0, wall_clock_micros, DEFAULT_MAX_PAYLOAD_BYTES)
        try:
            return migrate_schema(store._connections)
        finally:
            store.close()

    def close(self) -> None:
        """Interrupt what runs, then release every connection; every later operation
        raises StoreClosed (closing again does nothing)."""
        self._connections.close()
        held, self._held_file = self._held_file, None
        if held is not None:
            release_sqlite_file(held)

    def interrupt(self) -> None:
        """Stop every statement running on this store's connections, from any thread.

        The thread that ran each one gets Cancelled; so does every operation started
        until :meth:`resume` (for draining the store before it is swapped).
        """
        self._connections.interrupt()

    def resume(self) -> None:
        """Let operations run again after :meth:`interrupt` (a drain that gave up)."""
        self._connections.resume()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._connections.engine.dialect.name

    @property
    def sql_dialect(self) -> Dialect:
        """The SQLAlchemy dialect its driver cursors speak, to compile statements for."""
        return self._connections.engine.dialect

    @property
    def schema_version(self) -> int:
        """The store's schema version (older than SCHEMA_VERSION only when read-only)."""
        return self._index.schema

    @property
    def marker(self) -> str:
        """The driver's parameter marker (``?`` or ``%s``), for :meth:`write_transaction`."""
        return self._connections.marker

    @property
    def page_size(self) -> int:
        """Rows per keyset page of a read."""
        return self._reads.page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        self._reads.page_size = value

    @property
    def max_payload_bytes(self) -> int:
        """The size limit of an event's ``data`` and of its ``metadata``."""
        return self._appends.max_payload_bytes

    @max_payload_bytes.setter
    def max_payload_bytes(self, value: int) -> None:
        self._appends.max_payload_bytes = value

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def write_transaction(self) -> Iterator[Any]:
        """A write transaction for the projections' tables, on a driver cursor.

        SQLite takes the write lock (``BEGIN IMMEDIATE``); PostgreSQL starts a plain
        transaction and does not lock the events table, so appends go on.

        Raises:
            StoreReadOnly: the store is open read-only.
        """
        with self._appends.write_transaction() as cursor:
            yield cursor

    @contextmanager
    def transaction(self) -> Iterator[WriteTransaction]:
        """A write transaction for appends and read-model changes together (see
        :meth:`EventStore.transaction`).

        SQLite takes the write lock at once (``BEGIN IMMEDIATE``). PostgreSQL locks the
        events table only at the transaction's first append, as every append does, so
        read-model changes made before it do not hold appends up.

        Raises:
            StoreReadOnly: the store is open read-only.
        """
        with self._appends.transaction() as unit:
            yield unit

    @contextmanager
    def read_transaction(self) -> Iterator[Any]:
        """A read transaction on a driver cursor (one snapshot on PostgreSQL)."""
        with self._connections.driver_reading() as cursor:
            yield cursor

    # -- writing ---------------------------------------------------------------------------

    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append events to one stream atomically (see :class:`EventStore`)."""
        self._connections.ensure_usable()
        return self._appends.append_to_stream(stream_id, events, expected_version)

    def import_records(self, records: Iterable[ImportRecord]) -> ImportResult:
        """Append records in one transaction; stored ones count as duplicates.

        Memory stays bounded: records are consumed in chunks of 1,000.
        """
        return self._appends.import_records(records)

    # -- reading ---------------------------------------------------------------------------
    # The iterators check at the call, not at the first row: an operation started on a
    # closed or interrupted store fails at once.

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """One stream's events by version, page by page."""
        self._connections.ensure_usable()
        return decoded(
            self._reads.stream_pages(stream_id, from_version, backwards, limit),
            self._connections.shown(),
        )

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events in position order (or reverse), filtered, decoded page by page."""
        self._connections.ensure_usable()
        return decoded(
            self._reads.filtered_pages(where, backwards, limit), self._connections.shown()
        )

    def iter_raw(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RawEvent]:
        """Undecoded rows in position order, one keyset page at a time."""
        self._connections.ensure_usable()
        return _raw(self._reads.filtered_pages(where, backwards, limit), self._connections.shown())

    def count(self, where: EventFilter = EventFilter()) -> int:
        """How many events match: arithmetic when nothing but positions filters (they are
        gapless), an index count where the search index covers, a windowed scan after."""
        self._connections.ensure_usable()
        return self._reads.count(where)

    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The event stored with this id, or None (a unique-index probe)."""
        return self._reads.event_by_id(event_id)

    def stream_info(self, stream_id: str) -> StreamInfo | None:
        """One stream's summary from the streams table (an index probe)."""
        return self._reads.stream_info(stream_id)

    def list_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams sorted by id (byte-wise), page by page."""
        self._connections.ensure_usable()
        return self._reads.list_streams(prefix, category, after, limit)

    def recent_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        before_position: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by last activity, newest first, keyset-paged on the activity index."""
        self._connections.ensure_usable()
        return self._reads.recent_streams(prefix, category, before_position, limit)

    def head_position(self) -> int:
        """The last position, 0 when empty (a primary-key probe)."""
        return self._reads.head_position()

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (an index probe)."""
        return self._reads.position_at(moment)

    # -- the search index and administration -----------------------------------------------

    def indexed_position(self) -> int:
        """The last position the search index covers (0 for an old store read as it is)."""
        self._connections.ensure_usable()
        return self._index.indexed_position()

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        """Index the events after :meth:`indexed_position` (see :class:`EventStore`).

        Each batch is one transaction that reads the indexed position under a lock
        (SQLite's write lock; PostgreSQL's row lock on the meta row, which appends do
        not take), so concurrent indexers never index an event twice.
        """
        return self._index.update_index(batch=batch, limit=limit)

    def check(self) -> CheckReport:
        """Integrity: the database's own check, gapless positions, contiguous versions,
        non-decreasing times, a streams table that agrees with the events, and every
        event's checksum (stores of schema 7 on; rows written before it are counted)."""
        return admin.check(self._connections, checksums=self.schema_version >= CHECKSUM_SCHEMA)


def _raw(pages: Iterator[list[tuple[Any, ...]]], shown: str) -> Iterator[RawEvent]:
    """Rows as they are stored, their payloads checked to be JSON and their times to be
    times: an export copies them into its lines, and a damaged one would make a line that
    is not JSON (or fail there, untyped)."""
    loads = orjson.loads
    for page in pages:
        for row in page:
            try:
                loads(row[4])
                loads(row[5])
                from_micros(row[7])
            except (ValueError, TypeError, OverflowError) as error:
                raise StoreCorrupt(
                    f"{shown}: the event at position {row[0]} is damaged ({error}); "
                    "`eventscope check` lists every damaged event"
                ) from None
            yield RawEvent._make(row)
