"""What every foreign source shares: the read side of the store port, and writes refused.

A foreign source reads another tool's event tables (the ``eventsourcing`` library's
recorders, Message DB) as an Eventscope store, never writing them (DESIGN §8). Its
positions are the other tool's (``rowid``, ``notification_id``, ``global_position``)
and may have gaps: nothing here assumes row r is position r+1.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import NoReturn

from core.errors import SourceReadOnly
from core.events import ANY, ExpectedVersion, NewEvent, StreamInfo
from core.jobs import checkpoint
from core.store.port import (
    AppendResult,
    EventFilter,
    EventStore,
    ImportRecord,
    ImportResult,
    WriteTransaction,
)
from core.store.sql import SqlEventStore

__all__ = ["UNDECODABLE", "ForeignSource", "ScanProgress", "read_only_error"]

#: The one key of the data of an event a source cannot decode (a missing cipher key, a
#: corrupt payload): its value says why. The event is listed all the same.
UNDECODABLE = "$undecodable"


class ScanProgress:
    """Progress of a read that looks through events one by one (a filter the database
    cannot answer): positions covered so far of the span it reads, reported to the
    current job (``core.jobs``), as the SQL store's search scans report theirs.

    Args:
        low: the first position the read may cover.
        high: the last (the head when the read is unbounded).
        backwards: the direction of the read.
    """

    def __init__(self, low: int, high: int, *, backwards: bool) -> None:
        self._low, self._high, self._backwards = max(low, 1), high, backwards

    def reached(self, position: int) -> None:
        """The read has covered everything up to (or, backwards, down to) ``position``."""
        total = max(self._high - self._low + 1, 1)
        if self._backwards:
            done = self._high - position + 1
        else:
            done = position - self._low + 1
        checkpoint(min(max(done, 0), total), total)


def read_only_error(display_location: str, tool: str) -> SourceReadOnly:
    """The one-line error for any write to a foreign source."""
    return SourceReadOnly(
        f"{display_location} is {tool}'s store: Eventscope only reads it "
        "(copy it into an Eventscope store with `eventscope import-from`)"
    )


class ForeignSource(EventStore):
    """An EventStore over another tool's tables: reads work, every write raises
    :class:`~core.errors.SourceReadOnly`. Subclasses implement the reads."""

    read_only = True
    gapless = False
    search_index = False
    #: The Eventscope store that keeps this source's read models (their documents,
    #: history, checkpoints and the ``$audit`` of actions on them), if one is open: the
    #: source itself is never written. The workspace opens and closes it.
    models: SqlEventStore | None = None
    #: The tool whose store this is, as errors name it ("the eventsourcing library").
    tool: str = "another tool"

    @classmethod
    @abc.abstractmethod
    def open(cls, location: str) -> ForeignSource:
        """Open the source at its prefixed URL, read-only.

        Raises:
            StoreUnusable: unreachable, missing, or holding no such tables (a subclass
                of it says which, in one line).
        """

    @property
    def display_location(self) -> str:
        """The location fit to show (a password hidden)."""
        return self.location

    def _refuse(self) -> NoReturn:
        raise read_only_error(self.display_location, self.tool)

    def append_to_stream(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion | int | str | None = ANY,
    ) -> AppendResult:
        self._refuse()

    def import_records(self, records: Iterable[ImportRecord]) -> ImportResult:
        self._refuse()

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        self._refuse()

    def transaction(self) -> AbstractContextManager[WriteTransaction]:
        self._refuse()

    def recent_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        before_position: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by last activity, newest first: the log read backwards from
        ``before_position``, each stream met for the first time looked up (no streams
        table here to sort; the port's default would list every stream first)."""
        where = EventFilter(
            stream_prefix=prefix,
            category=category,
            from_position=None if before_position is None else before_position - 1,
        )
        if before_position is not None and before_position <= 1:
            return
        seen: set[str] = set()
        found = 0
        for event in self.read(where, backwards=True):
            if event.stream_id in seen:
                continue
            seen.add(event.stream_id)
            info = self.stream_info(event.stream_id)
            if info is None or (
                before_position is not None and info.last_position >= before_position
            ):
                continue  # active again since: its place is further up the list
            yield info
            found += 1
            if limit is not None and found >= limit:
                return

    def indexed_position(self) -> int:
        """No index can be written: every search scans (see EventFilter.matches)."""
        return 0
