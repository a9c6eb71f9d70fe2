"""A store file is data: opening or writing a crafted one never runs code from it."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from core.errors import StoreCorrupt
from core.events import NewEvent
from core.store import SqlEventStore


def crafted(path: Path, statement: str) -> str:
    """A real store with ``statement`` run on it; returns the file's hash."""
    store = SqlEventStore.open(path)
    store.append_to_stream("order-1", [NewEvent("Placed", {"n": 1})])
    store.close()
    with sqlite3.connect(path) as raw:
        raw.execute(statement)
    raw.close()
    for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        side.unlink(missing_ok=True)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("read_only", [True, False])
def test_a_store_holding_a_trigger_is_refused_before_it_can_fire(
    tmp_path: Path, read_only: bool
) -> None:
    path = tmp_path / "crafted.db"
    before = crafted(
        path, "CREATE TRIGGER wipe AFTER INSERT ON events BEGIN DELETE FROM events; END"
    )
    with pytest.raises(StoreCorrupt, match=r"holds triggers Eventscope never creates \(wipe\)"):
        SqlEventStore.open(path, read_only=read_only)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before

    appended = subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", str(path), "append", "order-2", "P"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert appended.returncode == 5 and "triggers" in appended.stderr
    assert "Traceback" not in appended.stderr
    with sqlite3.connect(path) as raw:  # the trigger never ran: the event is still there
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (1,)
    raw.close()


def test_functions_with_side_effects_may_not_run_from_the_schema(tmp_path: Path) -> None:
    store = SqlEventStore.open(tmp_path / "store.db")
    try:
        with store._connections.engine.connect() as conn:  # every connection the store opens
            assert conn.execute(text("PRAGMA trusted_schema")).scalar() == 0
    finally:
        store.close()
