"""The Python ``eventsourcing`` library's recorder tables, read as an Eventscope store.

``eventsourcing+sqlite:///app.db[?app=NAME]`` reads the SQLite application recorder's
``stored_events`` table (position = ``rowid``); ``eventsourcing+postgresql://…[?app=NAME]``
reads ``{name}_events`` (position = ``notification_id``). DESIGN §8 gives the mapping:
the originator id is the stream id (a canonical UUID string, or the text id), the
stored ``originator_version`` the version (from 1), the topic the type, and the decoded
state the data, with the library's ``{"_type_": …, "_data_": …}`` values shown plain.

States are decoded as the library writes them backwards: decrypt (AES-GCM), decompress
(zlib), JSON, with the settings the application itself reads from the environment
(``CIPHER_TOPIC``, ``CIPHER_KEY``, ``COMPRESSOR_TOPIC``, each first with the
``APPNAME_`` prefix). The library is never imported: its formats are reimplemented here.
An event whose state cannot be decoded is still listed, its data saying why.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import orjson
from sqlalchemy.engine import make_url

from core.errors import NotAnEventStore, StoreNotFound
from core.events import RecordedEvent, StreamInfo, category_of, from_micros, to_micros
from core.events import wall_clock_micros as _clock
from core.jobs import checkpoint
from core.sources.base import UNDECODABLE, ForeignSource, ScanProgress
from core.sources.eventsourcing_sql import Layout, Statements
from core.sources.eventsourcing_states import (
    StateDecoder,
    Undecodable,
    plain_state,
    state_timestamp,
)
from core.store.compiled import CompiledStatement
from core.store.port import CheckReport, EventFilter, RawEvent
from core.store.sql.connections import Connections
from core.store.sql.engines import (
    display_location,
    inspect_sqlite_file,
    postgres_engine,
    sqlite_connector,
    sqlite_engine,
    sqlite_path,
)

__all__ = ["EVENT_ID_NAMESPACE", "EventsourcingSource", "StateDecoder", "plain_state"]

#: The namespace of the event ids derived from (stream id, version): ``uuid5`` of
#: ``f"{stream_id}:{version}"`` in it. Fixed for good: exports and imports rely on it.
EVENT_ID_NAMESPACE: Final = uuid.UUID("6f0c1d52-3b8e-5c57-9a41-0e5b7d2c8a13")
#: Rows per keyset page.
PAGE: Final = 500
#: The columns every recorder events table has (positions aside).
RECORDER_COLUMNS: Final = ("originator_id", "originator_version", "topic", "state")
#: Times resolved by a look-back (events without a timestamp) kept at most.
_RESOLVED_KEPT: Final = 100_000
#: Undecodable positions a check report lists (it counts them all).
_SHOWN: Final = 10
_NO_LIMIT: Final = 1 << 62


# -- the source -----------------------------------------------------------------------------


def _split_location(location: str) -> tuple[str, str | None]:
    """The database URL without the tool prefix and ``app``, and the app name (or None)."""
    _, _, rest = location.partition("+")
    url = make_url(rest)
    app = url.query.get("app")
    if isinstance(app, tuple):
        app = app[-1] if app else None
    url = url.difference_update_query(["app"])
    return url.render_as_string(hide_password=False), (app or None)


class EventsourcingSource(ForeignSource):
    """A read-only EventStore over an ``eventsourcing`` application's recorder table.

    Positions are the table's (``rowid``, ``notification_id``) and may have gaps. Event
    ids are ``uuid5(EVENT_ID_NAMESPACE, f"{stream_id}:{version}")``. ``recorded_at``
    is the state's ``timestamp`` (the previous event's time when it has none, the epoch
    before the first); ``position_at`` and the ``until`` bound assume those times do
    not decrease along positions, as one application's clock writes them.
    """

    tool = "the eventsourcing library"

    def __init__(
        self, location: str, conns: Connections, layout: Layout, decoder: StateDecoder
    ) -> None:
        self.location = location
        self.read_only = True
        self._conns = conns
        self._layout = layout
        self._sql = Statements(layout, conns.engine.dialect)
        self._decoder = decoder
        self._ids: dict[int, tuple[Any, int]] = {}  # event id (int) -> (stored id, version)
        self._ids_after = 0
        self._ids_lock = threading.Lock()
        self._resolved: dict[int, int] = {}  # position -> recorded_at (look-backs)
        self._resolved_lock = threading.Lock()

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, location: str) -> EventsourcingSource:
        """Open ``eventsourcing+sqlite:///FILE[?app=NAME]`` or
        ``eventsourcing+postgresql://…[?app=NAME]`` read-only.

        Raises:
            StoreNotFound: the SQLite file does not exist.
            StoreCorrupt: the file is not a SQLite database.
            NotAnEventStore: no recorder events table (or several, and no ``?app=``).
            StoreUnreachable: the PostgreSQL server cannot be reached.
        """
        shown = display_location(location)
        try:
            url, app = _split_location(location)
        except Exception:  # a malformed URL: SQLAlchemy raises several kinds
            raise StoreNotFound(f"{shown}: not a database URL") from None
        interrupted = threading.Event()
        if url.startswith("sqlite:"):
            path = sqlite_path(url)
            inspect_sqlite_file(path, read_only=True)
            connect = sqlite_connector(path, True, 5.0, interrupted)
            conns = Connections(
                sqlite_engine(connect),
                location,
                read_only=True,
                clock=_clock,
                interrupted=interrupted,
                sqlite_connect=connect,
            )
        elif url.startswith("postgres"):
            conns = Connections(
                postgres_engine(url, read_only=True),
                location,
                read_only=True,
                clock=_clock,
                interrupted=interrupted,
            )
        else:
            raise StoreNotFound(
                f"{shown}: the eventsourcing library's stores are on sqlite or postgresql"
            )
        try:
            layout, app = (
                _sqlite_layout(conns, shown, app) if conns.sqlite else _pg_layout(conns, shown, app)
            )
        except BaseException:
            conns.close()
            raise
        return cls(location, conns, layout, StateDecoder.from_environment(app))

    @property
    def display_location(self) -> str:
        """The location fit to show (a password hidden)."""
        return display_location(self.location)

    # -- running statements -------------------------------------------------------------

    def _fetch(self, statement: CompiledStatement, **values: Any) -> list[tuple[Any, ...]]:
        """Run one statement in its own read (a page: keyset pages need no snapshot)."""
        with self._conns.driver_reading(snapshot=False) as cursor:
            return statement.fetchall(cursor, **values)

    def _decode_row(self, row: tuple[Any, ...]) -> tuple[RecordedEvent, int | None]:
        """A row as an event (its time still 0 when its state has none), and that time."""
        position, stored_id, version, topic, state = row
        stream_id = self._layout.stream_id(stored_id)
        if isinstance(state, str):
            state = state.encode("utf-8")
        try:
            data = self._decoder.decode(bytes(state or b""))
            moment = state_timestamp(data)
        except Undecodable as error:
            data, moment = {UNDECODABLE: str(error)}, None
        event_id = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream_id}:{version}"))
        event = RecordedEvent(
            int(position),
            stream_id,
            int(version),
            str(topic),
            data,
            {},
            event_id,
            from_micros(moment or 0),
        )
        return event, moment

    def _events(self, rows: list[tuple[Any, ...]]) -> list[RecordedEvent]:
        """Rows as events, each with its time (looked back for when its state has none)."""
        events = []
        for row in rows:
            event, moment = self._decode_row(row)
            if moment is None:
                event = event._replace(recorded_at=from_micros(self._time_before(event.position)))
            events.append(event)
        return events

    def _time_before(self, position: int) -> int:
        """The time of the last event before ``position`` whose state has a timestamp
        (0, the epoch, when none has). Look-backs are remembered, so a run of events
        without timestamps costs one scan, not one each."""
        statement = self._sql.page(True, False, 0)
        scanned: list[int] = []
        found = 0
        before = position
        while True:
            checkpoint()
            rows = self._fetch(statement, before=before, low=0, n=PAGE)
            hit = False
            for row in rows:
                with self._resolved_lock:
                    known = self._resolved.get(int(row[0]))
                if known is not None:
                    found, hit = known, True
                    break
                _, moment = self._decode_row(row)
                if moment is not None:
                    found, hit = moment, True
                    break
                scanned.append(int(row[0]))
            if hit or len(rows) < PAGE:
                break
            before = int(rows[-1][0])
        with self._resolved_lock:
            if len(self._resolved) + len(scanned) > _RESOLVED_KEPT:
                self._resolved.clear()
            for scanned_position in scanned:
                self._resolved[scanned_position] = found
        return found

    # -- reads --------------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """One stream's events by version (as stored, from 1), from ``from_version``."""
        self._conns.ensure_usable()
        return self._read_stream(stream_id, from_version, backwards, limit)

    def _read_stream(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> Iterator[RecordedEvent]:
        ids = self._layout.stored_ids(stream_id)
        if ids is None or (limit is not None and limit <= 0):
            return
        statement = self._sql.stream_page(backwards)
        if backwards:
            cursor = _NO_LIMIT if from_version is None else from_version + 1
        else:
            cursor = -_NO_LIMIT if from_version is None else from_version - 1
        left = _NO_LIMIT if limit is None else limit
        while left > 0:
            checkpoint()
            rows = self._fetch(statement, s0=ids[0], s1=ids[1], v=cursor, n=min(PAGE, left))
            yield from self._events(rows)
            left -= len(rows)
            if len(rows) < PAGE:
                return
            cursor = int(rows[-1][2])

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events in position order (or reverse), filtered, page by page: the stream,
        topics and positions in SQL, the rest after decoding."""
        self._conns.ensure_usable()
        return self._read(where, backwards, limit)

    def _read(
        self, where: EventFilter, backwards: bool, limit: int | None
    ) -> Iterator[RecordedEvent]:
        if limit is not None and limit <= 0:
            return
        ids: tuple[Any, Any] | None = (None, None)
        if where.stream_id is not None:
            ids = self._layout.stored_ids(where.stream_id)
            if ids is None:
                return
        high = _NO_LIMIT if where.to_position is None else where.to_position
        if where.until is not None:
            high = min(high, self.position_at(where.until))
        low = 0
        if where.from_position is not None:
            if backwards:
                high = min(high, where.from_position)
            else:
                low = where.from_position
        since = None if where.since is None else to_micros(where.since)
        until = None if where.until is None else to_micros(where.until)
        statement = self._sql.page(backwards, where.stream_id is not None, len(where.types))
        values: dict[str, Any] = {f"t{i}": topic for i, topic in enumerate(where.types)}
        if where.stream_id is not None and ids is not None:
            values.update(s0=ids[0], s1=ids[1])
        cursor = high + 1 if backwards else low - 1
        found = 0
        progress = None
        if _scans(where):
            top = high if high != _NO_LIMIT else self.head_position()
            progress = ScanProgress(low, top, backwards=backwards)
        while True:
            checkpoint()
            # Without a filter on decoded events every row is kept: read only what is left.
            n = PAGE if limit is None or progress is not None else min(PAGE, limit - found)
            if backwards:
                rows = self._fetch(statement, before=cursor, low=max(low, 0), n=n, **values)
            else:
                rows = self._fetch(statement, after=cursor, high=high, n=n, **values)
            if progress is not None and rows:
                progress.reached(int(rows[-1][0]))
            for event in self._events(rows):
                micros = to_micros(event.recorded_at)
                if since is not None and micros < since:
                    continue
                if until is not None and micros > until:
                    continue
                if not where.matches(event):
                    continue
                yield event
                found += 1
                if limit is not None and found >= limit:
                    return
            if len(rows) < n:
                return
            cursor = int(rows[-1][0])

    def iter_raw(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RawEvent]:
        """The events of :meth:`read` as rows (data as JSON text, time in microseconds)."""
        self._conns.ensure_usable()
        return (
            RawEvent(
                event.position,
                event.stream_id,
                event.version,
                event.type,
                orjson.dumps(event.data).decode(),
                "{}",
                event.event_id,
                to_micros(event.recorded_at),
            )
            for event in self._read(where, backwards, limit)
        )

    def count(self, where: EventFilter = EventFilter()) -> int:
        """How many events match: in SQL when the filter is only a stream, topics and
        positions, else by reading them."""
        self._conns.ensure_usable()
        decoded_fields = (
            where.category,
            where.until,
            where.stream_prefix,
            where.since,
            where.correlation_id,
            where.words or None,
        )
        if any(field is not None for field in decoded_fields):
            return sum(1 for _ in self._read(where, False, None))
        values: dict[str, Any] = {f"t{i}": topic for i, topic in enumerate(where.types)}
        if where.stream_id is not None:
            ids = self._layout.stored_ids(where.stream_id)
            if ids is None:
                return 0
            values.update(s0=ids[0], s1=ids[1])
        after = 0 if where.from_position is None else where.from_position - 1
        high = _NO_LIMIT if where.to_position is None else where.to_position
        statement = self._sql.count(where.stream_id is not None, len(where.types))
        return int(self._fetch(statement, after=after, high=high, **values)[0][0])

    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The event with this (derived) id, or None.

        A derived id cannot be inverted: the first call maps every event id to its
        place from one scan of the id and version columns, and later calls extend the
        map past the last position scanned.
        """
        self._conns.ensure_usable()
        try:
            key = uuid.UUID(str(event_id)).int
        except ValueError:
            return None
        with self._ids_lock:
            place = self._ids.get(key)
            if place is None:
                self._scan_ids()
                place = self._ids.get(key)
        if place is None:
            return None
        rows = self._fetch(self._sql.by_place(), o=place[0], v=place[1])
        events = self._events(rows)
        return events[0] if events else None

    def _scan_ids(self) -> None:
        statement = self._sql.ids_page()
        while True:
            checkpoint()
            rows = self._fetch(statement, after=self._ids_after, n=PAGE * 10)
            for position, stored_id, version in rows:
                stream_id = self._layout.stream_id(stored_id)
                key = uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream_id}:{version}").int
                self._ids[key] = (stored_id, int(version))
                self._ids_after = int(position)
            if len(rows) < PAGE * 10:
                return

    def _time_at(self, position: int) -> datetime:
        events = self._events(self._fetch(self._sql.at(), p=position))
        return events[0].recorded_at if events else from_micros(0)

    def stream_info(self, stream_id: str) -> StreamInfo | None:
        """One stream's summary (its version is the last stored ``originator_version``)."""
        self._conns.ensure_usable()
        ids = self._layout.stored_ids(stream_id)
        if ids is None:
            return None
        count, first, last, version = self._fetch(self._sql.stream_summary(), s0=ids[0], s1=ids[1])[
            0
        ]
        if not count:
            return None
        return self._stream_info(stream_id, count, first, last, version)

    def _stream_info(
        self, stream_id: str, count: int, first: int, last: int, version: int
    ) -> StreamInfo:
        return StreamInfo(
            stream_id,
            category_of(stream_id),
            int(version),
            int(count),
            int(first),
            int(last),
            self._time_at(int(first)),
            self._time_at(int(last)),
        )

    def list_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams sorted by id (byte-wise), after ``after``, page by page."""
        self._conns.ensure_usable()
        for name in (prefix, category, after):
            EventFilter(stream_prefix=name)  # the same text checks as a filter's
        return self._list_streams(prefix, category, after, limit)

    def _list_streams(
        self, prefix: str | None, category: str | None, after: str | None, limit: int | None
    ) -> Iterator[StreamInfo]:
        if limit is not None and limit <= 0:
            return
        if category is not None and "-" in category:
            return
        statement = self._sql.streams(bool(prefix), category is not None)
        values: dict[str, Any] = {}
        if prefix:
            values.update(plen=len(prefix), prefix=prefix)
        if category is not None:
            values.update(cat=category, clen=len(category) + 1, catdash=f"{category}-")
        cursor = "" if after is None else after
        left = _NO_LIMIT if limit is None else limit
        while left > 0:
            checkpoint()
            rows = self._fetch(statement, after=cursor, n=min(PAGE, left), **values)
            for stream_id, count, first, last, version in rows:
                yield self._stream_info(str(stream_id), count, first, last, version)
            left -= len(rows)
            if len(rows) < PAGE:
                return
            cursor = str(rows[-1][0])

    def head_position(self) -> int:
        """The last position (0 when empty)."""
        self._conns.ensure_usable()
        head = self._fetch(self._sql.head())[0][0]
        return 0 if head is None else int(head)

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (0 if none).

        A binary search over the position range, probing the first row at or after a
        value and decoding its time: it assumes times do not decrease along positions
        (one application's clock; ``check`` counts where they do).
        """
        self._conns.ensure_usable()
        target = to_micros(moment)
        statement = self._sql.first_from()
        low, high, answer = 1, self.head_position(), 0
        while low <= high:
            checkpoint()
            middle = (low + high) // 2
            events = self._events(self._fetch(statement, p=middle))
            if not events or events[0].position > high:
                high = middle - 1
                continue
            probe = events[0]
            if to_micros(probe.recorded_at) <= target:
                answer = probe.position
                low = probe.position + 1
            else:
                high = middle - 1
        return answer

    def check(self) -> CheckReport:
        """Integrity as it applies to a recorder table: SQLite's quick check, positions
        increasing, versions contiguous per stream from the first stored, every state
        decodable. Gaps in positions are normal here (rolled-back inserts) and counted
        in the details; so are times that decrease (``position_at`` assumes none)."""
        self._conns.ensure_usable()
        problems: list[str] = []
        details: dict[str, Any] = {"source": self.tool}
        if self._conns.sqlite:
            with self._conns.driver_reading(snapshot=False) as cursor:
                cursor.execute("PRAGMA quick_check")
                messages = [str(row[0]) for row in cursor.fetchall()]
            details["sqlite_integrity"] = messages[:_SHOWN]
            if messages != ["ok"]:
                problems.append(f"sqlite quick_check: {'; '.join(messages[:3])}")
        bad = self._fetch(self._sql.bad_versions(), n=_SHOWN)
        if bad:
            details["streams_with_version_gaps"] = [
                {
                    "stream_id": str(s),
                    "events": int(n),
                    "min_version": int(lo),
                    "max_version": int(hi),
                }
                for s, n, lo, hi in bad
            ]
            problems.append(f"{len(bad)} stream(s) have non-contiguous versions")
        events = gaps = backwards = undecodable = 0
        undecodable_at: list[int] = []
        previous_position, previous_time, head = 0, 0, 0
        statement = self._sql.page(False, False, 0)
        cursor_position = 0
        while True:
            checkpoint()
            rows = self._fetch(statement, after=cursor_position, high=_NO_LIMIT, n=PAGE)
            for event in self._events(rows):
                events += 1
                if event.position <= previous_position:
                    problems.append(f"position {event.position} does not increase")
                elif previous_position and event.position != previous_position + 1:
                    gaps += 1
                if UNDECODABLE in event.data:
                    undecodable += 1
                    if len(undecodable_at) < _SHOWN:
                        undecodable_at.append(event.position)
                micros = to_micros(event.recorded_at)
                if micros < previous_time:
                    backwards += 1
                previous_position, previous_time, head = event.position, micros, event.position
            if len(rows) < PAGE:
                break
            cursor_position = int(rows[-1][0])
        details["position_gaps"] = gaps
        details["recorded_at_decreases"] = backwards
        if undecodable:
            details["undecodable_positions"] = undecodable_at
            problems.append(
                f"{undecodable} event(s) cannot be decoded, first at position(s) {undecodable_at}"
            )
        streams = int(self._fetch(self._sql.stream_count())[0][0])
        return CheckReport(not problems, events, head, streams, tuple(problems), details)

    # -- interrupting and closing ------------------------------------------------------

    def interrupt(self) -> None:
        """Stop the statements running on the source's connections (see the port)."""
        self._conns.interrupt()

    def resume(self) -> None:
        """Let operations run again after :meth:`interrupt`."""
        self._conns.resume()

    def close(self) -> None:
        """Release the connections; every later call raises StoreClosed."""
        self._conns.close()


