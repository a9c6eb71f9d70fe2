"""PostgreSQL: a writer waits for another's events lock at most ``busy_timeout``, then
gets a typed StoreBusy, having appended nothing; the store works once the lock is free."""

from __future__ import annotations

import time

import pytest

from core.errors import StoreBusy
from core.events import NewEvent
from core.store import SqlEventStore

pytestmark = pytest.mark.postgres


def test_a_writer_blocked_by_a_long_transaction_gets_store_busy_in_time(
    pg_location: str,
) -> None:
    holder = SqlEventStore.open(pg_location)
    waiter = SqlEventStore.open(pg_location, busy_timeout=0.5)
    try:
        with holder.transaction() as unit:  # a long import, say: it holds the events lock
            unit.append_to_stream("import-1", [NewEvent("Imported")])
            started = time.monotonic()
            with pytest.raises(StoreBusy, match="another writer held the store too long"):
                waiter.append_to_stream("other-1", [NewEvent("Waited")])
            waited = time.monotonic() - started
        assert 0.4 < waited < 10  # it waited for the lock, then gave up (not forever)

        assert [e.stream_id for e in waiter.read_all()] == ["import-1"]  # nothing half-done
        appended = waiter.append_to_stream("other-1", [NewEvent("Waited")])  # lock is free
        assert appended.events[0].position == 2
    finally:
        waiter.close()
        holder.close()
