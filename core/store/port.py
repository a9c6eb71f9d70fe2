"""The event store port: what every backend offers, and the rules they all share."""

from __future__ import annotations

import abc
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

import orjson

from core.errors import DuplicateEventId, InvalidEvent, InvalidFilter, WrongExpectedVersion
from core.events import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    from_micros,
)
from core.store.validation import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    encode_object,
    validate_event_type,
)

__all__ = [
    "AppendResult",
    "CheckReport",
    "EventFilter",
    "EventStore",
    "ImportRecord",
    "ImportResult",
    "PreparedEvent",
    "RawEvent",
    "WriteTransaction",
    "check_filter_text",
    "decide_append",
    "event_checksum",
    "prepare_events",
    "search_words",
    "words_match",
]


class RawEvent(NamedTuple):
    """A stored row before decoding: JSON as text, time as microseconds."""

    position: int
    stream_id: str
    version: int
    type: str
    data: str
    metadata: str
    event_id: str
    recorded_at: int

    def decode(self) -> RecordedEvent:
        """The RecordedEvent this row stands for."""
        return RecordedEvent(
            self.position,
            self.stream_id,
            self.version,
            self.type,
            orjson.loads(self.data),
            orjson.loads(self.metadata),
            self.event_id,
            from_micros(self.recorded_at),
        )


def event_checksum(
    position: int,
    stream_id: str,
    version: int,
    event_type: str,
    data: str,
    metadata: str,
    event_id: str,
    recorded_at: int,
) -> int:
    """The checksum stored with an event: CRC32 of its stored fields as UTF-8, joined by
    the unit separator (U+001F, which no field may contain unescaped: JSON escapes it and
    stream ids and types refuse control characters).

    The same bytes, as SQLite stores them, are what ``check`` hashes (see
    :func:`core.store.sql.admin.check`).
    """
    return zlib.crc32(
        f"{position}\x1f{stream_id}\x1f{version}\x1f{event_type}\x1f{data}\x1f{metadata}"
        f"\x1f{event_id}\x1f{recorded_at}".encode()
    )


class PreparedEvent(NamedTuple):
    """A validated event with its payloads encoded, ready to insert."""

    type: str
    data: str
    metadata: str
    event_id: str


