"""Message DB's ``message_store.messages`` table, read as an Eventscope store (DESIGN §8).

Message DB (https://github.com/message-db/message-db) keeps every message in one
PostgreSQL table. Its columns map onto a recorded event so:

==================  =====================================================
Eventscope          Message DB
==================  =====================================================
position            ``global_position`` (a sequence: rolled-back writes leave gaps)
stream_id           ``stream_name``
version             ``position`` (from 0)
type                ``type``
data, metadata      the ``jsonb`` objects (NULL: ``{}``; a value that is not an
                    object: ``{"value": it}``)
event_id            ``id`` (a uuid, as its canonical text)
recorded_at         ``time`` (``timestamp without time zone``, UTC)
==================  =====================================================

The category of a stream is the part before the first ``-``, as Message DB's own
``message_store.category()`` says; filters by category use that function, so its
``messages_category`` index answers them. Every read runs in a read-only transaction,
one keyset page at a time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.sql.expression import ClauseElement

from core.errors import NotAnEventStore, StoreError, StoreUnreachable, StoreUnusable
from core.events import (
    RecordedEvent,
    StreamInfo,
    category_of,
    to_micros,
    wall_clock_micros,
)
from core.jobs import checkpoint
from core.sources.base import ForeignSource, ScanProgress
from core.store.compiled import CompiledStatement
from core.store.port import CheckReport, EventFilter, RawEvent, words_match
from core.store.sql.connections import Connections
from core.store.sql.engines import display_location, postgres_engine

__all__ = ["MESSAGES", "PAGE_SIZE", "MessageDbSource"]

#: Rows per keyset page (and streams per page of a listing).
PAGE_SIZE: Final = 500
#: Past every position: the cursor of a backwards read with no upper bound.
_NO_UPPER: Final = 2**63 - 1
#: Findings of ``check`` listed one by one; the rest are counted.
_LISTED_PROBLEMS: Final = 20

MESSAGES: Final = Table(
    "messages",
    MetaData(schema="message_store"),
    Column("global_position", BigInteger, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("time", DateTime(timezone=False), nullable=False),
    Column("stream_name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("data", JSONB),
    Column("metadata", JSONB),
    Column("id", UUID(as_uuid=False), nullable=False),
)
_m = MESSAGES.c


def _object_text(column: Any) -> ColumnElement[str]:
    """A jsonb column as the text of a JSON object: NULL (or JSON null) is ``{}``, and
    any other value that is not an object is wrapped as ``{"value": it}``."""
    kind = func.jsonb_typeof(column)
    return case(
        (kind == "object", cast(column, Text)),
        (func.coalesce(kind, "null") == "null", literal("{}")),
        else_=cast(func.jsonb_build_object("value", column), Text),
    )


#: A row in RawEvent's field order (the time still a naive UTC datetime).
_EVENT_COLUMNS: Final = (
    _m.global_position,
    _m.stream_name,
    _m.position,
    _m.type,
    _object_text(_m.data),
    _object_text(_m.metadata),
    cast(_m.id, Text),
    _m.time,
)
_CATEGORY: Final = func.message_store.category(_m.stream_name)


def _naive_utc(moment: datetime) -> datetime:
    """An aware time as Message DB stores times: naive, in UTC."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no zone")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching names that start with ``prefix`` (escaped with ``\\``)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class _Shape:
    """Which of a filter's fields the SQL of a read tests (the key of its statement),
    and the values it binds."""

    __slots__ = ("backwards", "names", "post", "values")

    def __init__(self, where: EventFilter, backwards: bool) -> None:
        values: dict[str, Any] = {}
        if where.stream_id is not None:
            values["stream_id"] = where.stream_id
        if where.category is not None:
            values["category"] = where.category
        if where.types:
            values["types"] = list(where.types)
        if where.stream_prefix:
            values["prefix"] = _like_prefix(where.stream_prefix)
        if where.since is not None:
            values["since"] = _naive_utc(where.since)
        if where.until is not None:
            values["until"] = _naive_utc(where.until)
        if where.correlation_id is not None:
            values["correlation_id"] = where.correlation_id
        if backwards:
            bounds = [b for b in (where.from_position, where.to_position) if b is not None]
            values["cursor"] = min(bounds) + 1 if bounds else _NO_UPPER
        else:
            values["cursor"] = max((where.from_position or 1) - 1, 0)
            if where.to_position is not None:
                values["upper"] = where.to_position
        self.values = values
        self.backwards = backwards
        #: The fields tested in SQL: with the direction, the key of the statement.
        self.names = tuple(sorted(name for name in values if name != "cursor"))
        #: Tests SQL does not settle: the payload search (and JSON equality of the
        #: correlation id, which ``->>`` would also find in a number).
        self.post = bool(where.words) or where.correlation_id is not None


