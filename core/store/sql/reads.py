"""Reads of a SQL store: keyset pages of filtered events, counts, streams and probes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Dialect,
    FromClause,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
)

from core.errors import StoreCorrupt, one_line
from core.events import RecordedEvent, StreamInfo, from_micros, to_micros
from core.jobs import checkpoint
from core.store.compiled import CompiledStatement
from core.store.port import EventFilter, RawEvent, stream_info_from_row
from core.store.schema import events, streams
from core.store.sql.connections import EVENT_COLUMNS, HEAD_SQL, STREAM_COLUMNS, Connections
from core.store.sql.search import SearchIndex

__all__ = ["PAGE_SIZE", "PREFIX_PROBE", "SCAN_WINDOW", "Reads"]

PAGE_SIZE: Final = 1000
#: Positions per query when a search scans events the index does not cover yet: each
#: window is a short statement, with a progress report and a cancel check between.
SCAN_WINDOW: Final = 50_000
#: Positions a read with a prefix search scans before it asks the index (see Reads.parts).
PREFIX_PROBE: Final = 20_000
#: Shapes of plain filters whose page statements a store keeps compiled.
_PLAIN_SHAPES: Final = 256


class _Part:
    """One position range of a filtered read and how to answer it.

    A search splits the filter's range at the search index's position: the part
    the index covers joins its tables (``source``, ordered by ``key``); the rest is
    scanned in windows of positions (``windowed``), with progress and cancel checks.
    """

    __slots__ = (
        "conditions",
        "high",
        "key",
        "low",
        "narrow",
        "plain",
        "source",
        "where",
        "windowed",
    )

    def __init__(
        self,
        conditions: list[ColumnElement[bool]],
        low: int,
        high: int | None,
        *,
        source: FromClause = events,
        key: ColumnElement[int] = events.c.position,
        windowed: bool = False,
        plain: tuple[EventFilter, tuple[Any, ...], dict[str, Any], bool] | None = None,
    ) -> None:
        self.conditions = conditions
        self.low = low
        self.high = high
        self.source = source
        self.key = key
        self.windowed = windowed
        #: A filter of plain parameters: (filter, shape, values, narrow), its conditions
        #: built only when no statement of its shape is compiled yet (see
        #: SearchIndex.plain_shape); ``conditions`` is then empty.
        self.plain = plain

    def bounded(self, low: int, high: int | None) -> list[ColumnElement[bool]]:
        """The conditions, limited to positions ``low..high`` (on the ordering key)."""
        conditions = [*self.conditions, self.key >= low]
        if high is not None:
            conditions.append(self.key <= high)
        return conditions


class _PageStatements:
    """The two statements of a keyset read, built and compiled once: the first page
    (``first``: from the start of the range) and each next one (``following``: strictly
    after the ``cursor`` parameter), both limited by ``page_size``.

    Args:
        conditions: the read's conditions, values as bound parameters.
        key: the ordering key (position, version, or the search index's position).
        backwards: descending order.
        dialect: the engine's dialect.
        source: what the rows come from (the events, or the search index's join).
    """

    __slots__ = ("first", "following", "key_index", "selects")

    def __init__(
        self,
        conditions: list[ColumnElement[bool]],
        key: ColumnElement[int],
        backwards: bool,
        dialect: Dialect,
        source: FromClause = events,
    ) -> None:
        stmt = select(*EVENT_COLUMNS).select_from(source)
        stmt = stmt.order_by(key.desc() if backwards else key)
        if conditions:
            stmt = stmt.where(and_(*conditions))
        # Placeholder values: an expanding IN (several types) is rendered at compile time,
        # which needs a value for every parameter.
        size = bindparam("page_size", PAGE_SIZE, type_=Integer)
        after = bindparam("cursor", 0, type_=BigInteger)
        #: The uncompiled statements (a damaged page is read again row by row).
        self.selects = (
            stmt.limit(size),
            stmt.where(key < after if backwards else key > after).limit(size),
        )
        self.first, self.following = (CompiledStatement(part, dialect) for part in self.selects)
        #: Where the key is in a row (version or position), for the next page's cursor.
        self.key_index = 2 if key is events.c.version else 0


def decoded(
    pages: Iterable[list[tuple[Any, ...]]], shown: str = "the store"
) -> Iterator[RecordedEvent]:
    """Decode pages of rows into events (events of one append share one time object).

    Raises:
        StoreCorrupt: a row's payload is not JSON or its time is not a time: the row is
            damaged; the message names its position (``shown``: the store).
    """
    loads = orjson.loads
    make = tuple.__new__
    last_micros = -1
    last_time = from_micros(0)
    for page in pages:
        for position, stream_id, version, kind, data, meta_json, event_id, micros in page:
            try:
                if micros != last_micros:
                    last_micros = micros
                    last_time = from_micros(micros)
                payload = loads(data), loads(meta_json)
            except (ValueError, TypeError, OverflowError, OSError) as error:
                raise StoreCorrupt(
                    f"{shown}: the event at position {position} is damaged "
                    f"({one_line(str(error))}); "
                    "`eventscope check` lists every damaged event"
                ) from None
            yield make(
                RecordedEvent,
                (position, stream_id, version, kind, *payload, event_id, last_time),
            )


class Reads:
    """What reads events and streams, page by page.

    Args:
        conns: the store's connections.
        index: the search index (for the parts of a search).
        page_size: rows per keyset page.
    """

    def __init__(self, conns: Connections, index: SearchIndex, page_size: int) -> None:
        self._conns = conns
        self._index = index
        self._sqlite = conns.sqlite
        self.page_size = page_size
        # The reads an application makes all day, compiled once: a small read spent
        # ten times the database's work building and compiling its statements.
        dialect = conns.engine.dialect
        stream = [events.c.stream_id == bindparam("stream_id", type_=events.c.stream_id.type)]
        self._stream_statements = {
            backwards: _PageStatements(stream, events.c.version, backwards, dialect)
            for backwards in (False, True)
        }
        #: Page statements of plain filters by shape, direction, key and far bound,
        #: compiled at their first read (see _plain_statements).
        self._plain: dict[tuple[Any, ...], _PageStatements] = {}
        self._by_id = CompiledStatement(
            select(*EVENT_COLUMNS).where(
                events.c.event_id == bindparam("event_id", type_=events.c.event_id.type)
            ),
            dialect,
        )
        self._stream_row = CompiledStatement(
            select(*STREAM_COLUMNS).where(
                streams.c.stream_id == bindparam("stream_id", type_=streams.c.stream_id.type)
            ),
            dialect,
        )
        self._position_at = CompiledStatement(_position_at_search(), dialect)

    # -- filtered reads --------------------------------------------------------------------

    def stream_pages(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """One stream's rows by version, page by page, from ``from_version`` (inclusive)."""
        cursor: int | None = None
        if from_version is not None:
            cursor = from_version + 1 if backwards else from_version - 1
        statements = self._stream_statements[backwards]
        return self._pages(statements, cursor, limit, {"stream_id": stream_id})

    def filtered_pages(
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
        if where.stream_id is not None:
            plain = self._index.plain_shape(where)
            if plain is None:
                conditions = self._index.content_conditions(where, indexed=False)
                if low is not None:
                    conditions.append(events.c.position >= low)
                if high is not None:
                    conditions.append(events.c.position <= high)
                statements = _PageStatements(
                    conditions, events.c.version, backwards, self._conns.engine.dialect
                )
                yield from self._pages(statements, None, limit)
                return
            shape, values = plain
            statements = self._plain_statements(
                where, shape, events.c.version, backwards, low is not None, high is not None
            )
            if low is not None:
                values["low"] = low
            if high is not None:
                values["high"] = high
            yield from self._pages(statements, None, limit, values)
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
        self,
        where: EventFilter,
        low: int,
        high: int | None,
        *,
        probe: bool | None = None,
        compiled: bool = True,
    ) -> list[_Part]:
        """The filter's position range ``low..high``, split where the search index ends.

        ``compiled``: a plain filter's part is read by its shape's compiled statements
        (its conditions are built only to compile them); otherwise, as for a count, the
        part carries its conditions.

        ``probe`` (True: forward, False: backwards, None: no probe) starts a read whose
        search has a prefix word (``ware*``) by scanning PREFIX_PROBE positions at the
        near end first. FTS5 merges every doclist a prefix matches before it returns a
        row (1.4 s for a word in each of 10M events); a prefix that common fills a page
        from the probe, and one rare enough to miss it has small doclists.
        """
        index = self._index
        searching = bool(where.words) or where.correlation_id is not None
        if not searching:
            narrow = high is not None and high - low < SCAN_WINDOW
            plain = index.plain_shape(where, narrow=narrow) if compiled else None
            if plain is not None:
                return [_Part([], low, high, plain=(where, *plain, narrow))]
            return [_Part(index.content_conditions(where, indexed=False, narrow=narrow), low, high)]
        indexed_to = index.indexed_position()
        parts: list[_Part] = []
        covered = indexed_to if high is None else min(high, indexed_to)
        if low <= covered:
            source, key = index.index_join(where)
            indexed = _Part(
                index.content_conditions(where, indexed=True), low, covered, source=source, key=key
            )
            prefix = any(word.endswith("*") for word in where.words)
            if (
                probe is not None
                and prefix
                and self._sqlite
                and where.correlation_id is None
                and covered - low + 1 > 2 * PREFIX_PROBE
            ):
                scan = index.content_conditions(where, indexed=False)
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
            conditions = index.content_conditions(where, indexed=False)
            parts.append(_Part(conditions, scan_low, high, windowed=True))
        return parts

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
        if backwards:
            cursor = None if high is None else high + 1
            far = low if low > 1 else None
        else:
            cursor = low - 1
            far = high
        if part.plain is not None:
            where, shape, values, narrow = part.plain
            statements = self._plain_statements(
                where,
                shape,
                part.key,
                backwards,
                backwards and far is not None,
                not backwards and far is not None,
                narrow=narrow,
            )
            if far is not None:
                values = {**values, "low" if backwards else "high": far}
            return self._pages(statements, cursor, limit, values)
        conditions = list(part.conditions)
        if far is not None:
            conditions.append(part.key >= far if backwards else part.key <= far)
        dialect = self._conns.engine.dialect
        statements = _PageStatements(conditions, part.key, backwards, dialect, part.source)
        return self._pages(statements, cursor, limit)

    def _plain_statements(
        self,
        where: EventFilter,
        shape: tuple[Any, ...],
        key: ColumnElement[int],
        backwards: bool,
        low: bool,
        high: bool,
        *,
        narrow: bool = False,
    ) -> _PageStatements:
        """The page statements of a plain filter's shape (``low``, ``high``: whether the
        key has those bounds, as the ``low`` and ``high`` parameters), compiled at the
        first read of that shape and kept (a small read spent ten times the database's
        work compiling its statements)."""
        by_version = key is events.c.version
        cache_key = (shape, by_version, backwards, low, high)
        statements = self._plain.get(cache_key)
        if statements is None:
            conditions = self._index.content_conditions(where, indexed=False, narrow=narrow)
            bound = events.c.position  # a stream read is bounded by position too
            if low:
                conditions.append(bound >= bindparam("low", 0, type_=BigInteger))
            if high:
                conditions.append(bound <= bindparam("high", 0, type_=BigInteger))
            if len(self._plain) >= _PLAIN_SHAPES:
                self._plain.clear()  # many shapes of many types: compile them again
            statements = self._plain[cache_key] = _PageStatements(
                conditions, key, backwards, self._conns.engine.dialect
            )
        return statements

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

    def count(self, where: EventFilter) -> int:
        """How many events match: arithmetic when nothing but positions filters (they are
        gapless), an index count where the search index covers, a windowed scan after."""
        bounds = self._position_bounds(where)
        if bounds is None:
            return 0
        low, high = bounds
        total = 0
        # A count builds its own statement: its parts carry their conditions.
        for part in self._parts(where, max(low or 1, 1), high, compiled=False):
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
                with self._conns.reading() as conn:
                    total += int(conn.execute(stmt).scalar_one())
        return total

    def _pages(
        self,
        statements: _PageStatements,
        cursor: int | None,
        limit: int | None,
        values: dict[str, Any] | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Keyset pages of ``statements``, strictly after ``cursor`` in the read's
        direction (``values``: their parameters other than the page's).

        Checks for cancellation (:mod:`core.jobs`, and the store's interrupt when it
        opens each page's transaction) before each page.
        """
        first, following, key_index = statements.first, statements.following, statements.key_index
        values = dict(values or ())
        remaining = limit
        while remaining is None or remaining > 0:
            page_size = self.page_size if remaining is None else min(self.page_size, remaining)
            values["page_size"] = page_size
            checkpoint()
            # One statement: SQLite's implicit transaction is its snapshot.
            with self._conns.driver_reading(snapshot=not self._sqlite) as rows_cursor:
                try:
                    if cursor is None:
                        rows = first.fetchall(rows_cursor, **values)
                    else:
                        rows = following.fetchall(rows_cursor, cursor=cursor, **values)
                except sqlite3.OperationalError as error:
                    if "decode to utf-8" not in str(error).lower():
                        raise
                    raise self._undecodable(
                        rows_cursor.connection, statements, cursor, values, error
                    ) from None
            if rows:
                yield rows
            if len(rows) < page_size:
                return
            cursor = rows[-1][key_index]
            if remaining is not None:
                remaining -= len(rows)

    def _undecodable(
        self,
        driver: Any,
        statements: _PageStatements,
        cursor: int | None,
        values: dict[str, Any],
        error: sqlite3.OperationalError,
    ) -> StoreCorrupt:
        """The error for a SQLite page holding text that is no longer UTF-8, naming the
        first such event: the page's positions are read again (numbers decode), then its
        rows one by one until one fails."""
        dialect = self._conns.engine.dialect
        index = 0 if cursor is None else 1
        positions_only = CompiledStatement(
            statements.selects[index].with_only_columns(events.c.position), dialect
        )
        one_row = CompiledStatement(
            select(*EVENT_COLUMNS).where(events.c.position == bindparam("at", type_=BigInteger)),
            dialect,
        )
        probe = driver.cursor()
        try:
            if cursor is not None:
                values = {**values, "cursor": cursor}
            for (position,) in positions_only.fetchall(probe, **values):
                try:
                    one_row.fetchall(probe, at=position)
                except sqlite3.OperationalError:
                    return StoreCorrupt(
                        f"{self._conns.shown()}: the event at position {position} is damaged "
                        f"({one_line(str(error))}); `eventscope check` lists every damaged event"
                    )
        finally:
            probe.close()
        return StoreCorrupt(
            f"{self._conns.shown()}: a stored event is damaged ({one_line(str(error))}); "
            "`eventscope check` lists every damaged event"
        )

    # -- probes and streams ----------------------------------------------------------------

    def _stream_info(self, row: Any) -> StreamInfo:
        """A streams row as a StreamInfo.

        Raises:
            StoreCorrupt: the row's numbers are not numbers (a damaged row).
        """
        try:
            return stream_info_from_row(row)
        except (TypeError, ValueError, OverflowError) as error:
            raise StoreCorrupt(
                f"{self._conns.shown()}: the streams row of {row[0]!r} is damaged ({error}); "
                "`eventscope check` compares it with the events"
            ) from None

    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The event stored with this id, or None (a unique-index probe)."""
        with self._conns.driver_reading(snapshot=False) as cursor:
            row = self._by_id.execute(cursor, event_id=event_id).fetchone()
        return None if row is None else RawEvent._make(row).decode()

    def stream_info(self, stream_id: str) -> StreamInfo | None:
        """One stream's summary from the streams table (an index probe)."""
        with self._conns.driver_reading(snapshot=False) as cursor:
            row = self._stream_row.execute(cursor, stream_id=stream_id).fetchone()
        return None if row is None else self._stream_info(row)

    def list_streams(
        self, prefix: str | None, category: str | None, after: str | None, limit: int | None
    ) -> Iterator[StreamInfo]:
        """Streams sorted by id (byte-wise), page by page."""
        stmt = select(*STREAM_COLUMNS).order_by(streams.c.stream_id)
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
            with self._conns.reading() as conn:
                rows = conn.execute(page_stmt.limit(size)).all()
            for row in rows:
                yield self._stream_info(row)
            if len(rows) < size:
                return
            cursor = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)

    def recent_streams(
        self,
        prefix: str | None,
        category: str | None,
        before_position: int | None,
        limit: int | None,
    ) -> Iterator[StreamInfo]:
        """Streams by last activity, newest first, keyset-paged on the activity index."""
        stmt = select(*STREAM_COLUMNS).order_by(streams.c.last_position.desc())
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
            with self._conns.reading() as conn:
                rows = conn.execute(page.limit(size)).all()
            for row in rows:
                yield self._stream_info(row)
            if len(rows) < size:
                return
            cursor = rows[-1][4]
            if remaining is not None:
                remaining -= len(rows)

    def head_position(self) -> int:
        """The last position, 0 when empty (a primary-key probe)."""
        with self._conns.driver_reading(snapshot=False) as cursor:
            cursor.execute(HEAD_SQL)
            row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment``: a binary search over the
        primary key, in one statement (times never decrease with positions, which are
        gapless; about 24 probes in 10M events)."""
        micros = to_micros(moment)
        with self._conns.driver_reading(snapshot=False) as cursor:
            row = self._position_at.execute(cursor, micros=micros).fetchone()
        return 0 if row is None else int(row[0])


def _position_at_search() -> Any:
    """The binary search of :meth:`Reads.position_at` as one recursive query: ``low``
    is a position at or before the time (0: none is), ``high`` the last that may be;
    each step probes the middle position's time by primary key.

    Positions are 1..head without gaps, and times never decrease with them (the store
    records ``max(now, last time)``), so the probes narrow to the answer.
    """
    micros = bindparam("micros", type_=BigInteger)
    head = select(func.coalesce(func.max(events.c.position), 0)).scalar_subquery()
    # Typed as the positions are: PostgreSQL wants both terms of the union alike.
    zero = cast(literal_column("0"), BigInteger)
    search = select(zero.label("low"), cast(head, BigInteger).label("high")).cte(
        "search", recursive=True
    )
    middle = (search.c.low + search.c.high + 1) // 2
    probe = select(events.c.recorded_at).where(events.c.position == middle).scalar_subquery()
    fits = probe <= micros
    search = search.union_all(
        select(
            case((fits, middle), else_=search.c.low),
            case((fits, search.c.high), else_=middle - 1),
        ).where(search.c.low < search.c.high)
    )
    return select(search.c.low).where(search.c.low == search.c.high)
