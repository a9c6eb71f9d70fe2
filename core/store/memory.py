"""The in-memory twin of the event store: same contract, no database."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from core.errors import Cancelled, ImportFailed, StoreClosed, StoreReadOnly, WrongExpectedVersion
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
from core.jobs import checkpoint
from core.store.port import (
    AppendResult,
    CheckReport,
    EventFilter,
    EventStore,
    ImportRecord,
    ImportResult,
    RawEvent,
    WriteTransaction,
    decide_append,
    prepare_events,
)
from core.store.validation import DEFAULT_MAX_PAYLOAD_BYTES, validate_stream_id

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore(EventStore):
    """An event store held in lists: for tests and scratch work. Nothing is persisted."""

    def __init__(
        self,
        *,
        clock: Callable[[], int] = wall_clock_micros,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self._rows: list[RawEvent] = []
        self._times: list[int] = []
        self._streams: dict[str, list[int]] = {}  # stream id -> indexes into _rows
        self._ids: dict[str, tuple[str, int]] = {}
        self._lock = threading.RLock()
        self._clock = clock
        self.max_payload_bytes = max_payload_bytes
        self.location = ":memory:"
        self.read_only = False
        self._closed = False
        self._interrupted = threading.Event()

    def _ensure_usable(self) -> None:
        """Raise StoreClosed after :meth:`close`, Cancelled while interrupted."""
        if self._closed:
            raise StoreClosed(f"{self.location}: the store is closed")
        if self._interrupted.is_set():
            raise Cancelled(f"{self.location}: the store is interrupted")

    def interrupt(self) -> None:
        """Make every operation raise Cancelled until :meth:`resume` (reads running on
        other threads stop at their next check, every 1,000 events)."""
        self._interrupted.set()

    def resume(self) -> None:
        """Let operations run again (not after :meth:`close`)."""
        if not self._closed:
            self._interrupted.clear()

    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append events to one stream atomically (see :class:`EventStore`)."""
        self._ensure_usable()
        validate_stream_id(stream_id)
        expected = ExpectedVersion.coerce(expected_version)
        prepared = prepare_events(events, self.max_payload_bytes)
        with self._lock:
            indexes = self._streams.get(stream_id, [])
            current = len(indexes) - 1 if indexes else None
            if not prepared:
                if not expected.matches(current):
                    raise WrongExpectedVersion(stream_id, expected, current)
                last = self._rows[indexes[-1]].position if indexes else 0
                return AppendResult(
                    stream_id, -1 if current is None else current, last, last, False, ()
                )
            ids = [item.event_id for item in prepared]
            found = {e: self._ids[e] for e in ids if e in self._ids}
            if decide_append(stream_id, ids, expected, current, found) == "idempotent":
                rows = tuple(self._rows[indexes[found[e][1]]] for e in ids)
                return AppendResult(
                    stream_id, rows[-1].version, rows[0].position, rows[-1].position, True, rows
                )
            recorded_at = max(self._clock(), self._times[-1] if self._times else 0)
            first_version = 0 if current is None else current + 1
            rows = tuple(
                RawEvent(
                    len(self._rows) + 1 + i,
                    stream_id,
                    first_version + i,
                    item.type,
                    item.data,
                    item.metadata,
                    item.event_id,
                    recorded_at,
                )
                for i, item in enumerate(prepared)
            )
            for row in rows:
                self._add(row)
            return AppendResult(
                stream_id, rows[-1].version, rows[0].position, rows[-1].position, False, rows
            )

    @contextmanager
    def transaction(self) -> Iterator[WriteTransaction]:
        """A write transaction (see :meth:`EventStore.transaction`): the store stays
        locked for the block; a block that raises takes back what it appended and runs
        the ``on_rollback`` callbacks of what it changed elsewhere."""
        self._ensure_usable()
        if self.read_only:
            raise StoreReadOnly("the store is read-only")
        with self._lock:
            start = len(self._rows)
            unit = _MemoryTransaction(self)
            try:
                yield unit
            except BaseException:
                self._truncate(start)
                unit.rolled_back()
                raise

    def _add(self, row: RawEvent) -> None:
        self._streams.setdefault(row.stream_id, []).append(len(self._rows))
        self._rows.append(row)
        self._times.append(row.recorded_at)
        self._ids[row.event_id] = (row.stream_id, row.version)

    def import_records(self, records: Iterable[ImportRecord]) -> ImportResult:
        """Append records all-or-nothing (a failure removes what this import added)."""
        self._ensure_usable()
        if self.read_only:
            raise StoreReadOnly("the store is read-only")
        with self._lock:
            start = len(self._rows)
            duplicates = 0
            try:
                for record in records:
                    event_id = record.event.event_id
                    place = self._ids.get(event_id)
                    if place is not None:
                        if place[0] == record.stream_id and record.version in (None, place[1]):
                            duplicates += 1
                            continue
                        raise ImportFailed(
                            record.line,
                            f"event_id {event_id} is already stored in stream {place[0]!r} "
                            f"at version {place[1]}",
                        )
                    version = len(self._streams.get(record.stream_id, ()))
                    if record.version is not None and record.version != version:
                        raise ImportFailed(
                            record.line,
                            f"version {record.version} of stream {record.stream_id!r} is not "
                            f"its next version ({version})",
                            WrongExpectedVersion(record.stream_id, record.version - 1, version - 1),
                        )
                    now = record.recorded_at if record.recorded_at is not None else self._clock()
                    recorded_at = max(now, self._times[-1] if self._times else 0)
                    item = record.event
                    self._add(
                        RawEvent(
                            len(self._rows) + 1,
                            record.stream_id,
                            version,
                            item.type,
                            item.data,
                            item.metadata,
                            event_id,
                            recorded_at,
                        )
                    )
            except BaseException:
                self._truncate(start)
                raise
            return ImportResult(len(self._rows) - start, duplicates)

    def _truncate(self, length: int) -> None:
        for row in self._rows[length:]:
            del self._ids[row.event_id]
            indexes = self._streams[row.stream_id]
            indexes.pop()
            if not indexes:
                del self._streams[row.stream_id]
        del self._rows[length:]
        del self._times[length:]

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """One stream's events by version."""
        self._ensure_usable()
        return self._read_stream(stream_id, from_version, backwards, limit)

    def _read_stream(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> Iterator[RecordedEvent]:
        with self._lock:
            indexes = list(self._streams.get(stream_id, ()))
        if backwards:
            end = len(indexes) if from_version is None else from_version + 1
            chosen = indexes[: max(0, end)][::-1]
        else:
            chosen = indexes[from_version or 0 :]
        if limit is not None:
            chosen = chosen[:limit]
        for index in chosen:
            yield self._rows[index].decode()

    def iter_raw(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RawEvent]:
        """Rows in position order, filtered."""
        self._ensure_usable()
        return self._iter_raw(where, backwards, limit)

    def _iter_raw(
        self, where: EventFilter, backwards: bool, limit: int | None
    ) -> Iterator[RawEvent]:
        with self._lock:
            high = len(self._rows)
            if where.until is not None:
                high = min(high, self.position_at(where.until))
            if where.to_position is not None:
                high = min(high, where.to_position)
            low = 1
            if where.from_position is not None:
                if backwards:
                    high = min(high, where.from_position)
                else:
                    low = max(low, where.from_position)
            rows = self._rows[low - 1 : high]
        if backwards:
            rows = rows[::-1]
        if where.since is not None:
            since = to_micros(where.since)
            rows = [row for row in rows if row.recorded_at >= since]
        count = 0
        for scanned, row in enumerate(rows):
            if limit is not None and count >= limit:
                return
            if scanned % 1000 == 0:
                checkpoint()
                self._ensure_usable()
            if not where.matches(row.decode()):
                continue
            count += 1
            yield row

    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The event stored with this id, or None."""
        self._ensure_usable()
        with self._lock:
            place = self._ids.get(event_id)
            if place is None:
                return None
            return self._rows[self._streams[place[0]][place[1]]].decode()

    def stream_info(self, stream_id: str) -> StreamInfo | None:
        """One stream's summary."""
        self._ensure_usable()
        with self._lock:
            indexes = self._streams.get(stream_id)
            if not indexes:
                return None
            first, last = self._rows[indexes[0]], self._rows[indexes[-1]]
        return StreamInfo(
            stream_id,
            category_of(stream_id),
            last.version,
            len(indexes),
            first.position,
            last.position,
            from_micros(first.recorded_at),
            from_micros(last.recorded_at),
        )

    def list_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams sorted by id (byte-wise)."""
        self._ensure_usable()
        return self._list_streams(prefix, category, after, limit)

    def _list_streams(
        self, prefix: str | None, category: str | None, after: str | None, limit: int | None
    ) -> Iterator[StreamInfo]:
        with self._lock:
            names = sorted(self._streams, key=lambda name: name.encode("utf-8"))
        count = 0
        for name in names:
            if limit is not None and count >= limit:
                return
            if after is not None and name.encode() <= after.encode():
                continue
            if prefix and not name.startswith(prefix):
                continue
            if category is not None and category_of(name) != category:
                continue
            info = self.stream_info(name)
            if info is not None:
                count += 1
                yield info

    def head_position(self) -> int:
        """The last position (0 when empty)."""
        self._ensure_usable()
        return len(self._rows)

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (a binary search)."""
        self._ensure_usable()
        return bisect.bisect_right(self._times, to_micros(moment))

    def check(self) -> CheckReport:
        """Trivially consistent by construction; checks the invariants anyway."""
        self._ensure_usable()
        problems = []
        with self._lock:
            if any(row.position != i + 1 for i, row in enumerate(self._rows)):
                problems.append("positions are not gapless")
            for name, indexes in self._streams.items():
                if [self._rows[i].version for i in indexes] != list(range(len(indexes))):
                    problems.append(f"stream {name!r} has non-contiguous versions")
        return CheckReport(
            not problems, len(self._rows), len(self._rows), len(self._streams), tuple(problems), {}
        )

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        """Nothing to index: searches test every event."""
        self._ensure_usable()
        return 0

    def close(self) -> None:
        """Nothing to release; every later operation raises StoreClosed."""
        self._closed = True
        self._interrupted.set()


class _MemoryTransaction(WriteTransaction):
    """A write transaction of an :class:`InMemoryEventStore` (which it holds locked)."""

    def __init__(self, store: InMemoryEventStore) -> None:
        super().__init__()
        self._store = store

    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        """Append in this transaction (taken back if it rolls back)."""
        return self._store.append_to_stream(stream_id, events, expected_version)
