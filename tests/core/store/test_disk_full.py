"""A full disk: StoreFull with nothing half-written, and a store whose checkpoint ran out of
disk opens again (the figures on a real full filesystem: tests/reliability/disk_full.py)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.errors import StoreCorrupt, StoreError, StoreFull
from core.events import NewEvent
from core.store import SqlEventStore
from core.store.sql import engines
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


def test_a_store_whose_checkpoint_ran_out_of_disk_opens_and_checks_ok(tmp_path: Path) -> None:
    # A checkpoint that runs out of disk has written page 1 (the new page count) and not
    # the pages after it; they are all still in the WAL, so SQLite reads the store whole.
    # Opening it used to be refused as "truncated" (StoreCorrupt).
    written, crashed = tmp_path / "written", tmp_path / "crashed"
    written.mkdir()
    crashed.mkdir()
    with SqlEventStore.open(written / "store.db") as store:
        for number in range(20):
            store.append_to_stream(
                f"order-{number}", [NewEvent("Line", {"n": n}) for n in range(50)]
            )
    raw = sqlite3.connect(written / "store.db", isolation_level=None)
    try:
        raw.execute("PRAGMA wal_autocheckpoint = 0")
        raw.execute("VACUUM")  # every page into the WAL, none checkpointed
        for name in ("store.db", "store.db-wal"):
            shutil.copy(written / name, crashed / name)
    finally:
        raw.close()
    with (crashed / "store.db").open("r+b") as handle:
        handle.truncate(4096)
    with SqlEventStore.open(crashed / "store.db") as store:
        report = store.check()
        assert report.ok, report.problems
        assert report.events == 1000
    with SqlEventStore.open(crashed / "store.db", read_only=True) as store:
        assert store.check().ok


def test_a_truncated_store_without_its_wal_is_still_refused(tmp_path: Path) -> None:
    with SqlEventStore.open(tmp_path / "store.db") as store:
        store.append_to_stream("order-1", [NewEvent("Line", {"n": n}) for n in range(500)])
    with (tmp_path / "store.db").open("r+b") as handle:
        handle.truncate(4096)
    with pytest.raises(StoreError, match="truncated"):
        SqlEventStore.open(tmp_path / "store.db")


def test_an_io_error_while_the_disk_is_full_is_store_full_and_otherwise_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite says "disk I/O error" when it cannot create or grow the -shm file: opening
    # a store on a full disk was refused as corrupt (exit 5).
    io_error = sqlite3.OperationalError("disk I/O error")
    assert isinstance(translated(io_error, "s.db", tmp_path / "s.db"), StoreCorrupt)
    monkeypatch.setattr(engines.shutil, "disk_usage", lambda _: SimpleNamespace(free=4096))
    full = translated(io_error, "s.db", tmp_path / "s.db")
    assert isinstance(full, StoreFull)
    assert "free some space" in str(full)
    assert isinstance(translated(io_error, "pg"), StoreCorrupt)
