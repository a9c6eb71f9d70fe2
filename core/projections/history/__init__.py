"""Read models with history (DESIGN §5): the port, its SQL and in-memory backends.

Every document version is stored with the positions in which it was valid, so the read
model at any position is an index range, not a replay. :func:`open_history` picks the
backend for an event store.
"""

from __future__ import annotations

from core.projections.history.memory import InMemoryHistoryStore
from core.projections.history.port import (
    ACTIVE,
    CURRENT,
    DUMP_OPTIONS,
    FAULTED,
    FIRST_PAGE,
    KEEP_RUNS,
    PAUSED,
    RETIRED,
    Change,
    Fault,
    HistoryStore,
    ModelStatus,
    RunRecord,
)
from core.projections.history.sql import HISTORY_SCHEMA, SPARSE_VERSIONS, SqlHistoryStore
from core.sources.base import ForeignSource
from core.store.memory import InMemoryEventStore
from core.store.port import EventStore
from core.store.sql import SqlEventStore

__all__ = [
    "ACTIVE",
    "CURRENT",
    "DUMP_OPTIONS",
    "FAULTED",
    "FIRST_PAGE",
    "KEEP_RUNS",
    "PAUSED",
    "RETIRED",
    "SPARSE_VERSIONS",
    "Change",
    "Fault",
    "HistoryStore",
    "InMemoryHistoryStore",
    "ModelStatus",
    "RunRecord",
    "SqlHistoryStore",
    "open_history",
]


def open_history(store: EventStore, *, keep_runs: int = KEEP_RUNS) -> HistoryStore | None:
    """The read models with history of ``store``: in its own database for a SQL store,
    beside it for an in-memory one.

    Args:
        store: the event store (its transactions are the history's).
        keep_runs: how many runs of each read model the run history keeps (the newest).

    Returns:
        None for a SQL store older than schema 8 opened read-only (a read-only open does
        not migrate: before schema 4 it has no read-model tables, and before 8 they have
        the layout before the append-only history, which this Eventscope does not read;
        time travel folds from the log there, and a writable open or ``eventscope
        migrate`` brings the read models back), and for another tool's store (read
        through ``core.sources``) without a sidecar store for its read models: with one,
        the read models are the sidecar's.
    """
    if isinstance(store, SqlEventStore):
        if store.schema_version < HISTORY_SCHEMA:
            return None
        return SqlHistoryStore(store, keep_runs=keep_runs)
    if isinstance(store, InMemoryEventStore):
        return InMemoryHistoryStore(store, keep_runs=keep_runs)
    if isinstance(store, ForeignSource) and store.models is not None:
        return open_history(store.models, keep_runs=keep_runs)  # its sidecar store
    return None