def prepare_events(
    events: Iterable[NewEvent], max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> list[PreparedEvent]:
    """Validate and encode events; reject an event id that appears twice in one batch.

    Raises:
        InvalidEvent: the first rule broken, naming the field (and the event's index
            in the batch when there are several).
    """
    events = events if isinstance(events, list | tuple) else list(events)
    try:
        prepared = _prepare_plain(events, max_payload_bytes)
    except (_NeedsChecking, AttributeError, orjson.JSONEncodeError):
        prepared = _prepare_checked(events, max_payload_bytes)
    if len({item.event_id for item in prepared}) != len(prepared):
        seen: set[str] = set()
        for item in prepared:
            if item.event_id in seen:
                raise InvalidEvent("event_id", f"{item.event_id} appears twice in one append")
            seen.add(item.event_id)
    return prepared


class _NeedsChecking(Exception):
    """The fast path met something unusual: the checking path will name the problem."""


_OPEN_BRACE: Final = ord("{")


def _prepare_plain(events: Sequence[NewEvent], max_bytes: int) -> list[PreparedEvent]:
    """The common case, as a tight loop: JSON objects without null, under the limit.

    orjson writes NaN and ±Infinity as null, so a payload without ``null`` holds none.
    """
    dumps = orjson.dumps
    make = tuple.__new__
    checked_types: set[str] = set()
    prepared: list[PreparedEvent] = []
    for event in events:
        event_type = event.type
        if event_type not in checked_types:
            checked_types.add(validate_event_type(event_type))
        data = dumps(event.data)
        metadata = dumps(event.metadata)
        if (
            data[0] != _OPEN_BRACE
            or metadata[0] != _OPEN_BRACE
            or b"null" in data
            or b"null" in metadata
            or len(data) > max_bytes
            or len(metadata) > max_bytes
            or type(event) is not NewEvent
        ):
            raise _NeedsChecking
        prepared.append(
            make(PreparedEvent, (event_type, data.decode(), metadata.decode(), event.event_id))
        )
    return prepared


def _prepare_checked(events: Sequence[NewEvent], max_bytes: int) -> list[PreparedEvent]:
    """Every rule checked one by one, so the first one broken is named precisely."""
    prepared: list[PreparedEvent] = []
    for index, event in enumerate(events):
        try:
            if not isinstance(event, NewEvent):
                raise InvalidEvent("event", f"must be a NewEvent, not {type(event).__name__}")
            prepared.append(
                PreparedEvent(
                    validate_event_type(event.type),
                    encode_object("data", event.data, max_bytes),
                    encode_object("metadata", event.metadata, max_bytes),
                    event.event_id,
                )
            )
        except InvalidEvent as error:
            if index == 0:
                raise
            raise InvalidEvent(f"events[{index}].{error.field}", error.reason) from None
    return prepared


def decide_append(
    stream_id: str,
    event_ids: Sequence[str],
    expected: ExpectedVersion,
    current: int | None,
    found: Mapping[str, tuple[str, int]],
) -> Literal["append", "idempotent"]:
    """Decide an append by KurrentDB's rules, from what is already stored.

    Args:
        stream_id: the stream appended to.
        event_ids: the ids of the events appended, in order.
        expected: the caller's expected version.
        current: the stream's last version (None: no stream).
        found: for each of ``event_ids`` already stored, its (stream, version).

    Returns:
        ``"append"`` to write the events, ``"idempotent"`` when exactly these events
        are already stored at the place this append would have put them.

    Raises:
        WrongExpectedVersion: the expectation fails and the events are not already there.
        DuplicateEventId: an id is stored somewhere else.
    """
    if not found:
        if expected.matches(current):
            return "append"
        raise WrongExpectedVersion(stream_id, expected, current)
    for event_id in event_ids:
        place = found.get(event_id)
        if place is not None and place[0] != stream_id:
            raise DuplicateEventId(event_id, *place)
    if len(found) == len(event_ids):
        first = found[event_ids[0]][1]
        in_order = all(found[e][1] == first + i for i, e in enumerate(event_ids))
        if in_order and (
            expected.kind in ("any", "stream_exists")
            or (expected.kind == "no_stream" and first == 0)
            or (expected.kind == "exact" and first == (expected.version or 0) + 1)
        ):
            return "idempotent"
    if expected.matches(current):
        event_id = next(e for e in event_ids if e in found)
        raise DuplicateEventId(event_id, *found[event_id])
    raise WrongExpectedVersion(stream_id, expected, current)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: the stream's new last version and the events' positions.

    ``duplicate`` is true when the append was an idempotent re-send that wrote nothing.
    """

    stream_id: str
    version: int
    first_position: int
    last_position: int
    duplicate: bool
    # Stored rows: RawEvent fields first (a row may carry more, e.g. the category).
    _rows: tuple[tuple[Any, ...], ...] = field(repr=False, compare=False)

    @property
    def events(self) -> list[RecordedEvent]:
        """The recorded events (the stored ones, for an idempotent re-send)."""
        return [RawEvent._make(row[:8]).decode() for row in self._rows]

    @property
    def next_expected_version(self) -> ExpectedVersion:
        """The expected version to pass to the next append of this writer."""
        return ExpectedVersion.exact(self.version)


def check_filter_text(name: str, value: object) -> None:
    """Refuse filter text that cannot be sent to a database: not a string, or not valid
    UTF-8 (a lone surrogate, as Python decodes bytes that are not UTF-8 from argv), or
    holding NUL (no stream id or type can, and PostgreSQL text cannot).

    Raises:
        InvalidFilter: naming the field.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidFilter(f"{name}: must be text, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFilter(f"{name}: {value!r} is not valid UTF-8 text") from None
    if "\x00" in value:  # no stored name holds one, and PostgreSQL text cannot
        raise InvalidFilter(f"{name}: {value!r} holds a NUL character")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a read returns. Every field narrows; the defaults take everything.

    ``from_position`` is inclusive (in the read's direction); ``to_position`` is an
    inclusive upper bound; ``since`` and ``until`` keep events with
    ``since <= recorded_at <= until``; ``stream_prefix`` keeps streams whose id starts
    with it; ``correlation_id`` matches ``metadata.correlation_id`` (a string); ``text``
    is a payload search: an event matches when every word of the text is a word of
    its data (keys and values, as stored JSON), ignoring case; a word ending in ``*``
    matches the words it starts. Words are runs of letters and digits, so
    ``SKU-4242``, ``sku 4242`` and ``sku 42*`` all find ``{"sku": "SKU-4242"}``; a
    text with no letters or digits filters nothing. The SQL stores answer it from a
    search index (see ``EventStore.update_index``).
    """

    stream_id: str | None = None
    category: str | None = None
    types: tuple[str, ...] = ()
    from_position: int | None = None
    until: datetime | None = None
    to_position: int | None = None
    stream_prefix: str | None = None
    since: datetime | None = None
    correlation_id: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        for name in ("stream_id", "category", "stream_prefix", "correlation_id", "text"):
            check_filter_text(name, getattr(self, name))
        for event_type in self.types:
            check_filter_text("types", event_type)

    def matches(self, event: RecordedEvent) -> bool:
        """Whether an event passes the filter's content tests (not its position bounds)."""
        if self.stream_id is not None and event.stream_id != self.stream_id:
            return False
        if self.stream_prefix and not event.stream_id.startswith(self.stream_prefix):
            return False
        if self.category is not None and event.category != self.category:
            return False
        if self.types and event.type not in self.types:
            return False
        if (
            self.correlation_id is not None
            and event.metadata.get("correlation_id") != self.correlation_id
        ):
            return False
        if self.text:
            words = search_words(self.text)
            if words and not words_match(orjson.dumps(event.data).decode(), words):
                return False
        return True

    @property
    def words(self) -> tuple[str, ...]:
        """The payload-search words of ``text`` (a prefix keeps its ``*``); empty: none."""
        return search_words(self.text) if self.text else ()


_WORD: Final = re.compile(r"[^\W_]+")
_QUERY_WORD: Final = re.compile(r"([^\W_]+)(\*?)")


def search_words(text: str) -> tuple[str, ...]:
    """The words of a payload search, lower-cased, each once: ``"SKU-42*"`` gives
    ``("sku", "42*")`` (a trailing ``*`` marks a prefix)."""
    found = (word + star for word, star in _QUERY_WORD.findall(text.lower()))
    return tuple(dict.fromkeys(found))


def words_match(encoded: str, words: Sequence[str]) -> bool:
    """Whether a payload's JSON text has every one of ``words`` (see :func:`search_words`)."""
    lowered = encoded.lower()
    if not all(word.rstrip("*") in lowered for word in words):
        return False  # the cheap test first: a word is a substring
    found = set(_WORD.findall(lowered))
    for word in words:
        if word.endswith("*"):
            stem = word[:-1]
            if not any(have.startswith(stem) for have in found):
                return False
        elif word not in found:
            return False
    return True


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One line of an import: an event, its stream, and optionally its place and time."""

    line: int
    stream_id: str
    event: PreparedEvent
    version: int | None = None
    recorded_at: int | None = None


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The outcome of an import: events appended, and lines already stored."""

    appended: int
    duplicates: int

    def to_dict(self) -> dict[str, int]:
        """The JSON printed by ``eventscope import``."""
        return {"appended": self.appended, "duplicates": self.duplicates}


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The result of an integrity check: ``ok`` and one entry per finding."""

    ok: bool
    events: int
    head: int
    streams: int
    problems: tuple[str, ...]
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON printed by ``eventscope check``."""
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "streams": self.streams,
            "problems": list(self.problems),
            **self.details,
        }


class WriteTransaction(abc.ABC):
    """One write transaction of a store: its appends and the read-model changes made on
    it (``cursor``) commit together, or not at all.

    Got from :meth:`EventStore.transaction`; it commits when the ``with`` block ends and
    rolls back when the block raises.
    """

    def __init__(self, cursor: Any = None) -> None:
        #: The transaction's driver cursor (SQL stores), for read-model changes; None in
        #: memory.
        self.cursor = cursor
        self._undo: list[Callable[[], None]] = []

    @abc.abstractmethod
    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append events to one stream in this transaction (the rules of
        :meth:`EventStore.append_to_stream`); nothing is visible before the commit.

        Raises:
            WrongExpectedVersion, DuplicateEventId, InvalidEvent: as for an append; the
                caller's transaction is then rolled back when the exception leaves it.
        """

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Call ``undo`` if the transaction rolls back (in-memory twins restore their
        state this way; a database rolls back on its own)."""
        self._undo.append(undo)

    def rolled_back(self) -> None:
        """Run the ``on_rollback`` callbacks, newest first (the store calls this)."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class EventStore(abc.ABC):
    """An append-only log of events in streams (DESIGN §2–3).

    Every backend passes the same contract suite (``tests/core/store``).
    """

    read_only: bool
    location: str
    #: Whether positions run 1, 2, 3… with no gap, so position p is the p-th event (DESIGN
    #: §2 for Eventscope's own stores). Another tool's store may leave gaps (DESIGN §8):
    #: there, counting events takes a count, never a subtraction of positions.
    gapless: bool = True
    #: Whether payload searches and correlation lookups have an index to use (see
    #: :meth:`update_index`). Another tool's store has none (Eventscope never writes it):
    #: there, every search scans.
    search_index: bool = True

    @abc.abstractmethod
    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append events to one stream atomically, if the expected version holds.

        Raises:
            WrongExpectedVersion: the stream is not as expected; nothing was appended.
            DuplicateEventId: an event id is already stored elsewhere.
            InvalidEvent: an event or the stream id breaks the rules of DESIGN §2.
            StoreReadOnly: the store was opened read-only.
        """

    @abc.abstractmethod
    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """The events of one stream by version, from ``from_version`` (inclusive)."""

    @abc.abstractmethod
    def iter_raw(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RawEvent]:
        """Rows in position order, undecoded, read page by page (keyset pagination)."""

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events in position order (or reverse), filtered, page by page."""
        for row in self.iter_raw(where, backwards=backwards, limit=limit):
            yield row.decode()

    def read_all(
        self, *, from_position: int | None = None, limit: int | None = None
    ) -> Iterator[RecordedEvent]:
        """Every event from ``from_position`` (inclusive) in position order."""
        return self.read(EventFilter(from_position=from_position), limit=limit)

    def count(self, where: EventFilter = EventFilter()) -> int:
        """How many events match the filter."""
        return sum(1 for _ in self.iter_raw(where))

    @abc.abstractmethod
    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The event stored with this id, or None (a unique-index probe)."""

    @abc.abstractmethod
    def stream_info(self, stream_id: str) -> StreamInfo | None:
        """One stream's summary, or None if it has no events."""

    @abc.abstractmethod
    def list_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams sorted by id (byte-wise), with counts and first/last times."""

    def recent_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        before_position: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by last activity, newest first (``before_position``: the keyset cursor,
        the last_position of the previous page's last stream)."""
        matching = [
            info
            for info in self.list_streams(prefix=prefix, category=category)
            if before_position is None or info.last_position < before_position
        ]
        matching.sort(key=lambda info: info.last_position, reverse=True)
        return iter(matching[:limit] if limit is not None else matching)

    @abc.abstractmethod
    def head_position(self) -> int:
        """The position of the last event, 0 for an empty store."""

    @abc.abstractmethod
    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (0 if none): an index probe."""

    @abc.abstractmethod
    def import_records(self, records: Iterable[ImportRecord]) -> ImportResult:
        """Append records all-or-nothing; records already stored count as duplicates.

        Raises:
            ImportFailed: naming the first bad record's line; nothing was appended.
        """

    @abc.abstractmethod
    def check(self) -> CheckReport:
        """Integrity: the database's own check, gapless positions, contiguous versions."""

    def indexed_position(self) -> int:
        """The last position the search index covers (payload words, correlation ids).

        Searches are exact either way: events after it are scanned. A store without
        a separate index (in memory) covers everything.
        """
        return self.head_position()

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        """Index events appended since :meth:`indexed_position`, a batch per transaction.

        Appends do not wait for the index; whoever writes the store runs this (the
        CLI's ``index``, an import, the console when writable). Reports progress to
        the current :class:`~core.jobs.Job` and stops between batches when it is
        cancelled (what was committed stays).

        Args:
            batch: events per transaction (a writer waits at most one batch).
            limit: stop after about this many events (None: catch up to the head).

        Returns:
            How many events were indexed.

        Raises:
            StoreReadOnly: the store is open read-only.
        """
        return 0

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[WriteTransaction]:
        """A write transaction: appends (and read-model changes on its cursor) made in
        the ``with`` block commit together when it ends, and none of them when it raises.

        Raises:
            StoreReadOnly: the store is open read-only.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Stop the work running on this store, from any thread (to drain it before
        it is swapped).

        Every statement running on the store's connections stops, and the thread
        that ran it gets :class:`~core.errors.Cancelled`; every operation started
        afterwards raises Cancelled at once, until :meth:`resume`.
        """

    @abc.abstractmethod
    def resume(self) -> None:
        """Undo :meth:`interrupt`: operations run again (a drain gave up and the store
        stays in use). It does not reopen a closed store."""

    @abc.abstractmethod
    def close(self) -> None:
        """Interrupt what runs and release connections. The store is unusable for
        good: every later operation raises :class:`~core.errors.StoreClosed` and opens
        no connection. Closing again does nothing."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def stream_info_from_row(row: Sequence[Any]) -> StreamInfo:
    """A StreamInfo from a ``streams`` row (stream_id, category, version, first/last pos/time)."""
    stream_id, category, version, first_pos, last_pos, first_at, last_at = row
    return StreamInfo(
        stream_id,
        category,
        version,
        version + 1,
        first_pos,
        last_pos,
        from_micros(first_at),
        from_micros(last_at),
    )
