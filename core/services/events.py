"""The event queries service: reading, counting, streams, the timeline, integrity."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from core.events import RecordedEvent, StreamInfo, to_micros
from core.jobs import checkpoint
from core.services.handle import StoreHandle
from core.services.plugins import Plugins
from core.store import CheckReport, EventFilter, EventStore, RawEvent
from core.store.jsonlines import export_line
from core.store.port import check_filter_text
from core.upcasting import UpcastFailed

__all__ = ["EventQueries", "UpcastView"]

_MICROSECOND: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class UpcastView:
    """An event as stored (``raw``) and as readers see it (``current``, upcast)."""

    raw: RecordedEvent
    current: RecordedEvent
    failure: str | None = None

    @property
    def changed(self) -> bool:
        """Whether an upcaster changed the event."""
        return self.current is not self.raw


def behind(store: EventStore, checkpoint: int, head: int, now: int) -> tuple[int, float]:
    """How far a reader at ``checkpoint`` is behind ``head``: in events (a count where
    positions have gaps) and in seconds (the age at ``now``, in microseconds, of the
    oldest event it has not read)."""
    if head <= checkpoint:
        return 0, 0.0
    after = EventFilter(from_position=checkpoint + 1)
    events = head - checkpoint if store.gapless else store.count(after)
    oldest = next(store.read(after, limit=1), None)
    if oldest is None:
        return events, 0.0
    return events, max(0.0, (now - to_micros(oldest.recorded_at)) / 1_000_000)


class EventQueries:
    """Everything read from the log: what the streams browser, the event log, the
    inspector, the timeline and the reading commands ask.

    Args:
        handle: the store.
        plugins: for the upcasters.
    """

    def __init__(self, handle: StoreHandle, plugins: Plugins) -> None:
        self._handle = handle
        self._plugins = plugins

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events matching a filter, in position order (or reversed), page by page."""
        with self._handle.use() as opened:
            yield from opened.store.read(where, backwards=backwards, limit=limit)

    def read_stream(
        self, stream_id: str, *, from_version: int | None = None, limit: int | None = None
    ) -> Iterator[RecordedEvent]:
        """One stream's events by version, from ``from_version``."""
        with self._handle.use() as opened:
            yield from opened.store.read_stream(stream_id, from_version=from_version, limit=limit)

    def export_lines(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[bytes]:
        """Events as JSON lines, exactly as stored, in bounded memory."""
        for row in self.export_rows(where, backwards=backwards, limit=limit):
            yield export_line(row)

    def export_rows(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RawEvent]:
        """Events as stored rows (``export_line`` makes each the line export prints), in
        position order (or reversed), page by page: what a relay publishes."""
        with self._handle.use() as opened:
            yield from opened.store.iter_raw(where, backwards=backwards, limit=limit)

    def event_by_id(self, event_id: str) -> RecordedEvent | None:
        """The event stored with this id, or None."""
        with self._handle.use() as opened:
            return opened.store.event_by_id(event_id)

    def behind(self, checkpoint: int, head: int, now: int) -> tuple[int, float]:
        """See :func:`behind`: a reader at ``checkpoint``'s lag in events and seconds."""
        with self._handle.use() as opened:
            return behind(opened.store, checkpoint, head, now)

    @property
    def gapless(self) -> bool:
        """Whether positions have no gaps (row r of the whole log is position r + 1)."""
        with self._handle.use() as opened:
            return opened.store.gapless

    def event_at(self, position: int) -> RecordedEvent | None:
        """The event at a position, or None."""
        found = next(self.read(EventFilter(from_position=position), limit=1), None)
        return found if found is not None and found.position == position else None

    def streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by id (after ``after``, exclusive) with counts and first/last times.

        Raises:
            InvalidFilter: a prefix, category or ``after`` that is not valid UTF-8 text.
        """
        for name, value in (("prefix", prefix), ("category", category), ("after", after)):
            check_filter_text(name, value)
        with self._handle.use() as opened:
            yield from opened.store.list_streams(
                prefix=prefix, category=category, after=after, limit=limit
            )

    def recent_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        before_position: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by last activity, newest first (see ``EventStore.recent_streams``)."""
        for name, value in (("prefix", prefix), ("category", category)):
            check_filter_text(name, value)
        with self._handle.use() as opened:
            yield from opened.store.recent_streams(
                prefix=prefix, category=category, before_position=before_position, limit=limit
            )

    def head_position(self) -> int:
        """The position of the last event (0 when empty)."""
        with self._handle.use() as opened:
            return opened.store.head_position()

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (0 if none)."""
        with self._handle.use() as opened:
            return opened.store.position_at(moment)

    @property
    def search_index(self) -> bool:
        """Whether searches have an index (another tool's store has none: they scan)."""
        with self._handle.use() as opened:
            return opened.store.search_index

    def indexed_position(self) -> int:
        """The last position the search index covers (see ``EventStore.update_index``)."""
        with self._handle.use() as opened:
            return opened.store.indexed_position()

    def count(self, where: EventFilter = EventFilter()) -> int:
        """How many events match a filter."""
        with self._handle.use() as opened:
            return opened.store.count(where)

    def time_span(self) -> tuple[datetime, datetime] | None:
        """The times of the first and the last event, or None for an empty store."""
        with self._handle.use() as opened:
            first = next(opened.store.read_all(limit=1), None)
            last = next(opened.store.read(backwards=True, limit=1), None)
        if first is None or last is None:
            return None
        return first.recorded_at, last.recorded_at

    def timeline(
        self,
        start: datetime,
        end: datetime,
        buckets: int,
        where: EventFilter | None = None,
    ) -> list[int]:
        """Event counts in ``buckets`` equal slices of [start, end] (the last one closed).

        Without content filters this costs one index probe per bucket edge: positions
        are gapless and ``recorded_at`` never decreases along them, so the events before
        time t are exactly positions 1..position_at(t - 1 µs). Where positions have gaps
        (another tool's store), each bucket's positions are counted instead.
        """
        if buckets < 1 or end < start:
            raise ValueError("a timeline needs buckets >= 1 and start <= end")
        step = (end - start) / buckets
        edges = [start + step * k for k in range(buckets)] + [end]
        with self._handle.use() as opened:
            store = opened.store
            before = [store.position_at(edge - _MICROSECOND) for edge in edges[:-1]]
            before.append(store.position_at(end))
            if (where is None or where == EventFilter()) and store.gapless:
                return [before[k + 1] - before[k] for k in range(buckets)]
            where = where if where is not None else EventFilter()
            counts = []
            for k in range(buckets):
                checkpoint(k, buckets)
                low, high = before[k] + 1, before[k + 1]
                if where.from_position is not None:
                    low = max(low, where.from_position)
                if where.to_position is not None:
                    high = min(high, where.to_position)
                if high < low:
                    counts.append(0)
                    continue
                bucket = replace(where, from_position=low, to_position=high)
                counts.append(store.count(bucket) if before[k + 1] > before[k] else 0)
        return counts

    def check(self) -> CheckReport:
        """The store's integrity report."""
        with self._handle.use() as opened:
            return opened.store.check()

    def upcast(self, event: RecordedEvent) -> UpcastView:
        """The event raw and upcast to its current schema (a failure is described, not
        raised, so an inspector can still show the raw payload)."""
        try:
            return UpcastView(event, self._plugins.registry.upcasters.upcast(event))
        except UpcastFailed as failure:
            return UpcastView(event, event, str(failure))