def _sqlite_layout(conns: Connections, shown: str, app: str | None) -> tuple[Layout, str | None]:
    """The SQLite application recorder's table, checked to be one."""
    with conns.driver_reading(snapshot=False) as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        names = {str(row[0]) for row in cursor.fetchall()}
        if "stored_events" not in names:
            raise NotAnEventStore(
                f"{shown}: no stored_events table (not an eventsourcing library SQLite store)"
            )
        cursor.execute("PRAGMA table_info(stored_events)")
        columns = {str(row[1]) for row in cursor.fetchall()}
        missing = [name for name in RECORDER_COLUMNS if name not in columns]
        if missing:
            raise NotAnEventStore(f"{shown}: stored_events has no column(s) {', '.join(missing)}")
        try:
            cursor.execute("SELECT rowid FROM stored_events LIMIT 0")
        except Exception as error:  # WITHOUT ROWID: an aggregate recorder, no notifications
            if "rowid" not in str(error):
                raise
            raise NotAnEventStore(
                f"{shown}: stored_events has no rowid (an aggregate recorder's table: "
                "it records no positions)"
            ) from None
    return Layout("stored_events", "rowid", True, False), app


_PG_TABLES: Final = (
    "SELECT table_name, max(CASE WHEN column_name = 'originator_id' THEN data_type END) "
    "FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name LIKE '%%\\_events' AND column_name IN "
    "('originator_id', 'originator_version', 'topic', 'state', 'notification_id') "
    "GROUP BY table_name HAVING count(DISTINCT column_name) = 5 ORDER BY table_name"
)


