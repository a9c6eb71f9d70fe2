"""Appends, imports and write transactions of a SQL store, on the writer's driver cursor."""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from sqlalchemy import (
    BigInteger,
    Dialect,
    Integer,
    String,
    bindparam,
    column,
    insert,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.errors import ImportFailed, StoreError, WrongExpectedVersion
from core.events import ANY, ExpectedVersion, NewEvent, StreamInfo, category_of
from core.store.compiled import CompiledStatement, positional
from core.store.port import (
    AppendResult,
    ImportRecord,
    ImportResult,
    PreparedEvent,
    RawEvent,
    WriteTransaction,
    decide_append,
    event_checksum,
    prepare_events,
)
from core.store.schema import CHECKSUM_COLUMN, events, streams
from core.store.sql.connections import EVENT_COLUMNS, Connections, head_in
from core.store.validation import validate_stream_id

__all__ = ["IMPORT_CHUNK", "Appends", "write_statements"]

IMPORT_CHUNK: Final = 1000
#: What an append changes in an existing stream's row.
_UPSERT_CHANGES: Final = ("version", "last_position", "last_recorded_at")
#: Values per ``IN (…)`` lookup: few enough for every driver's parameter limit.
IN_SLICE: Final = 500
#: Groups a leading thread commits in a row before it hands the lead on (see
#: Appends._lead_group): its own caller waits that long at most.
_LEAD_ROUNDS: Final = 8


def _lookup(kind: str, count: int) -> Any:
    """``SELECT … WHERE column IN (count markers)`` for one kind of lookup (untyped, so
    the markers carry no casts and the column's own index and collation apply)."""
    values: list[Any] = [bindparam(f"v{n}") for n in range(count)]
    if kind == "event_ids":
        found = table(events.name, column("event_id"), column("stream_id"), column("version"))
        return select(*found.c).where(found.c.event_id.in_(values))
    known = table(streams.name, column("stream_id"), column("version"))
    return select(*known.c).where(known.c.stream_id.in_(values))


def write_statements(dialect: Dialect) -> tuple[CompiledStatement, CompiledStatement]:
    """The two hot write statements, compiled for positional tuples: the events insert
    (RawEvent's fields, then the category and the checksum: an append's rows are its
    result too) and the
    streams upsert (the streams table's columns; on conflict only the version and the
    last place change).

    The tables are given as plain column lists in the rows' order, untyped: the markers
    then follow that order, and no cast is added to a hot insert.
    """
    dialect = positional(dialect)
    event_names = [c.name for c in (*EVENT_COLUMNS, events.c.category)] + [CHECKSUM_COLUMN]
    stream_names = [c.name for c in streams.columns]
    events_table = table(events.name, *(column(name) for name in event_names))
    streams_table = table(streams.name, *(column(name) for name in stream_names))
    insert_events = insert(events_table).values({n: bindparam(n) for n in event_names})
    upsert: Any = (sqlite_insert if dialect.name == "sqlite" else pg_insert)(streams_table)
    upsert = upsert.values({n: bindparam(n) for n in stream_names})
    upsert = upsert.on_conflict_do_update(
        index_elements=["stream_id"],
        set_={name: upsert.excluded[name] for name in _UPSERT_CHANGES},
    )
    compiled = CompiledStatement(insert_events, dialect), CompiledStatement(upsert, dialect)
    if [list(s.parameter_names) for s in compiled] != [event_names, stream_names]:
        raise AssertionError("the write statements' markers are not in the rows' order")
    return compiled


def _rows(
    stream_id: str,
    prepared: list[PreparedEvent],
    first_version: int,
    head: int,
    recorded_at: int,
) -> list[tuple[Any, ...]]:
    """The rows of an append after position ``head``: RawEvent's fields, the category
    and the checksum."""
    category = category_of(stream_id)
    crc32 = zlib.crc32
    # event_checksum()'s bytes, computed inline (a call per event cost a bulk append
    # 3%); every stored row is checked against event_checksum by `check`.
    return [
        (
            position,
            stream_id,
            version,
            event_type,
            data,
            metadata,
            event_id,
            recorded_at,
            category,
            crc32(
                f"{position}\x1f{stream_id}\x1f{version}\x1f{event_type}\x1f{data}"
                f"\x1f{metadata}\x1f{event_id}\x1f{recorded_at}".encode()
            ),
        )
        for position, version, (event_type, data, metadata, event_id) in zip(
            range(head + 1, head + 1 + len(prepared)),
            range(first_version, first_version + len(prepared)),
            prepared,
            strict=True,
        )
    ]


class _Append:
    """One append waiting for a group commit (see :meth:`Appends._lead_group`)."""

    __slots__ = ("done", "error", "expected", "leads", "prepared", "result", "stream_id")

    def __init__(
        self, stream_id: str, prepared: list[PreparedEvent], expected: ExpectedVersion
    ) -> None:
        self.stream_id = stream_id
        self.prepared = prepared
        self.expected = expected
        self.result: AppendResult | None = None
        self.error: BaseException | None = None
        #: Whether this append's thread commits the next group.
        self.leads = False
        #: What a waiting append's thread waits on (None: it leads from the start).
        self.done: threading.Event | None = None


class _EventIdCollision(Exception):
    """The fast path hit the unique event-id index; redo the append with id checks."""


class Appends:
    """What writes events: appends, imports and write transactions.

    Args:
        conns: the store's connections.
        stream_info: one stream's summary (an empty append answers from it).
        max_payload_bytes: the size limit of ``data`` and of ``metadata``.
    """

    def __init__(
        self,
        conns: Connections,
        stream_info: Callable[[str], StreamInfo | None],
        max_payload_bytes: int,
    ) -> None:
        self._conns = conns
        self._stream_info = stream_info
        self.max_payload_bytes = max_payload_bytes
        dialect = positional(conns.engine.dialect)
        insert_events, upsert_streams = write_statements(dialect)
        self._sql_insert_events, self._sql_upsert_streams = insert_events.sql, upsert_streams.sql
        stream_id = bindparam("stream_id", type_=String)
        last_event = select(events.c.position, events.c.recorded_at).order_by(
            events.c.position.desc()
        )
        # The stream's version and the log's head in one statement (one round trip).
        self._version_and_head = CompiledStatement(
            select(
                select(streams.c.version).where(streams.c.stream_id == stream_id).scalar_subquery(),
                last_event.with_only_columns(events.c.position).limit(1).scalar_subquery(),
                last_event.with_only_columns(events.c.recorded_at).limit(1).scalar_subquery(),
            ),
            dialect,
        )
        self._stream_rows = CompiledStatement(
            select(*EVENT_COLUMNS)
            .where(
                events.c.stream_id == stream_id,
                events.c.version >= bindparam("first_version", type_=BigInteger),
            )
            .order_by(events.c.version)
            .limit(bindparam("count", type_=Integer)),
            dialect,
        )
        self._dialect = dialect
        # ``column IN (values)`` by number of values (at most IN_SLICE), compiled once each.
        self._in_statements: dict[tuple[str, int], CompiledStatement] = {}
        # PostgreSQL: a plain transaction; the events lock waits for the first append.
        self._begin_unlocked = None if conns.sqlite else "SELECT 1"
        # Group commit (see _lead_group): appends waiting for the writer, and whether a
        # thread is committing a group now.
        self._queue: list[_Append] = []
        self._leading = False
        self._queue_lock = threading.Lock()

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def write_transaction(self) -> Iterator[Any]:
        """A write transaction for the projections' tables, on a driver cursor (see
        :meth:`core.store.sql.SqlEventStore.write_transaction`)."""
        with self._conns.writing(self._begin_unlocked) as cursor:
            yield cursor

    @contextmanager
    def transaction(self) -> Iterator[WriteTransaction]:
        """A write transaction for appends and read-model changes together."""
        with self._conns.writing(self._begin_unlocked) as cursor:
            unit = _SqlTransaction(self, cursor)
            try:
                yield unit
            except BaseException:
                unit.rolled_back()
                raise

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
            return self.empty_append(stream_id, expected)
        request = _Append(stream_id, prepared, expected)
        with self._queue_lock:
            self._queue.append(request)
            request.leads = not self._leading
            self._leading = True
            if not request.leads:
                request.done = threading.Event()
        if request.done is not None:
            try:
                request.done.wait()
            except BaseException:  # KeyboardInterrupt in the main thread
                self._abandon(request)
                raise
        if request.leads:
            self._lead_group()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _lead_group(self) -> None:
        """Commit the appends waiting now in one transaction (a group commit), again while
        more wait (up to _LEAD_ROUNDS groups), then hand the lead to the first append
        waiting, or give it up.

        Appends from several threads at once then share one commit (one sync of the
        WAL, or one PostgreSQL commit) instead of queueing for one each: on a disk that
        syncs, four threads appended twice as fast. Every append still succeeds or fails
        alone (a savepoint each) and returns only once committed; a lone append runs as
        before, without a savepoint. Leading several groups in a row spares a thread
        switch per group (a GIL hand-over, where the work is CPU-bound).
        """
        for round_ in range(1, _LEAD_ROUNDS + 1):
            with self._queue_lock:
                group, self._queue = self._queue, []
            following: _Append | None = None
            raised = True
            try:
                if len(group) == 1:
                    self._append_alone(group[0])
                else:
                    self._append_group(group)
                raised = False
            finally:
                for request in group:
                    if request.result is None and request.error is None:
                        request.error = StoreError(
                            "the append was not committed (its group failed)"
                        )
                with self._queue_lock:
                    if not self._queue:
                        self._leading = False
                        done = True
                    elif round_ == _LEAD_ROUNDS or raised:
                        following = self._queue[0]
                        following.leads = True
                        done = True
                    else:
                        done = False
                for request in group:
                    if request.done is not None:
                        request.done.set()
                if following is not None and following.done is not None:
                    following.done.set()
            if done:
                return

    def _abandon(self, request: _Append) -> None:
        """Take back an append whose thread stopped waiting (interrupted): dropped if no
        group has taken it yet, and the lead, if it was just handed to it, handed on.
        (A group that took it may still commit it, as a sent request.)"""
        following: _Append | None = None
        with self._queue_lock:
            if request in self._queue:
                self._queue.remove(request)
            if request.leads:
                request.leads = False
                if self._queue:
                    following = self._queue[0]
                    following.leads = True
                else:
                    self._leading = False
        if following is not None and following.done is not None:
            following.done.set()

    def _append_alone(self, request: _Append) -> None:
        """One append in its own transaction (a colliding event id: again, with the ids
        looked up first)."""
        args = request.stream_id, request.prepared, request.expected
        try:
            try:
                with self._conns.writing() as cursor:
                    request.result = self.append_in(cursor, *args, check_ids=False)
            except _EventIdCollision:
                with self._conns.writing() as cursor:
                    request.result = self.append_in(cursor, *args, check_ids=True)
        except BaseException as error:
            request.error = error
            if not isinstance(error, Exception):
                raise

    def _append_group(self, group: list[_Append]) -> None:
        """Several appends in one transaction, each under a savepoint: one that fails
        (a wrong expected version, a colliding event id) is rolled back alone and gets
        its error; if the commit fails, every append of the group gets that error."""
        results: list[tuple[_Append, AppendResult]] = []
        try:
            with self._conns.writing() as cursor:
                cursor.execute("SAVEPOINT eventscope_group")
                try:
                    self._append_batch(cursor, group)
                except _EventIdCollision:  # one by one below, each with its ids checked
                    cursor.execute("ROLLBACK TO SAVEPOINT eventscope_group")
                    for request in group:
                        request.result = request.error = None
                else:
                    cursor.execute("RELEASE SAVEPOINT eventscope_group")
                    return
                for request in group:
                    args = request.stream_id, request.prepared, request.expected
                    cursor.execute("SAVEPOINT eventscope_append")
                    try:
                        with self._conns.translate():
                            try:
                                result = self.append_in(cursor, *args, check_ids=False)
                            except _EventIdCollision:
                                cursor.execute("ROLLBACK TO SAVEPOINT eventscope_append")
                                result = self.append_in(cursor, *args, check_ids=True)
                    except Exception as error:
                        cursor.execute("ROLLBACK TO SAVEPOINT eventscope_append")
                        cursor.execute("RELEASE SAVEPOINT eventscope_append")
                        request.error = error
                        continue
                    cursor.execute("RELEASE SAVEPOINT eventscope_append")
                    results.append((request, result))
        except BaseException as error:
            for request in group:
                if request.error is None:
                    request.error = (
                        error
                        if isinstance(error, Exception)
                        else StoreError(f"the append was not committed ({type(error).__name__})")
                    )
            if not isinstance(error, Exception):
                raise
            return
        for request, result in results:
            request.result = result

    def empty_append(self, stream_id: str, expected: ExpectedVersion) -> AppendResult:
        """An append of no events: only the expected version is checked."""
        info = self._stream_info(stream_id)
        current = None if info is None else info.version
        if not expected.matches(current):
            raise WrongExpectedVersion(stream_id, expected, current)
        last = -1 if info is None else info.version
        position = 0 if info is None else info.last_position
        return AppendResult(stream_id, last, position, position, False, ())

    def append_in(
        self,
        cursor: Any,
        stream_id: str,
        prepared: list[PreparedEvent],
        expected: ExpectedVersion,
        *,
        check_ids: bool,
    ) -> AppendResult:
        """Append in the write transaction of ``cursor`` (which holds the write lock).

        ``check_ids``: look the event ids up first (an idempotent re-send, or a failed
        insert aborting a PostgreSQL transaction); otherwise a collision raises
        _EventIdCollision and the caller retries with the check.
        """
        current, head, last_at = self._version_and_head.execute(
            cursor, stream_id=stream_id
        ).fetchone()
        if check_ids or not expected.matches(current):
            stored = self._already_stored(cursor, stream_id, prepared, expected, current)
            if stored is not None:
                return stored
        if head is None:  # an empty store
            head = last_at = 0
        recorded_at = max(self._conns.clock(), last_at)
        first_version = 0 if current is None else current + 1
        rows = _rows(stream_id, prepared, first_version, head, recorded_at)
        last = rows[-1]
        span = [rows[0][8], last[2], head + 1, last[0], recorded_at, recorded_at]
        try:
            self._insert_rows(cursor, rows, {stream_id: span})
        except (sqlite3.IntegrityError, psycopg.IntegrityError) as error:
            if check_ids:
                raise
            raise _EventIdCollision() from error
        return AppendResult(stream_id, last[2], head + 1, last[0], False, tuple(rows))

    def _already_stored(
        self,
        cursor: Any,
        stream_id: str,
        prepared: list[PreparedEvent],
        expected: ExpectedVersion,
        current: int | None,
    ) -> AppendResult | None:
        """An idempotent re-send's result (its events stored already, at the place it
        would put them), or None: append them.

        Raises:
            WrongExpectedVersion, DuplicateEventId: see :func:`decide_append`.
        """
        ids = [item.event_id for item in prepared]
        found = self._find_event_ids(cursor, ids)
        if decide_append(stream_id, ids, expected, current, found) != "idempotent":
            return None
        first_version = found[ids[0]][1]
        self._stream_rows.execute(
            cursor, stream_id=stream_id, first_version=first_version, count=len(ids)
        )
        stored = tuple(RawEvent._make(row) for row in cursor.fetchall())
        return AppendResult(
            stream_id, stored[-1].version, stored[0].position, stored[-1].position, True, stored
        )

    def _append_batch(self, cursor: Any, group: list[_Append]) -> None:
        """A group's appends with one lookup of their streams' versions, one insert and
        one upsert of the streams, in order (an append whose expectation fails is
        decided alone: idempotent, or its error). Results are set on the requests.

        Raises:
            _EventIdCollision: an event id is stored already (or twice in the group):
                nothing of the batch may stand (the caller rolls it back).
        """
        versions: dict[str, int | None] = dict(
            self._select_in(cursor, "stream_versions", list({r.stream_id for r in group}))
        )
        head, last_at = head_in(cursor)
        recorded_at = max(self._conns.clock(), last_at)
        rows: list[tuple[Any, ...]] = []
        results: list[tuple[_Append, AppendResult]] = []
        for request in group:
            stream_id, prepared, expected = request.stream_id, request.prepared, request.expected
            current = versions.get(stream_id)
            if not expected.matches(current):
                try:
                    with self._conns.translate():
                        stored = self._already_stored(
                            cursor, stream_id, prepared, expected, current
                        )
                except Exception as error:
                    request.error = error
                    continue
                if stored is not None:
                    results.append((request, stored))
                    continue
            first_version = 0 if current is None else current + 1
            added = _rows(stream_id, prepared, first_version, head, recorded_at)
            head = added[-1][0]
            versions[stream_id] = added[-1][2]
            rows += added
            results.append(
                (
                    request,
                    AppendResult(stream_id, added[-1][2], added[0][0], head, False, tuple(added)),
                )
            )
        if rows:
            try:
                self._insert_rows(cursor, rows)
            except (sqlite3.IntegrityError, psycopg.IntegrityError) as error:
                raise _EventIdCollision() from error
        for request, result in results:
            request.result = result

    def _insert_rows(
        self,
        cursor: Any,
        rows: Sequence[tuple[Any, ...]],
        spans: dict[str, list[Any]] | None = None,
    ) -> None:
        """Insert rows (RawEvent's fields, the category, the checksum) and update their
        streams.

        ``spans`` maps each stream to [category, last version, first position, last
        position, first time, last time]; it is worked out from the rows when not given.
        On conflict (the stream exists) only the version and the last place change.
        """
        # Plain positional executemany: SQLAlchemy's per-row parameter processing cost
        # more than SQLite's own insert work (see docs/benchmarks.md).
        if len(rows) == 1:
            cursor.execute(self._sql_insert_events, rows[0])
        else:
            cursor.executemany(self._sql_insert_events, rows)
        if spans is None:
            spans = {}
            for position, stream_id, version, *_, recorded_at, category, _checksum in rows:
                span = spans.get(stream_id)
                if span is None:
                    spans[stream_id] = [
                        category, version, position, position, recorded_at, recorded_at
                    ]  # fmt: skip
                else:
                    span[1] = version
                    span[3] = position
                    span[5] = recorded_at
        if len(spans) == 1:
            ((stream_id, span),) = spans.items()
            cursor.execute(self._sql_upsert_streams, (stream_id, *span))
        else:
            cursor.executemany(
                self._sql_upsert_streams, [(stream_id, *span) for stream_id, span in spans.items()]
            )

    def _find_event_ids(self, cursor: Any, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        return {
            event_id: (stream_id, version)
            for event_id, stream_id, version in self._select_in(cursor, "event_ids", ids)
        }

    def _select_in(self, cursor: Any, kind: str, values: Sequence[str]) -> list[Any]:
        """Rows of the ``kind`` lookup (``event_ids``: where ids are stored;
        ``stream_versions``: streams' last versions) for ``values``, asked in slices the
        drivers accept."""
        rows: list[Any] = []
        for start in range(0, len(values), IN_SLICE):
            part = values[start : start + IN_SLICE]
            statement = self._in_statements.get((kind, len(part)))
            if statement is None:
                statement = self._in_statements[(kind, len(part))] = CompiledStatement(
                    _lookup(kind, len(part)), self._dialect
                )
            cursor.execute(statement.sql, tuple(part))
            rows.extend(cursor.fetchall())
        return rows

    # -- importing -------------------------------------------------------------------------

    def import_records(self, records: Iterable[ImportRecord]) -> ImportResult:
        """Append records in one transaction; stored ones count as duplicates.

        Memory stays bounded: records are consumed in chunks of 1,000.
        """
        appended = duplicates = 0
        with self._conns.writing() as cursor:
            versions: dict[str, int | None] = {}
            head, last_at = head_in(cursor)
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
        known = dict(self._select_in(cursor, "stream_versions", unknown))
        for stream_id in unknown:
            versions[stream_id] = known.get(stream_id)
        rows: list[tuple[Any, ...]] = []
        duplicates = 0
        now = self._conns.clock()
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
            fields = (
                head,
                record.stream_id,
                version,
                item.type,
                item.data,
                item.metadata,
                event_id,
                last_at,
            )
            rows.append((*fields, category_of(record.stream_id), event_checksum(*fields)))
        if rows:
            self._insert_rows(cursor, rows)
        return len(rows), duplicates, head, last_at


class _SqlTransaction(WriteTransaction):
    """A write transaction of a SQL store (its driver cursor)."""

    def __init__(self, appends: Appends, cursor: Any) -> None:
        super().__init__(cursor)
        self._appends = appends
        self._conns = appends._conns
        self._locked = self._conns.sqlite  # BEGIN IMMEDIATE holds the write lock

    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append in this transaction (ids are checked first: a failed insert would abort
        a PostgreSQL transaction)."""
        self._conns.ensure_usable()
        validate_stream_id(stream_id)
        expected = ExpectedVersion.coerce(expected_version)
        prepared = prepare_events(events, self._appends.max_payload_bytes)
        if not prepared:
            return self._appends.empty_append(stream_id, expected)
        if not self._locked:
            self.cursor.execute(self._conns.begin_write)  # positions stay commit-ordered
            self._locked = True
        return self._appends.append_in(self.cursor, stream_id, prepared, expected, check_ids=True)