def _conditions(names: Iterable[str]) -> list[ColumnElement[bool]]:
    """The SQL conditions of a shape's fields, values as bound parameters."""
    built: dict[str, ColumnElement[bool]] = {
        "stream_id": _m.stream_name == bindparam("stream_id", type_=Text),
        "category": _CATEGORY == bindparam("category", type_=Text),
        "types": _m.type == any_(bindparam("types", type_=ARRAY(Text))),
        "prefix": _m.stream_name.like(bindparam("prefix", type_=Text), escape="\\"),
        "since": _m.time >= bindparam("since", type_=DateTime),
        "until": _m.time <= bindparam("until", type_=DateTime),
        "correlation_id": _m.metadata["correlation_id"].astext
        == bindparam("correlation_id", type_=Text),
        "upper": _m.global_position <= bindparam("upper", type_=BigInteger),
    }
    return [built[name] for name in names]


def _check_statements() -> tuple[ClauseElement, ...]:
    """The statements of ``check``, each one pass over the table on the server (only
    totals and at most ``listed`` findings come back): totals; streams whose versions
    are not 0..n-1; messages stored before the version preceding them; and how often
    ``time`` decreases along ``global_position``."""
    position = _m.global_position
    listed = bindparam("listed", _LISTED_PROBLEMS, type_=Integer)
    totals = select(
        func.count(), func.count(_m.stream_name.distinct()), func.min(position), func.max(position)
    )
    versions = (
        select(_m.stream_name, func.count(), func.min(_m.position), func.max(_m.position))
        .group_by(_m.stream_name)
        .having(or_(func.min(_m.position) != 0, func.max(_m.position) != func.count() - 1))
        .order_by(_m.stream_name.collate("C"))
        .limit(listed)
    )
    previous = func.lag(position).over(partition_by=_m.stream_name, order_by=_m.position)
    ordered = select(_m.stream_name, _m.position, position, previous.label("previous")).subquery()
    order = (
        select(ordered.c.stream_name, ordered.c.position, ordered.c.global_position)
        .where(ordered.c.previous > ordered.c.global_position)
        .order_by(ordered.c.global_position)
        .limit(listed)
    )
    earlier = func.lag(_m.time).over(order_by=position)
    timed = select(_m.time, earlier.label("previous")).subquery()
    times = select(func.count()).select_from(timed).where(timed.c.previous > timed.c.time)
    return totals, versions, order, times


