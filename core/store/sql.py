"""The SQL event store: one SQLAlchemy Core implementation for SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
import psycopg
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    column,
    create_engine,
    event,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from core.errors import (
    Cancelled,
    EventscopeError,
    ImportFailed,
    NewerSchema,
    NotAnEventStore,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreNotFound,
    StoreReadOnly,
    StoreUnreachable,
    WrongExpectedVersion,
)
from core.events import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    category_of,
    from_micros,
    to_micros,
    wall_clock_micros,
)
from core.jobs import checkpoint, current_job
from core.store.port import (
    AppendResult,
    CheckReport,
    EventFilter,
    EventStore,
    ImportRecord,
    ImportResult,
    PreparedEvent,
    RawEvent,
    WriteTransaction,
    decide_append,
    prepare_events,
    stream_info_from_row,
    words_match,
)
from core.store.schema import (
    CORRELATIONS_TABLE,
    INDEXED_POSITION_KEY,
    MIGRATIONS,
    SCHEMA_VERSION,
    WORDS_TABLE,
    events,
    meta,
    metadata,
    streams,
)
from core.store.validation import DEFAULT_MAX_PAYLOAD_BYTES, validate_stream_id

__all__ = ["SqlEventStore", "display_location"]

PAGE_SIZE: Final = 1000
IMPORT_CHUNK: Final = 1000
#: Positions per query when a search scans events the index does not cover yet: each
#: window is a short statement, with a progress report and a cancel check between.
SCAN_WINDOW: Final = 50_000
#: Positions a read with a prefix search scans before it asks the index (see _parts).
PREFIX_PROBE: Final = 20_000
#: SQLite runs the progress handler (a cancel check) every this many VM instructions.
_SQLITE_CANCEL_CHECK_STEPS: Final = 50_000
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_EVENT_COLUMNS: Final = (
    events.c.position,
    events.c.stream_id,
    events.c.version,
    events.c.type,
    events.c.data,
    events.c.metadata,
    events.c.event_id,
    events.c.recorded_at,
)
_STREAM_COLUMNS: Final = (
    streams.c.stream_id,
    streams.c.category,
    streams.c.version,
    streams.c.first_position,
    streams.c.last_position,
    streams.c.first_recorded_at,
    streams.c.last_recorded_at,
)


def _is_url(location: str) -> bool:
    return "://" in location


# The search index's tables, for Core statements (their DDL is in core.store.schema).
_fts = table(WORDS_TABLE, column("rowid", Integer))
_tsv = table(WORDS_TABLE, column("position", BigInteger), column("words"))
_correlations = table(
    CORRELATIONS_TABLE, column("correlation_id", String), column("position", BigInteger)
)
# One expression for a payload's words on PostgreSQL, shared by the indexer and scans.
_PG_WORDS_SQL: Final = "to_tsvector('simple', regexp_replace(data, '[^[:alnum:]]+', ' ', 'g'))"


class _Part:
    """One position range of a filtered read and how to answer it.

    A search splits the filter's range at the search index's position: the part
    the index covers joins its tables (``source``, ordered by ``key``); the rest is
    scanned in windows of positions (``windowed``), with progress and cancel checks.
    """

    __slots__ = ("conditions", "high", "key", "low", "source", "windowed")

    def __init__(
        self,
        conditions: list[ColumnElement[bool]],
        low: int,
        high: int | None,
        *,
        source: FromClause = events,
        key: ColumnElement[int] = events.c.position,
        windowed: bool = False,
    ) -> None:
        self.conditions = conditions
        self.low = low
        self.high = high
        self.source = source
        self.key = key
        self.windowed = windowed

    def bounded(self, low: int, high: int | None) -> list[ColumnElement[bool]]:
        """The conditions, limited to positions ``low..high`` (on the ordering key)."""
        conditions = [*self.conditions, self.key >= low]
        if high is not None:
            conditions.append(self.key <= high)
        return conditions


class SqlEventStore(EventStore):
    """An event store in SQLite (a file path) or PostgreSQL (a SQLAlchemy URL).

    Use :meth:`open`; it checks the store before anything can change it.
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
    ) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        marker = "?" if self._sqlite else "%s"
        self._marker = marker
        self._sql_insert_events, self._sql_upsert_streams = _write_statements(marker)
        self._sql_begin_write = (
            "BEGIN IMMEDIATE" if self._sqlite else "LOCK TABLE events IN EXCLUSIVE MODE"
        )
        self._sql_stream_version = f"SELECT version FROM streams WHERE stream_id = {marker}"
        self._sql_head = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        self._sql_stream_rows = (
            f"SELECT {', '.join(c.name for c in _EVENT_COLUMNS)} FROM events "
            f"WHERE stream_id = {marker} AND version >= {marker} ORDER BY version LIMIT {marker}"
        )
        self._clock = clock
        self._schema = SCHEMA_VERSION  # set by _prepare_schema: an old store read as it is
        self._write_lock = threading.Lock()
        self._writer: PoolProxiedConnection | None = None
        self.location = location
        self.read_only = read_only
        self.max_payload_bytes = max_payload_bytes
        self.page_size = page_size

    # -- opening ---------------------------------------------------------------------------

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
            busy_timeout: seconds a writer waits for another writer before StoreBusy.
            clock: microseconds since the epoch, for ``recorded_at`` (tests inject one).
            max_payload_bytes: the size limit of ``data`` and of ``metadata``.

        Raises:
            StoreUnusable: missing, corrupt, not an Eventscope store, newer schema, or
                unreachable (its subclasses say which).
        """
        location = os.fspath(location)
        if _is_url(location) and not location.startswith("sqlite"):
            engine = _postgres_engine(location, read_only)
        else:
            path = _sqlite_path(location)
            _inspect_sqlite_file(path, read_only)
            engine = _sqlite_engine(path, read_only, busy_timeout)
            location = str(path)
        store = cls(
            engine,
            location,
            read_only=read_only,
            clock=clock,
            max_payload_bytes=max_payload_bytes,
        )
        try:
            store._prepare_schema()
        except BaseException:
            engine.dispose()
            raise
        return store

    def _prepare_schema(self) -> None:
        with self._translate():
            with self._engine.connect() as conn:
                found = self._schema_version(conn)
                conn.rollback()
            if found is None:
                if self.read_only:
                    raise NotAnEventStore(f"{self._shown()} holds no Eventscope store yet")
                self._create_schema()
            elif found > SCHEMA_VERSION:
                raise NewerSchema(
                    f"{self._shown()} has store schema {found}, newer than this Eventscope "
                    f"understands ({SCHEMA_VERSION}); upgrade Eventscope to open it"
                )
            elif found < SCHEMA_VERSION and not self.read_only:
                self._migrate()
            elif found < SCHEMA_VERSION:
                # A read-only open of an older store reads it as it is (searches scan).
                self._schema = found

    def _schema_version(self, conn: Connection) -> int | None:
        if self._sqlite:
            names = {
                row[0]
                for row in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
        else:
            names = {
                row[0]
                for row in conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            }
        if meta.name not in names:
            if names - {"sqlite_sequence"}:
                raise NotAnEventStore(
                    f"{self._shown()} is a database, but not an Eventscope store "
                    f"(it has tables {', '.join(sorted(names)[:5])})"
                )
            return None
        value = conn.execute(
            select(meta.c.value).where(meta.c.key == "schema_version")
        ).scalar_one_or_none()
        if value is None or not str(value).isdigit():
            raise StoreCorrupt(f"{self._shown()} has no readable schema version")
        return int(value)

    def _create_schema(self) -> None:
        if self._sqlite:
            # WAL is a property of the file: set it once, outside any transaction.
            raw = self._engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
            finally:
                raw.close()
        with self._translate(), self._engine.connect() as conn:
            conn.execution_options(eventscope_write=True)
            conn.begin()
            if not self._sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(7316240113)"))
            if self._schema_version(conn) is not None:
                return  # another process created it first
            metadata.create_all(conn)
            conn.execute(
                meta.insert(),
                [
                    {"key": "schema_version", "value": "1"},
                    {"key": "created_at", "value": str(self._clock())},
                ],
            )
            self._migrate_in(conn, 1)
            conn.commit()

    def _migrate(self) -> None:
        """Take an older store to SCHEMA_VERSION in one transaction."""
        with self._translate(), self._engine.connect() as conn:
            conn.execution_options(eventscope_write=True)
            conn.begin()
            if not self._sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(7316240113)"))
                conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
            found = self._schema_version(conn)
            if found is not None and found < SCHEMA_VERSION:
                self._migrate_in(conn, found)
            conn.commit()

    def _migrate_in(self, conn: Connection, version: int) -> None:
        while version < SCHEMA_VERSION:
            for statement in MIGRATIONS[version](self.dialect):
                conn.exec_driver_sql(statement)
            version += 1
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))

    def _shown(self) -> str:
        return display_location(self.location)

    def close(self) -> None:
        """Release every connection."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._engine.dispose()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    # -- transactions and error translation ------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except EventscopeError:
            raise
        except (sa_exc.DBAPIError, sqlite3.Error, psycopg.Error) as error:
            job = current_job()
            if job is not None and job.cancelled:
                raise Cancelled("cancelled") from error  # the statement was interrupted
            raise _translated(error, self._shown()) from error

    @contextmanager
    def _writing(self, begin: str | None = None) -> Iterator[Any]:
        """A write transaction on the driver's cursor of this store's writer connection.

        SQLite: ``BEGIN IMMEDIATE``, so a second writer waits for the lock (up to the
        busy timeout) instead of failing at its first write. PostgreSQL: the events
        table locked, which serialises writers so positions are gapless and
        commit-ordered. The driver is used directly and the writer connection is kept
        (writes are serialised anyway): a single durable append spent most of its
        non-fsync time in SQLAlchemy's pool and statement layers.
        """
        if self.read_only:
            raise StoreReadOnly(f"{self._shown()} is open read-only; open it writable to write")
        with self._write_lock, self._translate():
            if self._writer is None:
                self._writer = self._engine.raw_connection()
            pooled = self._writer
            driver: Any = pooled.driver_connection
            cursor = driver.cursor()
            try:
                cursor.execute(begin or self._sql_begin_write)
                yield cursor
                driver.commit()
            except BaseException as error:
                try:
                    driver.rollback()
                except Exception:
                    pass  # the connection itself is broken: replaced below
                if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                    self._writer = None
                    pooled.invalidate()
                raise
            finally:
                cursor.close()

    @property
    def schema_version(self) -> int:
        """The store's schema version (older than SCHEMA_VERSION only when read-only)."""
        return self._schema

    @property
    def marker(self) -> str:
        """The driver's parameter marker (``?`` or ``%s``), for :meth:`write_transaction`."""
        return self._marker

    @contextmanager
    def write_transaction(self) -> Iterator[Any]:
        """A write transaction for the projections' tables, on a driver cursor.

        SQLite takes the write lock (``BEGIN IMMEDIATE``); PostgreSQL starts a plain
        transaction and does not lock the events table, so appends go on.

        Raises:
            StoreReadOnly: the store is open read-only.
        """
        with self._writing(None if self._sqlite else "SELECT 1") as cursor:
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
        with self._writing(None if self._sqlite else "SELECT 1") as cursor:
            unit = _SqlTransaction(self, cursor)
            try:
                yield unit
            except BaseException:
                unit.rolled_back()
                raise

    @contextmanager
    def read_transaction(self) -> Iterator[Any]:
        """A read transaction on a driver cursor (one snapshot on PostgreSQL)."""
        with self._reading() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                yield cursor
            finally:
                cursor.close()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read transaction; a cancelled :class:`~core.jobs.Job` interrupts its statement.

        SQLite's connections check the job from a progress handler; a PostgreSQL
        statement is cancelled on the server from the cancelling thread.
        """
        with self._translate():
            with self._engine.connect() as conn:
                job = None if self._sqlite else current_job()
                if job is None:
                    with conn.begin():
                        yield conn
                    return
                driver: Any = conn.connection.driver_connection
                with job.on_cancel(driver.cancel_safe), conn.begin():
                    yield conn

    # -- appending -------------------------------------------------------------------------

    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append events to one stream atomically (see :class:`EventStore`)."""
        validate_stream_id(stream_id)
        expected = ExpectedVersion.coerce(expected_version)
        prepared = prepare_events(events, self.max_payload_bytes)
        if not prepared:
            return self._empty_append(stream_id, expected)
        try:
            with self._writing() as cursor:
                return self._append_in(cursor, stream_id, prepared, expected, check_ids=False)
        except _EventIdCollision:
            with self._writing() as cursor:
                return self._append_in(cursor, stream_id, prepared, expected, check_ids=True)

    def _empty_append(self, stream_id: str, expected: ExpectedVersion) -> AppendResult:
        info = self.stream_info(stream_id)
        current = None if info is None else info.version
        if not expected.matches(current):
            raise WrongExpectedVersion(stream_id, expected, current)
        last = -1 if info is None else info.version
        position = 0 if info is None else info.last_position
        return AppendResult(stream_id, last, position, position, False, ())

    def _append_in(
        self,
        cursor: Any,
        stream_id: str,
        prepared: list[PreparedEvent],
        expected: ExpectedVersion,
        *,
        check_ids: bool,
    ) -> AppendResult:
        cursor.execute(self._sql_stream_version, (stream_id,))
        found_version = cursor.fetchone()
        current = None if found_version is None else found_version[0]
        if check_ids or not expected.matches(current):
            ids = [item.event_id for item in prepared]
            found = self._find_event_ids(cursor, ids)
            if decide_append(stream_id, ids, expected, current, found) == "idempotent":
                first_version = found[ids[0]][1]
                cursor.execute(self._sql_stream_rows, (stream_id, first_version, len(ids)))
                stored = tuple(RawEvent._make(row) for row in cursor.fetchall())
                return AppendResult(
                    stream_id,
                    stored[-1].version,
                    stored[0].position,
                    stored[-1].position,
                    True,
                    stored,
                )
        head, last_at = self._head_in(cursor)
        recorded_at = max(self._clock(), last_at)
        first_version = 0 if current is None else current + 1
        category = category_of(stream_id)
        rows = [
            (
                head + 1 + i,
                stream_id,
                first_version + i,
                event_type,
                data,
                metadata,
                event_id,
                recorded_at,
                category,
            )
            for i, (event_type, data, metadata, event_id) in enumerate(prepared)
        ]
        last = rows[-1]
        span = [category, last[2], head + 1, last[0], recorded_at, recorded_at]
        try:
            self._insert_rows(cursor, rows, {stream_id: span})
        except (sqlite3.IntegrityError, psycopg.IntegrityError) as error:
            if check_ids:
                raise
            raise _EventIdCollision() from error
        return AppendResult(
            stream_id, first_version + len(rows) - 1, head + 1, head + len(rows), False, tuple(rows)
        )

    def _insert_rows(
        self,
        cursor: Any,
        rows: Sequence[tuple[Any, ...]],
        spans: dict[str, list[Any]] | None = None,
    ) -> None:
        """Insert rows (RawEvent's fields, then the category) and update their streams.

        ``spans`` maps each stream to [category, last version, first position, last
        position, first time, last time]; it is worked out from the rows when not given.
        On conflict (the stream exists) only the version and the last place change.
        """
        # Plain positional executemany: SQLAlchemy's per-row parameter processing cost
        # more than SQLite's own insert work (see docs/benchmarks.md).
        cursor.executemany(self._sql_insert_events, rows)
        if spans is None:
            spans = {}
            for position, stream_id, version, *_, recorded_at, category in rows:
                span = spans.get(stream_id)
                if span is None:
                    spans[stream_id] = [
                        category, version, position, position, recorded_at, recorded_at
                    ]  # fmt: skip
                else:
                    span[1] = version
                    span[3] = position
                    span[5] = recorded_at
        cursor.executemany(
            self._sql_upsert_streams, [(stream_id, *span) for stream_id, span in spans.items()]
        )

    def _head_in(self, cursor: Any) -> tuple[int, int]:
        cursor.execute(self._sql_head)
        row = cursor.fetchone()
        return (0, 0) if row is None else (row[0], row[1])

    def _find_event_ids(self, cursor: Any, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        return {
            event_id: (stream_id, version)
            for event_id, stream_id, version in self._select_in(
                cursor, "SELECT event_id, stream_id, version FROM events WHERE event_id", ids
            )
        }

    def _select_in(self, cursor: Any, query: str, values: Sequence[str]) -> list[Any]:
        """Rows of ``query IN (values)``, asked in slices the drivers accept."""
        rows: list[Any] = []
        for start in range(0, len(values), 500):
            part = values[start : start + 500]
            cursor.execute(f"{query} IN ({', '.join([self._marker] * len(part))})", tuple(part))
            rows.extend(cursor.fetchall())
        return rows

    # -- importing -------------------------------------------------------------------------

    def import_records(self, records: Iterable[ImportRecord]) -> ImportResult:
        """Append records in one transaction; stored ones count as duplicates.

        Memory stays bounded: records are consumed in chunks of 1,000.
        """
        appended = duplicates = 0
        with self._writing() as cursor:
            versions: dict[str, int | None] = {}
            head, last_at = self._head_in(cursor)
            chunk: list[ImportRecord] = []
            for record in records:
                chunk.append(record)
                if len(chunk) >= IMPORT_CHUNK:
                    added, dup, head, last_at = self._import_chunk(
                        cursor, chunk, versions, head, last_at
                    )
                    appended += added
                    duplicates += dup
                    chunk = []
                    if len(versions) > 100_000:
                        versions.clear()
            if chunk:
                added, dup, head, last_at = self._import_chunk(
                    cursor, chunk, versions, head, last_at
                )
                appended += added
                duplicates += dup
        return ImportResult(appended, duplicates)

    def _import_chunk(
        self,
        cursor: Any,
        chunk: list[ImportRecord],
        versions: dict[str, int | None],
        head: int,
        last_at: int,
    ) -> tuple[int, int, int, int]:
        found = self._find_event_ids(cursor, [record.event.event_id for record in chunk])
        unknown = list({r.stream_id for r in chunk if r.stream_id not in versions})
        known = dict(
            self._select_in(
                cursor, "SELECT stream_id, version FROM streams WHERE stream_id", unknown
            )
        )
        for stream_id in unknown:
            versions[stream_id] = known.get(stream_id)
        rows: list[tuple[Any, ...]] = []
        duplicates = 0
        now = self._clock()
        for record in chunk:
            event_id = record.event.event_id
            place = found.get(event_id)
            if place is not None:
                if place[0] == record.stream_id and record.version in (None, place[1]):
                    duplicates += 1
                    continue
                raise ImportFailed(
                    record.line,
                    f"event_id {event_id} is already stored in stream {place[0]!r} "
                    f"at version {place[1]}",
                )
            current = versions[record.stream_id]
            version = 0 if current is None else current + 1
            if record.version is not None and record.version != version:
                conflict = WrongExpectedVersion(
                    record.stream_id,
                    ExpectedVersion.exact(record.version - 1) if record.version else "no_stream",
                    current,
                )
                raise ImportFailed(
                    record.line,
                    f"version {record.version} of stream {record.stream_id!r} is not its "
                    f"next version ({version})",
                    conflict,
                )
            versions[record.stream_id] = version
            head += 1
            last_at = max(record.recorded_at if record.recorded_at is not None else now, last_at)
            found[event_id] = (record.stream_id, version)
            item = record.event
            rows.append(
                (
                    head,
                    record.stream_id,
                    version,
                    item.type,
                    item.data,
                    item.metadata,
                    event_id,
                    last_at,
                    category_of(record.stream_id),
                )
            )
        if rows:
            self._insert_rows(cursor, rows)
        return len(rows), duplicates, head, last_at

    # -- reading ---------------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """One stream's events by version, page by page."""
        cursor: int | None = None
        if from_version is not None:
            cursor = from_version + 1 if backwards else from_version - 1
        pages = self._pages(
            [events.c.stream_id == stream_id], events.c.version, cursor, backwards, limit
        )
        return _decoded(pages)

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events in position order (or reverse), filtered, decoded page by page."""
        return _decoded(self._filtered_pages(where, backwards, limit))

    def iter_raw(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RawEvent]:
        """Undecoded rows in position order, one keyset page at a time."""
        for page in self._filtered_pages(where, backwards, limit):
            for row in page:
                yield RawEvent._make(row)

    def _filtered_pages(
        self, where: EventFilter, backwards: bool, limit: int | None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of rows for a filter.

        A one-stream read pages by version (the stream's own index); every other read
        pages by position through the parts of :meth:`_parts`, in the read's direction.
        """
        bounds = self._position_bounds(where, backwards)
        if bounds is None:
            return
        low, high = bounds
        position = events.c.position
        if where.stream_id is not None:
            conditions = self._content_conditions(where, indexed=False)
            if low is not None:
                conditions.append(position >= low)
            if high is not None:
                conditions.append(position <= high)
            yield from self._pages(conditions, events.c.version, None, backwards, limit)
            return
        parts = self._parts(where, low or 1, high, probe=not backwards)
        remaining = limit
        for part in reversed(parts) if backwards else parts:
            for page in self._part_pages(part, backwards, remaining):
                yield page
                if remaining is not None:
                    remaining -= len(page)
            if remaining is not None and remaining <= 0:
                return

    def _parts(
        self, where: EventFilter, low: int, high: int | None, *, probe: bool | None = None
    ) -> list[_Part]:
        """The filter's position range ``low..high``, split where the search index ends.

        ``probe`` (True: forward, False: backwards, None: no probe) starts a read whose
        search has a prefix word (``ware*``) by scanning PREFIX_PROBE positions at the
        near end first. FTS5 merges every doclist a prefix matches before it returns a
        row (1.4 s for a word in each of 10M events); a prefix that common fills a page
        from the probe, and one rare enough to miss it has small doclists.
        """
        searching = bool(where.words) or where.correlation_id is not None
        if not searching:
            narrow = high is not None and high - low < SCAN_WINDOW
            return [_Part(self._content_conditions(where, indexed=False, narrow=narrow), low, high)]
        indexed_to = self.indexed_position()
        parts: list[_Part] = []
        covered = indexed_to if high is None else min(high, indexed_to)
        if low <= covered:
            source, key = self._index_join(where)
            indexed = _Part(
                self._content_conditions(where, indexed=True), low, covered, source=source, key=key
            )
            prefix = any(word.endswith("*") for word in where.words)
            if (
                probe is not None
                and prefix
                and self._sqlite
                and where.correlation_id is None
                and covered - low + 1 > 2 * PREFIX_PROBE
            ):
                scan = self._content_conditions(where, indexed=False)
                if probe:  # forward: the probe is the first part
                    parts.append(_Part(scan, low, low + PREFIX_PROBE - 1, windowed=True))
                    indexed.low = low + PREFIX_PROBE
                    parts.append(indexed)
                else:  # backwards: the last part, read first
                    indexed.high = covered - PREFIX_PROBE
                    parts.append(indexed)
                    parts.append(_Part(scan, covered - PREFIX_PROBE + 1, covered, windowed=True))
            else:
                parts.append(indexed)
        scan_low = max(low, indexed_to + 1)
        if high is None or scan_low <= high:
            conditions = self._content_conditions(where, indexed=False)
            parts.append(_Part(conditions, scan_low, high, windowed=True))
        return parts

    def _index_join(self, where: EventFilter) -> tuple[FromClause, ColumnElement[int]]:
        """The events joined to the index tables a search uses, and the key to order by."""
        source: FromClause = events
        key: ColumnElement[int] = events.c.position
        if where.words:
            if self._sqlite:
                source = source.join(_fts, _fts.c.rowid == events.c.position)
                key = _fts.c.rowid  # FTS5 returns rowids in order: no sort, early stop
            else:
                source = source.join(_tsv, _tsv.c.position == events.c.position)
                key = _tsv.c.position
        if where.correlation_id is not None:
            source = source.join(_correlations, _correlations.c.position == events.c.position)
            key = _correlations.c.position  # the (correlation_id, position) key: one range
        return source, key

    def _part_pages(
        self, part: _Part, backwards: bool, limit: int | None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """A part's rows in pages; a windowed part scans SCAN_WINDOW positions per query."""
        if not part.windowed:
            yield from self._range_pages(part, part.low, part.high, backwards, limit)
            return
        closed, total = self._scan_windows(part)
        # Forward, the last window is open-ended: events appended meanwhile are read too.
        windows: list[tuple[int, int | None]] = list(closed)
        if backwards:
            windows.reverse()
        elif part.high is None:
            windows = [*windows[:-1], (windows[-1][0] if windows else part.low, None)]
        remaining = limit
        for done, (start, stop) in enumerate(windows):
            checkpoint(done * SCAN_WINDOW, total)
            for page in self._range_pages(part, start, stop, backwards, remaining):
                yield page
                if remaining is not None:
                    remaining -= len(page)
            if remaining is not None and remaining <= 0:
                return

    def _top(self, part: _Part) -> int:
        """The last position a part reaches now (its bound, or the head)."""
        head = self.head_position()
        return head if part.high is None else min(part.high, head)

    def _scan_windows(self, part: _Part) -> tuple[list[tuple[int, int]], int]:
        """A scanned part's windows of SCAN_WINDOW positions up to :meth:`_top`, in
        order, and how many positions they cover (the total progress reports count to)."""
        top = self._top(part)
        windows = [
            (start, min(start + SCAN_WINDOW - 1, top))
            for start in range(part.low, top + 1, SCAN_WINDOW)
        ]
        return windows, max(0, top - part.low + 1)

    def _range_pages(
        self, part: _Part, low: int, high: int | None, backwards: bool, limit: int | None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """A part's rows in ``low..high``, the near bound folded into the keyset cursor.

        SQLite ranges over one lower and one upper bound of a key: with two lower
        bounds (``>= low`` and ``> cursor``) it starts at ``low`` and filters, and every
        page scans from the start again.
        """
        conditions = list(part.conditions)
        if backwards:
            cursor = None if high is None else high + 1
            if low > 1:
                conditions.append(part.key >= low)
        else:
            cursor = low - 1
            if high is not None:
                conditions.append(part.key <= high)
        return self._pages(conditions, part.key, cursor, backwards, limit, part.source)

    def _content_conditions(
        self, where: EventFilter, *, indexed: bool, narrow: bool = False
    ) -> list[ColumnElement[bool]]:
        """The filter's tests on an event's content, as SQL conditions.

        ``indexed``: the search terms are answered by the index join of
        :meth:`_index_join`; otherwise they are tested on each event (a scan).
        ``narrow``: the read covers at most SCAN_WINDOW positions, so SQLite tests
        several types on each row of that range instead of merging their index ranges.
        """
        conditions: list[ColumnElement[bool]] = []
        if where.stream_id is not None:
            conditions.append(events.c.stream_id == where.stream_id)
        if where.stream_prefix:
            conditions.append(events.c.stream_id >= where.stream_prefix)
            conditions.append(events.c.stream_id < where.stream_prefix + "\U0010ffff")
        if where.category is not None:
            conditions.append(events.c.category == where.category)
        if where.types and narrow and self._sqlite and len(where.types) > 1:
            # "+type" keeps SQLite off the (type, position) index: for several types it
            # sorts each page's rows of every type in a temporary B-tree (a projection
            # runner's batches of 20,000 positions read 2.6x slower that way).
            types = bindparam("narrow_types", list(where.types), String(), expanding=True)
            conditions.append(literal_column("+events.type", String()).in_(types))
        elif where.types:
            conditions.append(events.c.type.in_(list(where.types)))
        words = where.words
        if indexed:
            if where.correlation_id is not None:
                conditions.append(_correlations.c.correlation_id == where.correlation_id)
            if words and self._sqlite:
                # An exact word streams its doclist in rowid order; a prefix (word*)
                # merges the doclists of every word it starts first.
                query = " AND ".join(
                    f'"{word[:-1]}"*' if word.endswith("*") else f'"{word}"' for word in words
                )
                conditions.append(literal_column(WORDS_TABLE).op("MATCH")(query))
            elif words:
                conditions.append(_tsv.c.words.op("@@")(self._tsquery(words)))
            return conditions
        if where.correlation_id is not None:
            conditions.append(self._metadata_string_is("correlation_id", where.correlation_id))
        if words and self._sqlite:
            # LIKE is a cheap C pre-test (case-blind for ASCII only); the function decides.
            for word in words:
                if word.isascii():
                    conditions.append(events.c.data.like(f"%{word.rstrip('*')}%"))
            conditions.append(func.eventscope_words(events.c.data, " ".join(words)) == 1)
        elif words:
            conditions.append(literal_column(_PG_WORDS_SQL).op("@@")(self._tsquery(words)))
        return conditions

    @staticmethod
    def _tsquery(words: Sequence[str]) -> ColumnElement[Any]:
        """PostgreSQL's query for the words (``word:*`` for a prefix)."""
        query = " & ".join(f"{word[:-1]}:*" if word.endswith("*") else word for word in words)
        return func.to_tsquery(literal_column("'simple'"), query)

    def _position_bounds(
        self, where: EventFilter, backwards: bool = False
    ) -> tuple[int | None, int | None] | None:
        """The filter's inclusive position range (None: it is empty)."""
        low = where.from_position if where.from_position is not None and not backwards else None
        if where.since is not None:
            first = self.position_at(where.since - timedelta(microseconds=1)) + 1
            low = first if low is None else max(low, first)
        high = self.position_at(where.until) if where.until is not None else None
        if where.to_position is not None:
            high = where.to_position if high is None else min(high, where.to_position)
        if backwards and where.from_position is not None:
            high = where.from_position if high is None else min(high, where.from_position)
        if low is not None and high is not None and low > high:
            return None
        return low, high

    def count(self, where: EventFilter = EventFilter()) -> int:
        """How many events match: arithmetic when nothing but positions filters (they are
        gapless), an index count where the search index covers, a windowed scan after."""
        bounds = self._position_bounds(where)
        if bounds is None:
            return 0
        low, high = bounds
        total = 0
        for part in self._parts(where, max(low or 1, 1), high):
            if not part.conditions and part.source is events:
                total += max(0, self._top(part) - part.low + 1)
                continue
            windows: list[tuple[int, int | None]] = [(part.low, part.high)]
            scanned = 0
            if part.windowed:
                scan, scanned = self._scan_windows(part)
                windows = list(scan)
            for done, (start, stop) in enumerate(windows):
                if part.windowed:
                    checkpoint(done * SCAN_WINDOW, scanned)
                stmt = select(func.count()).select_from(part.source)
                stmt = stmt.where(*part.bounded(start, stop))
                with self._reading() as conn:
                    total += int(conn.execute(stmt).scalar_one())
        return total

    # -- the search index ------------------------------------------------------------------

    def indexed_position(self) -> int:
        """The last position the search index covers (0 for an old store read as it is)."""
        if self._schema < 3:
            return 0
        with self._reading() as conn:
            value = conn.execute(
                select(meta.c.value).where(meta.c.key == INDEXED_POSITION_KEY)
            ).scalar_one_or_none()
        return int(value) if value is not None else 0

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        """Index the events after :meth:`indexed_position` (see :class:`EventStore`).

        Each batch is one transaction that reads the indexed position under a lock
        (SQLite's write lock; PostgreSQL's row lock on the meta row, which appends do
        not take), so concurrent indexers never index an event twice.
        """
        if self.read_only:
            raise StoreReadOnly(f"{self._shown()} is open read-only; open it writable to index")
        m = self._marker
        if self._sqlite:
            begin = None
            insert_words = (
                f"INSERT INTO {WORDS_TABLE} (rowid, data) SELECT position, data FROM events "
                f"WHERE position > {m} AND position <= {m}"
            )
            insert_correlations = (
                f"INSERT OR IGNORE INTO {CORRELATIONS_TABLE} (correlation_id, position) "
                "SELECT json_extract(metadata, '$.correlation_id'), position FROM events "
                f"WHERE position > {m} AND position <= {m} "
                "AND json_type(metadata, '$.correlation_id') = 'text'"
            )
        else:
            begin = f"SELECT value FROM {meta.name} WHERE key = '{INDEXED_POSITION_KEY}' FOR UPDATE"
            insert_words = (
                f"INSERT INTO {WORDS_TABLE} (position, words) SELECT position, {_PG_WORDS_SQL} "
                f"FROM events WHERE position > {m} AND position <= {m} ON CONFLICT DO NOTHING"
            )
            insert_correlations = (
                f"INSERT INTO {CORRELATIONS_TABLE} (correlation_id, position) "
                "SELECT metadata::jsonb ->> 'correlation_id', position FROM events "
                f"WHERE position > {m} AND position <= {m} "
                "AND jsonb_typeof(metadata::jsonb -> 'correlation_id') = 'string' "
                "ON CONFLICT DO NOTHING"
            )
        read_indexed = f"SELECT value FROM {meta.name} WHERE key = '{INDEXED_POSITION_KEY}'"
        write_indexed = f"UPDATE {meta.name} SET value = {m} WHERE key = '{INDEXED_POSITION_KEY}'"
        start = self.indexed_position()
        goal = self.head_position()
        done = 0
        while limit is None or done < limit:
            checkpoint(done, max(goal - start, done))
            with self._writing(begin) as cursor:
                cursor.execute(read_indexed)
                indexed = int(cursor.fetchone()[0])
                head, _ = self._head_in(cursor)
                step = batch if limit is None else min(batch, limit - done)
                upto = min(head, indexed + step)
                if upto <= indexed:
                    break
                cursor.execute(insert_words, (indexed, upto))
                cursor.execute(insert_correlations, (indexed, upto))
                cursor.execute(write_indexed, (str(upto),))
            done += upto - indexed
        return done

    def _metadata_string_is(self, key: str, value: str) -> ColumnElement[bool]:
        """``metadata.<key>`` is the string ``value`` (a number or object never is)."""
        if not key.isidentifier():
            raise ValueError(f"metadata key {key!r} is not an identifier")
        if self._sqlite:
            path: ColumnElement[str] = literal_column(f"'$.{key}'")
            return and_(
                func.json_type(events.c.metadata, path) == "text",
                func.json_extract(events.c.metadata, path) == value,
            )
        document = cast(events.c.metadata, JSONB)
        name: ColumnElement[str] = literal_column(f"'{key}'")
        return and_(
            func.jsonb_typeof(document.op("->")(name)) == "string",
            document.op("->>")(name) == value,
        )

    def _pages(
        self,
        conditions: list[ColumnElement[bool]],
        key: ColumnElement[int],
        cursor: int | None,
        backwards: bool,
        limit: int | None,
        source: FromClause = events,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Keyset pages ordered by ``key``, strictly after ``cursor`` in the read's direction.

        Checks for cancellation (:mod:`core.jobs`) before each page.
        """
        stmt = select(*_EVENT_COLUMNS).select_from(source)
        stmt = stmt.order_by(key.desc() if backwards else key)
        if conditions:
            stmt = stmt.where(and_(*conditions))
        size = bindparam("page_size", self.page_size, type_=Integer)
        first = _DriverQuery(stmt.limit(size), self._engine.dialect)
        after = bindparam("cursor", 0, type_=BigInteger)
        following = _DriverQuery(
            stmt.where(key < after if backwards else key > after).limit(size),
            self._engine.dialect,
        )
        key_index = 2 if key is events.c.version else 0
        remaining = limit
        while remaining is None or remaining > 0:
            page_size = self.page_size if remaining is None else min(self.page_size, remaining)
            checkpoint()
            with self._reading() as conn:
                if cursor is None:
                    rows = first.fetch(conn, page_size=page_size)
                else:
                    rows = following.fetch(conn, page_size=page_size, cursor=cursor)
            if rows:
                yield rows
            if len(rows) < page_size:
                return
            cursor = rows[-1][key_index]
            if remaining is not None:
                remaining -= len(rows)

    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The event stored with this id, or None (a unique-index probe)."""
        with self._reading() as conn:
            row = conn.execute(select(*_EVENT_COLUMNS).where(events.c.event_id == event_id)).first()
        return None if row is None else RawEvent._make(row).decode()

    def stream_info(self, stream_id: str) -> StreamInfo | None:
        """One stream's summary from the streams table (an index probe)."""
        with self._reading() as conn:
            row = conn.execute(
                select(*_STREAM_COLUMNS).where(streams.c.stream_id == stream_id)
            ).first()
        return None if row is None else stream_info_from_row(row)

    def list_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams sorted by id (byte-wise), page by page."""
        stmt = select(*_STREAM_COLUMNS).order_by(streams.c.stream_id)
        if category is not None:
            stmt = stmt.where(streams.c.category == category)
        if prefix:
            stmt = stmt.where(
                streams.c.stream_id >= prefix, streams.c.stream_id < prefix + "\U0010ffff"
            )
        cursor = after
        remaining = limit
        while remaining is None or remaining > 0:
            size = self.page_size if remaining is None else min(self.page_size, remaining)
            page_stmt = stmt if cursor is None else stmt.where(streams.c.stream_id > cursor)
            with self._reading() as conn:
                rows = conn.execute(page_stmt.limit(size)).all()
            for row in rows:
                yield stream_info_from_row(row)
            if len(rows) < size:
                return
            cursor = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)

    def recent_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        before_position: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by last activity, newest first, keyset-paged on the activity index."""
        stmt = select(*_STREAM_COLUMNS).order_by(streams.c.last_position.desc())
        if category is not None:
            stmt = stmt.where(streams.c.category == category)
        if prefix:
            stmt = stmt.where(
                streams.c.stream_id >= prefix, streams.c.stream_id < prefix + "\U0010ffff"
            )
        cursor = before_position
        remaining = limit
        while remaining is None or remaining > 0:
            size = self.page_size if remaining is None else min(self.page_size, remaining)
            page = stmt if cursor is None else stmt.where(streams.c.last_position < cursor)
            with self._reading() as conn:
                rows = conn.execute(page.limit(size)).all()
            for row in rows:
                yield stream_info_from_row(row)
            if len(rows) < size:
                return
            cursor = rows[-1][4]
            if remaining is not None:
                remaining -= len(rows)

    def head_position(self) -> int:
        """The last position, 0 when empty (a primary-key probe)."""
        with self._reading() as conn:
            row = conn.exec_driver_sql(self._sql_head).first()
        return 0 if row is None else int(row[0])

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (an index probe)."""
        micros = to_micros(moment)
        with self._reading() as conn:
            found = conn.execute(
                select(events.c.position)
                .where(events.c.recorded_at <= micros)
                .order_by(events.c.recorded_at.desc(), events.c.position.desc())
                .limit(1)
            ).scalar_one_or_none()
        return 0 if found is None else int(found)

    # -- checking --------------------------------------------------------------------------

    def check(self) -> CheckReport:
        """Integrity: the database's own check, gapless positions, contiguous versions,
        non-decreasing times, and a streams table that agrees with the events."""
        problems: list[str] = []
        details: dict[str, Any] = {}
        with self._reading() as conn:
            if self._sqlite:
                messages = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
                details["sqlite_integrity"] = messages[:10]
                if messages != ["ok"]:
                    problems.append(f"sqlite integrity_check: {'; '.join(messages[:3])}")
            count, low, high = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.min(events.c.position), 0),
                    func.coalesce(func.max(events.c.position), 0),
                )
            ).one()
            if count and (low != 1 or high != count):
                gaps = [
                    row[0]
                    for row in conn.execute(
                        text(
                            "SELECT position FROM (SELECT position, LAG(position) OVER "
                            "(ORDER BY position) AS prev FROM events) AS g "
                            "WHERE position - COALESCE(prev, 0) <> 1 ORDER BY position LIMIT 10"
                        )
                    )
                ]
                details["positions_after_gaps"] = gaps
                problems.append(
                    f"positions are not gapless: {count} events span positions {low}..{high}"
                )
            bad_streams = [
                {"stream_id": name, "events": n, "min_version": low_v, "max_version": high_v}
                for name, n, low_v, high_v in conn.execute(
                    select(
                        events.c.stream_id,
                        func.count(),
                        func.min(events.c.version),
                        func.max(events.c.version),
                    )
                    .group_by(events.c.stream_id)
                    .having(
                        (func.min(events.c.version) != 0)
                        | (func.max(events.c.version) != func.count() - 1)
                    )
                    .limit(10)
                )
            ]
            if bad_streams:
                details["streams_with_version_gaps"] = bad_streams
                problems.append(f"{len(bad_streams)} stream(s) have non-contiguous versions")
            backwards = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT recorded_at - LAG(recorded_at) OVER "
                    "(ORDER BY position) AS step FROM events) AS s WHERE step < 0"
                )
            ).scalar_one()
            if backwards:
                problems.append(f"recorded_at decreases {backwards} time(s) along position")
            mismatched = [
                row[0]
                for row in conn.execute(
                    text(
                        "SELECT COALESCE(s.stream_id, e.stream_id) FROM streams AS s "
                        "FULL OUTER JOIN (SELECT stream_id, max(version) AS v, "
                        "min(position) AS fp, max(position) AS lp, min(recorded_at) AS ft, "
                        "max(recorded_at) AS lt FROM events "
                        "GROUP BY stream_id) AS e ON e.stream_id = s.stream_id "
                        "WHERE s.stream_id IS NULL OR e.stream_id IS NULL OR e.v <> s.version "
                        "OR e.fp <> s.first_position OR e.lp <> s.last_position "
                        "OR e.ft <> s.first_recorded_at OR e.lt <> s.last_recorded_at LIMIT 10"
                    )
                )
            ]
            if mismatched:
                details["streams_table_mismatches"] = mismatched
                problems.append(f"the streams table disagrees with the events for {mismatched}")
            stream_count = conn.execute(select(func.count()).select_from(streams)).scalar_one()
        return CheckReport(
            ok=not problems,
            events=int(count),
            head=int(high),
            streams=int(stream_count),
            problems=tuple(problems),
            details=details,
        )


def _write_statements(marker: str) -> tuple[str, str]:
    """The two hot write statements, as driver SQL with positional markers.

    Both SQLite and PostgreSQL accept the same ``ON CONFLICT … DO UPDATE`` upsert.
    """
    # RawEvent's fields first, then the category: an append's rows are its result too.
    event_columns = [column.name for column in _EVENT_COLUMNS] + [events.c.category.name]
    stream_columns = [column.name for column in streams.columns]
    insert_events = (
        f"INSERT INTO {events.name} ({', '.join(event_columns)}) "
        f"VALUES ({', '.join([marker] * len(event_columns))})"
    )
    upsert_streams = (
        f"INSERT INTO {streams.name} ({', '.join(stream_columns)}) "
        f"VALUES ({', '.join([marker] * len(stream_columns))}) "
        "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
        "last_position = excluded.last_position, last_recorded_at = excluded.last_recorded_at"
    )
    return insert_events, upsert_streams


class _DriverQuery:
    """A Core statement compiled once for the dialect and run on the driver's cursor.

    Reads build millions of events; SQLAlchemy's Row objects cost a third of a
    microsecond each, as much as decoding a small payload (see docs/benchmarks.md).
    """

    def __init__(self, stmt: Select[Any], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self._sql = compiled.string
        self._order = list(compiled.positiontup or ()) if compiled.positional else None
        self._params = dict(compiled.params)

    def fetch(self, conn: Connection, **values: object) -> list[tuple[Any, ...]]:
        """All rows, with ``values`` replacing the statement's bound defaults."""
        params = {**self._params, **values}
        args: Any = tuple(params[name] for name in self._order) if self._order else params
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self._sql, args)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def _decoded(pages: Iterable[list[tuple[Any, ...]]]) -> Iterator[RecordedEvent]:
    """Decode pages of rows into events (events of one append share one time object)."""
    loads = orjson.loads
    make = tuple.__new__
    last_micros = -1
    last_time = from_micros(0)
    for page in pages:
        for position, stream_id, version, kind, data, meta_json, event_id, micros in page:
            if micros != last_micros:
                last_micros = micros
                last_time = from_micros(micros)
            yield make(
                RecordedEvent,
                (
                    position,
                    stream_id,
                    version,
                    kind,
                    loads(data),
                    loads(meta_json),
                    event_id,
                    last_time,
                ),
            )


class _SqlTransaction(WriteTransaction):
    """A write transaction of a :class:`SqlEventStore` (its driver cursor)."""

    def __init__(self, store: SqlEventStore, cursor: Any) -> None:
        super().__init__(cursor)
        self._store = store
        self._locked = store.dialect == "sqlite"  # BEGIN IMMEDIATE holds the write lock

    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append in this transaction (ids are checked first: a failed insert would abort
        a PostgreSQL transaction)."""
        validate_stream_id(stream_id)
        expected = ExpectedVersion.coerce(expected_version)
        prepared = prepare_events(events, self._store.max_payload_bytes)
        if not prepared:
            return self._store._empty_append(stream_id, expected)
        if not self._locked:
            self.cursor.execute(self._store._sql_begin_write)  # positions stay commit-ordered
            self._locked = True
        return self._store._append_in(self.cursor, stream_id, prepared, expected, check_ids=True)


class _EventIdCollision(Exception):
    """The fast path hit the unique event-id index; redo the append with id checks."""


# -- engines -----------------------------------------------------------------------------------


def display_location(location: str) -> str:
    """A store location fit to show or log: a URL's password becomes ``***``."""
    if not _is_url(location):
        return location
    try:
        return make_url(location).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return location


def _sqlite_path(location: str) -> Path:
    if location.startswith("sqlite:///"):
        location = urllib.parse.unquote(location[len("sqlite:///") :].split("?", 1)[0])
    elif location.startswith("sqlite:"):
        raise StoreNotFound(f"{location}: only file-backed SQLite stores are supported")
    return Path(location).expanduser().absolute()


def _inspect_sqlite_file(path: Path, read_only: bool) -> None:
    """Refuse a missing (when read-only), foreign or truncated file before SQLite opens it."""
    if not path.exists():
        if read_only:
            raise StoreNotFound(f"{path}: no such store")
        if not path.parent.is_dir():
            raise StoreNotFound(f"{path}: the folder {path.parent} does not exist")
        return
    if path.is_dir():
        raise StoreCorrupt(f"{path}: is a folder, not a store file")
    size = path.stat().st_size
    if size == 0:
        if read_only:
            raise NotAnEventStore(f"{path}: the file is empty")
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as error:
        raise StoreCorrupt(f"{path}: cannot be read ({error.strerror})") from None
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise StoreCorrupt(f"{path}: not a SQLite database (the file header is wrong)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    change_counter = header[24:28]
    page_count = int.from_bytes(header[28:32], "big")
    if header[92:96] == change_counter and page_count and size < page_count * page_size:
        raise StoreCorrupt(
            f"{path}: truncated (the file has {size:,} bytes, its header says "
            f"{page_count * page_size:,})"
        )


def _sqlite_engine(path: Path, read_only: bool, busy_timeout: float) -> Engine:
    if read_only:
        target = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    else:
        target = str(path)

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            target,
            uri=read_only,
            timeout=busy_timeout,
            isolation_level=None,  # BEGIN is ours (see the "begin" listener)
            check_same_thread=False,
        )
        if not read_only:
            connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA cache_size=-8000")
        connection.create_function("eventscope_words", 2, _sqlite_words_match, deterministic=True)
        connection.set_progress_handler(_sqlite_job_cancelled, _SQLITE_CANCEL_CHECK_STEPS)
        return connection

    engine = create_engine(
        "sqlite://", creator=connect, poolclass=QueuePool, pool_size=4, max_overflow=8
    )

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("eventscope_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _sqlite_words_match(data: str | None, words: str) -> bool:
    """SQL ``eventscope_words(data, 'w1 w2')``: the payload search of a scan."""
    return data is not None and words_match(data, words.split(" "))


def _sqlite_job_cancelled() -> int:
    """SQLite's progress handler: non-zero interrupts the running statement."""
    job = current_job()
    return 1 if job is not None and job.cancelled else 0


def _postgres_engine(location: str, read_only: bool) -> Engine:
    try:
        url = make_url(location)
    except sa_exc.ArgumentError:
        raise StoreNotFound(f"{location!r} is neither a file path nor a database URL") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if not url.drivername.startswith("postgresql"):
        raise StoreNotFound(f"{url.drivername}: unsupported database (use SQLite or PostgreSQL)")
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if read_only:
        options = url.query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        connect_args["options"] = f"{options} -c default_transaction_read_only=on".strip()
    try:
        return create_engine(url, connect_args=connect_args, pool_size=4, max_overflow=8)
    except (sa_exc.ArgumentError, ImportError) as error:
        raise StoreUnreachable(f"{location}: {error}") from None


def _translated(error: BaseException, shown: str) -> StoreError:
    """A driver error as one of core.errors, with a one-line message."""
    original = getattr(error, "orig", error)
    message = str(original).strip().splitlines()[0] if str(original).strip() else repr(original)
    lowered = message.lower()
    if "database is locked" in lowered or "database table is locked" in lowered:
        return StoreBusy(f"{shown}: another writer held the store too long ({message})")
    if "readonly database" in lowered or "read-only transaction" in lowered:
        return StoreReadOnly(f"{shown}: the store is read-only ({message})")
    if "file is not a database" in lowered or "malformed" in lowered or "disk i/o error" in lowered:
        return StoreCorrupt(f"{shown}: {message}")
    if "unable to open database file" in lowered:
        return StoreNotFound(f"{shown}: {message}")
    if isinstance(error, sa_exc.OperationalError) and not isinstance(original, sqlite3.Error):
        if "does not exist" in lowered:
            return StoreNotFound(f"{shown}: {message}")
        if "connection" in lowered or "could not" in lowered or "timeout" in lowered:
            return StoreUnreachable(f"{shown}: {message}")
    if isinstance(error, sa_exc.IntegrityError):
        return StoreError(f"{shown}: constraint violated: {message}")
    return StoreError(f"{shown}: {message}")
