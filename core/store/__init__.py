"""The event store port and its backends (SQLite, PostgreSQL, in memory)."""

from __future__ import annotations

from core.store.memory import InMemoryEventStore
from core.store.port import (
    AppendResult,
    CheckReport,
    EventFilter,
    EventStore,
    ImportRecord,
    ImportResult,
    RawEvent,
    WriteTransaction,
)
from core.store.sql import SqlEventStore

__all__ = [
    "AppendResult",
    "CheckReport",
    "EventFilter",
    "EventStore",
    "ImportRecord",
    "ImportResult",
    "InMemoryEventStore",
    "RawEvent",
    "SqlEventStore",
    "WriteTransaction",
    "open_store",
]


def open_store(location: str, *, read_only: bool = False) -> EventStore:
    """Open the store at a file path (SQLite) or a SQLAlchemy URL (PostgreSQL), or another
    tool's store by its prefixed URL (``eventsourcing+…``, ``messagedb+…``: read-only,
    see :mod:`core.sources`).

    A writable open creates a missing store; a read-only open never creates or changes
    anything. See :meth:`SqlEventStore.open` for the errors; a writable open of another
    tool's store raises SourceReadOnly.
    """
    from core.sources import is_foreign, open_source  # core.sources imports core.store

    if is_foreign(location):
        return open_source(location, read_only=read_only)
    return SqlEventStore.open(location, read_only=read_only)
