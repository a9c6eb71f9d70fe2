"""SQLite's locks are per process: opening a store file again in a process that has it
open must not drop them, or another process's close deletes the WAL under this one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from core.events import NewEvent
from core.store import SqlEventStore


def test_a_second_open_here_keeps_the_wal_safe_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SqlEventStore.open(path).close()
    reader = SqlEventStore.open(path, read_only=True)  # e.g. the console's probe
    writer = SqlEventStore.open(path)  # opened after it: its header read must not unlock
    try:
        writer.append_to_stream("here-1", [NewEvent("Appended")])
        other = subprocess.run(
            [sys.executable, "-m", "console.cli", "--store", str(path), "append", "there-1", "B"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 0, other.stderr
        # That process closed its last connection: the WAL must still be there (ours).
        assert (tmp_path / "shared.db-wal").exists()

        writer.append_to_stream("here-1", [NewEvent("Appended")], expected_version=0)
        assert writer.head_position() == reader.head_position() == 3
    finally:
        writer.close()
        reader.close()
    with sqlite3.connect(path) as fresh:  # what was acknowledged is on disk
        assert fresh.execute("SELECT count(*) FROM events").fetchone() == (3,)
    fresh.close()
