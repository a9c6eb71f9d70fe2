"""A full disk: StoreFull with nothing half-written, and a store whose checkpoint ran out of
disk opens again (the figures on a real full filesystem: tests/reliability/disk_full.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import StoreFull
from core.events import NewEvent
from core.store import SqlEventStore
from core.store.sql.engines import translated


class _DiskFull(Exception):
    """Stands for psycopg.errors.DiskFull: SQLSTATE 53100, whatever the message."""

    sqlstate = "53100"


def test_sqlite_and_postgresql_disk_full_errors_are_store_full() -> None:
    sqlite_full = translated(sqlite3.OperationalError("database or disk is full"), "s.db")
    assert isinstance(sqlite_full, StoreFull)
    assert str(sqlite_full).startswith("s.db: the disk is full; free some space")
    enospc = Exception('could not extend file "base/1/2": No space left on device')
    assert isinstance(translated(enospc, "pg"), StoreFull)
    assert isinstance(translated(_DiskFull("could not write to file"), "pg"), StoreFull)


def test_an_append_that_fills_the_database_is_store_full_and_appends_nothing(
    tmp_path: Path,
) -> None:
    with SqlEventStore.open(tmp_path / "store.db") as store:
        store.append_to_stream("order-1", [NewEvent("Placed", {"n": 0})])
        with store.write_transaction() as cursor:
            # SQLite's own page limit gives the same SQLITE_FULL as a full disk.
            cursor.execute("PRAGMA page_count")
            cursor.execute(f"PRAGMA max_page_count = {cursor.fetchone()[0]}")
        batch = [NewEvent("Line", {"text": "x" * 2000}) for _ in range(50)]
        with pytest.raises(StoreFull, match="the disk is full"):
            store.append_to_stream("order-1", batch)
        assert store.head_position() == 1
        assert store.check().ok
        with store.write_transaction() as cursor:
            cursor.execute("PRAGMA max_page_count = 1073741823")
        assert store.append_to_stream("order-1", batch).events[-1].position == 51
