"""The facade that the console, the CLI and the tests use: one open store and what it answers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from core.events import ANY, ExpectedVersion, NewEvent, RecordedEvent, StreamInfo
from core.store import (
    CheckReport,
    EventFilter,
    EventStore,
    ImportResult,
    SqlEventStore,
)
from core.store.jsonlines import export_line, parse_import_lines
from core.store.sql import display_location

__all__ = ["Workspace"]


class Workspace:
    """An open store and everything asked of it. Panels and commands never build SQL.

    Args:
        store: the event store (SQLite, PostgreSQL or in memory).
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store

    @classmethod
    def open(cls, location: str, *, read_only: bool = True) -> Workspace:
        """Open the store at a path or URL; read-only unless asked otherwise.

        Raises:
            StoreUnusable: the store is missing (read-only), corrupt, newer or unreachable.
        """
        return cls(SqlEventStore.open(location, read_only=read_only))

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self.store.read_only

    @property
    def location(self) -> str:
        """The store's path or URL, as given (a URL may hold a password)."""
        return self.store.location

    @property
    def display_location(self) -> str:
        """The store's path or URL fit to show: a password becomes ``***``."""
        return display_location(self.store.location)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: ExpectedVersion | int | str | None = ANY,
        event_id: str | None = None,
    ) -> RecordedEvent:
        """Append one event and return it as recorded (the stored one for a re-send)."""
        new = (
            NewEvent(event_type, data or {}, metadata or {}, event_id)
            if event_id is not None
            else NewEvent(event_type, data or {}, metadata or {})
        )
        result = self.store.append_to_stream(stream_id, [new], expected_version)
        return result.events[0]

    def import_lines(self, lines: Iterable[bytes | str]) -> ImportResult:
        """Import JSON lines all-or-nothing (see ``core.store.jsonlines``)."""
        return self.store.import_records(parse_import_lines(lines))

    # -- reading ----------------------------------------------------------------------------

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events matching a filter, in position order (or reversed)."""
        return self.store.read(where, backwards=backwards, limit=limit)

    def export_lines(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[bytes]:
        """Events as JSON lines, exactly as stored, in bounded memory."""
        for row in self.store.iter_raw(where, backwards=backwards, limit=limit):
            yield export_line(row)

    def streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by id (after ``after``, exclusive) with counts and first/last times."""
        return self.store.list_streams(prefix=prefix, category=category, after=after, limit=limit)

    def head_position(self) -> int:
        """The position of the last event (0 when empty)."""
        return self.store.head_position()

    def check(self) -> CheckReport:
        """The store's integrity report."""
        return self.store.check()