def _pg_layout(conns: Connections, shown: str, app: str | None) -> tuple[Layout, str | None]:
    """The PostgreSQL application recorder's table: ``{app}_events``, or the only one."""
    with conns.driver_reading() as cursor:
        cursor.execute(_PG_TABLES)
        found = {str(name): str(kind) for name, kind in cursor.fetchall()}
    listed = ", ".join(sorted(found)) or "none"
    if app is not None:
        name = f"{app.lower()}_events"
        if name not in found:
            raise NotAnEventStore(
                f"{shown}: no recorder table {name} for app {app!r} (recorder tables: {listed})"
            )
    elif len(found) == 1:
        name = next(iter(found))
        app = name[: -len("_events")]
    elif not found:
        raise NotAnEventStore(
            f"{shown}: no eventsourcing recorder table (NAME_events with originator_id, "
            "originator_version, topic, state and notification_id)"
        )
    else:
        raise NotAnEventStore(
            f"{shown}: several applications' recorder tables ({listed}): choose one with ?app=NAME"
        )
    return Layout(name, "notification_id", False, found[name] == "uuid"), app


def _scans(where: EventFilter) -> bool:
    """Whether a read looks through events one by one: its filter needs decoded events
    (payload words, a correlation id, times, a category or a stream prefix)."""
    return bool(
        where.text
        or where.correlation_id is not None
        or where.since is not None
        or where.until is not None
        or where.category is not None
        or where.stream_prefix
    )