class MessageDbSource(ForeignSource):
    """A read-only EventStore over Message DB's ``message_store.messages`` table.

    Open it with :meth:`open` (``core.sources.open_source`` does, for
    ``messagedb+postgresql://`` URLs). Every write raises SourceReadOnly.

    Args:
        connections: the database's connections, read-only.
        location: the ``messagedb+postgresql://`` URL it was opened at.
    """

    tool = "Message DB"

    def __init__(self, connections: Connections, location: str) -> None:
        self._conns = connections
        self.location = location
        dialect = connections.engine.dialect
        self._dialect = dialect
        self._pages: dict[tuple[bool, tuple[str, ...]], CompiledStatement] = {}
        self._pages_lock = threading.Lock()
        size = bindparam("page_size", PAGE_SIZE, type_=Integer)
        stream = _m.stream_name == bindparam("stream_id", type_=Text)
        version = bindparam("cursor", 0, type_=BigInteger)
        by_version = select(*_EVENT_COLUMNS).where(stream)
        self._stream_pages = {
            False: CompiledStatement(
                by_version.where(_m.position > version).order_by(_m.position).limit(size),
                dialect,
            ),
            True: CompiledStatement(
                by_version.where(_m.position < version).order_by(_m.position.desc()).limit(size),
                dialect,
            ),
        }
        self._by_id = CompiledStatement(
            select(*_EVENT_COLUMNS).where(_m.id == bindparam("event_id", type_=UUID())), dialect
        )
        self._head = CompiledStatement(select(func.max(_m.global_position)), dialect)
        self._first_from = CompiledStatement(
            select(_m.global_position, _m.time)
            .where(_m.global_position >= bindparam("at", type_=BigInteger))
            .order_by(_m.global_position)
            .limit(1),
            dialect,
        )
        self._times = CompiledStatement(
            select(_m.global_position, _m.time).where(
                _m.global_position == any_(bindparam("positions", type_=ARRAY(BigInteger)))
            ),
            dialect,
        )
        self._checks = tuple(CompiledStatement(stmt, dialect) for stmt in _check_statements())
        self._stream_rows: dict[tuple[str, ...], CompiledStatement] = {}
        self._counts: dict[tuple[str, ...], CompiledStatement] = {}

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, location: str) -> MessageDbSource:
        """Open Message DB's database at ``messagedb+postgresql://user@host[:port]/db``.

        Connections run read-only transactions (``default_transaction_read_only``).

        Raises:
            StoreUnreachable: the server cannot be reached (or refuses the login).
            StoreNotFound: the database does not exist.
            NotAnEventStore: the database holds no ``message_store.messages`` table.
        """
        scheme, _, rest = location.partition("://")
        target = scheme.split("+", 1)[1] + "://" + rest
        engine = postgres_engine(target, read_only=True)
        connections = Connections(
            engine,
            location,
            read_only=True,
            clock=wall_clock_micros,
            interrupted=threading.Event(),
        )
        source = cls(connections, location)
        try:
            source._probe()
        except StoreUnusable:
            connections.close()
            raise
        except StoreError as error:
            connections.close()
            raise StoreUnreachable(str(error)) from None
        except BaseException:
            connections.close()
            raise
        return source

    def _probe(self) -> None:
        """Refuse a database without Message DB's table (or without its columns)."""
        shown = self.display_location
        with self._conns.driver_reading() as cursor:
            cursor.execute("SELECT to_regclass('message_store.messages') IS NOT NULL")
            (found,) = cursor.fetchone()
        if not found:
            raise NotAnEventStore(
                f"{shown}: no message_store.messages table (is this Message DB's database?)"
            )
        try:
            with self._conns.driver_reading() as cursor:
                self._head.execute(cursor)
                probe = select(*_EVENT_COLUMNS).limit(0)
                CompiledStatement(probe, self._dialect).execute(cursor)
        except StoreError as error:
            raise NotAnEventStore(
                f"{shown}: message_store.messages is not Message DB's table ({error})"
            ) from None

    @property
    def display_location(self) -> str:
        """The URL fit to show (a password hidden)."""
        return display_location(self.location)

    # -- reads by position -------------------------------------------------------------

    def _page_statement(self, backwards: bool, names: tuple[str, ...]) -> CompiledStatement:
        """The page statement of a filter's shape, compiled at its first read."""
        key = (backwards, names)
        statement = self._pages.get(key)
        if statement is not None:
            return statement
        conditions = _conditions(names)
        cursor = bindparam("cursor", 0, type_=BigInteger)
        conditions.append(_m.global_position < cursor if backwards else _m.global_position > cursor)
        order = _m.global_position.desc() if backwards else _m.global_position
        stmt = (
            select(*_EVENT_COLUMNS)
            .where(and_(*conditions))
            .order_by(order)
            .limit(bindparam("page_size", PAGE_SIZE, type_=Integer))
        )
        statement = CompiledStatement(stmt, self._dialect)
        with self._pages_lock:
            self._pages.setdefault(key, statement)
        return statement

    def _rows(
        self, where: EventFilter, backwards: bool, limit: int | None
    ) -> Iterator[tuple[Any, ...]]:
        """Matching rows (time still naive) in position order, a page per transaction."""
        if limit is not None and limit <= 0:
            return
        shape = _Shape(where, backwards)
        statement = self._page_statement(backwards, shape.names)
        values = dict(shape.values)
        words = where.words
        found = 0
        progress = None
        if shape.post:  # payload words or a correlation id: the rows are looked through
            low = where.from_position if where.from_position is not None else 1
            high = where.to_position if where.to_position is not None else self.head_position()
            if backwards and where.from_position is not None:
                low, high = 1, min(high, where.from_position)
            progress = ScanProgress(low, high, backwards=backwards)
        while True:
            checkpoint()
            wanted = PAGE_SIZE if limit is None or shape.post else min(PAGE_SIZE, limit - found)
            values["page_size"] = wanted
            with self._conns.driver_reading() as cursor:
                page = statement.fetchall(cursor, **values)
            if progress is not None and page:
                progress.reached(int(page[-1][0]))
            for row in page:
                if shape.post:
                    if words and not words_match(row[4], words):
                        continue
                    if where.correlation_id is not None and not where.matches(self._event(row)):
                        continue
                found += 1
                yield row
                if limit is not None and found >= limit:
                    return
            if len(page) < wanted:
                return
            values["cursor"] = page[-1][0]

    @staticmethod
    def _event(row: Sequence[Any]) -> RecordedEvent:
        position, stream_id, version, kind, data, metadata, event_id, time = row
        return RecordedEvent(
            position,
            stream_id,
            version,
            kind,
            orjson.loads(data),
            orjson.loads(metadata),
            event_id,
            time.replace(tzinfo=UTC),
        )

    @staticmethod
    def _raw(row: Sequence[Any]) -> RawEvent:
        position, stream_id, version, kind, data, metadata, event_id, time = row
        return RawEvent(
            position,
            stream_id,
            version,
            kind,
            data,
            metadata,
            event_id,
            to_micros(time.replace(tzinfo=UTC)),
        )

    def iter_raw(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RawEvent]:
        """Rows in position order (or reverse), filtered, a keyset page at a time.

        Stream, category, types, prefix, positions, times and the correlation id are
        tested in SQL; the payload search is tested on each page's rows.
        """
        self._conns.ensure_usable()
        return (self._raw(row) for row in self._rows(where, backwards, limit))

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events in position order (or reverse), filtered, a keyset page at a time."""
        self._conns.ensure_usable()
        return (self._event(row) for row in self._rows(where, backwards, limit))

    def count(self, where: EventFilter = EventFilter()) -> int:
        """How many events match (one ``count(*)`` unless a payload search needs a scan)."""
        self._conns.ensure_usable()
        shape = _Shape(where, backwards=False)
        if shape.post:
            return sum(1 for _ in self._rows(where, False, None))
        statement = self._counts.get(shape.names)
        if statement is None:
            conditions = _conditions(shape.names)
            conditions.append(_m.global_position > bindparam("cursor", 0, type_=BigInteger))
            statement = CompiledStatement(
                select(func.count()).select_from(MESSAGES).where(and_(*conditions)),
                self._dialect,
            )
            self._counts[shape.names] = statement
        with self._conns.driver_reading() as cursor:
            (counted,) = statement.execute(cursor, **shape.values).fetchone()
        return int(counted)

    # -- reads of one stream or one event ----------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """One stream's events by version (Message DB's ``position``), a page at a time."""
        self._conns.ensure_usable()
        EventFilter(stream_id=stream_id)  # refuses text PostgreSQL cannot take
        return self._read_stream(stream_id, from_version, backwards, limit)

    def _read_stream(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> Iterator[RecordedEvent]:
        if limit is not None and limit <= 0:
            return
        if backwards:
            cursor = _NO_UPPER if from_version is None else from_version + 1
        else:
            cursor = (from_version or 0) - 1
        statement = self._stream_pages[backwards]
        found = 0
        while True:
            checkpoint()
            wanted = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - found)
            with self._conns.driver_reading() as reading:
                page = statement.fetchall(
                    reading, stream_id=stream_id, cursor=cursor, page_size=wanted
                )
            for row in page:
                yield self._event(row)
            found += len(page)
            if len(page) < wanted or (limit is not None and found >= limit):
                return
            cursor = page[-1][2]

    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The message with this id (Message DB's unique ``messages_id`` index), or None."""
        self._conns.ensure_usable()
        try:
            canonical = str(uuid.UUID(str(event_id)))
        except ValueError:
            return None  # not a uuid: no message has it
        with self._conns.driver_reading() as cursor:
            row = self._by_id.execute(cursor, event_id=canonical).fetchone()
        return None if row is None else self._event(row)

    # -- streams -----------------------------------------------------------------------

    def _stream_statement(self, names: tuple[str, ...]) -> CompiledStatement:
        """Streams (name, count, last version, first and last position) sorted byte-wise
        by name, after the ``after`` cursor, narrowed by the named fields."""
        statement = self._stream_rows.get(names)
        if statement is not None:
            return statement
        byte_order = _m.stream_name.collate("C")
        built: dict[str, ColumnElement[bool]] = {
            "stream_id": _m.stream_name == bindparam("stream_id", type_=Text),
            "category": _CATEGORY == bindparam("category", type_=Text),
            "prefix": _m.stream_name.like(bindparam("prefix", type_=Text), escape="\\"),
            "after": byte_order > bindparam("after", type_=Text),
        }
        stmt = (
            select(
                _m.stream_name,
                func.count(),
                func.max(_m.position),
                func.min(_m.global_position),
                func.max(_m.global_position),
            )
            .group_by(_m.stream_name)
            .order_by(byte_order)
            .limit(bindparam("page_size", PAGE_SIZE, type_=Integer))
        )
        if names:
            stmt = stmt.where(and_(*(built[name] for name in names)))
        statement = CompiledStatement(stmt, self._dialect)
        self._stream_rows[names] = statement
        return statement

    def _infos(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> list[StreamInfo]:
        """StreamInfos of listing rows, their first and last times probed by position."""
        positions = sorted({p for row in rows for p in (row[3], row[4])})
        times = dict(self._times.fetchall(cursor, positions=positions)) if positions else {}
        return [
            StreamInfo(
                name,
                category_of(name),
                int(version),
                int(count),
                int(first),
                int(last),
                times[first].replace(tzinfo=UTC),
                times[last].replace(tzinfo=UTC),
            )
            for name, count, version, first, last in rows
        ]

    def stream_info(self, stream_id: str) -> StreamInfo | None:
        """One stream's summary, or None if it has no messages."""
        self._conns.ensure_usable()
        EventFilter(stream_id=stream_id)
        statement = self._stream_statement(("stream_id",))
        with self._conns.driver_reading() as cursor:
            rows = statement.fetchall(cursor, stream_id=stream_id, page_size=1)
            infos = self._infos(cursor, rows)
        return infos[0] if infos else None

    def list_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams sorted byte-wise by name, a page of streams per transaction.

        Message DB keeps no streams table: each page groups the messages of the
        streams it lists (``category`` uses Message DB's category index).
        """
        self._conns.ensure_usable()
        EventFilter(category=category, stream_prefix=prefix, stream_id=after)
        return self._list_streams(prefix, category, after, limit)

    def _list_streams(
        self, prefix: str | None, category: str | None, after: str | None, limit: int | None
    ) -> Iterator[StreamInfo]:
        if limit is not None and limit <= 0:
            return
        values: dict[str, Any] = {}
        if category is not None:
            values["category"] = category
        if prefix:
            values["prefix"] = _like_prefix(prefix)
        if after is not None:
            values["after"] = after
        found = 0
        while True:
            checkpoint()
            wanted = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - found)
            statement = self._stream_statement(tuple(sorted(values)))
            with self._conns.driver_reading() as cursor:
                rows = statement.fetchall(cursor, page_size=wanted, **values)
                infos = self._infos(cursor, rows)
            yield from infos
            found += len(infos)
            if len(rows) < wanted or (limit is not None and found >= limit):
                return
            values["after"] = rows[-1][0]

    # -- the head and time -------------------------------------------------------------

    def head_position(self) -> int:
        """The last ``global_position`` (0 when there is no message)."""
        self._conns.ensure_usable()
        with self._conns.driver_reading() as cursor:
            (head,) = self._head.execute(cursor).fetchone()
        return int(head or 0)

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (0 if none).

        Message DB has no index on ``time``: this is a binary search over
        ``global_position`` (its primary key), probing the time of the first message at
        or after a position, about log2(head) probes in one transaction. It assumes
        ``time`` never decreases along ``global_position``; Message DB writes the
        transaction's start time, so concurrent writers can break that slightly
        (``check`` counts where it does), and the answer is then a position near it.
        """
        self._conns.ensure_usable()
        target = _naive_utc(moment)
        with self._conns.driver_reading() as cursor:
            (head,) = self._head.execute(cursor).fetchone()
            low, high = 0, (head or 0) + 1  # low: at or before the answer; high: past it
            while high - low > 1:
                middle = (low + high) // 2
                position, time = self._first_from.execute(cursor, at=middle).fetchone()
                if time <= target:
                    low = position
                else:
                    high = middle
        return int(low)

    # -- integrity ---------------------------------------------------------------------

    def check(self) -> CheckReport:
        """What holds in Message DB's table: each stream's versions contiguous from 0,
        and its messages in version order along ``global_position``.

        Gaps in ``global_position`` are normal here (a rolled-back write uses up its
        number) and so are only counted (``position_gaps``), as are the places where
        ``time`` decreases along it (``time_decreases``: times and ``position_at`` are
        then approximate there).
        """
        self._conns.ensure_usable()
        problems: list[str] = []
        with self._conns.driver_reading() as cursor:
            totals, versions, order, times = self._checks
            events, streams, low, head = totals.execute(cursor).fetchone()
            for name, count, first, last in versions.fetchall(cursor, listed=_LISTED_PROBLEMS):
                problems.append(
                    f"stream {name!r} has non-contiguous versions ({count} messages, "
                    f"versions {first}..{last})"
                )
            for name, version, position in order.fetchall(cursor, listed=_LISTED_PROBLEMS):
                problems.append(
                    f"stream {name!r}: version {version} (position {position}) is stored "
                    "before the version preceding it"
                )
            (time_decreases,) = times.execute(cursor).fetchone()
        events, head = int(events), int(head or 0)
        gaps = (head - int(low) + 1 - events) if events else 0
        return CheckReport(
            not problems,
            events,
            head,
            int(streams),
            tuple(problems),
            {
                "source": self.tool,
                "position_gaps": gaps,
                "time_decreases": int(time_decreases or 0),
            },
        )

    # -- interrupting and closing ------------------------------------------------------

    def interrupt(self) -> None:
        """Cancel the statements running on the source's connections (from any thread);
        every read started afterwards raises Cancelled until :meth:`resume`."""
        self._conns.interrupt()

    def resume(self) -> None:
        """Let reads run again after :meth:`interrupt` (not after :meth:`close`)."""
        self._conns.resume()

    def close(self) -> None:
        """Cancel what runs and release the connections; later calls raise StoreClosed."""
        self._conns.close()
