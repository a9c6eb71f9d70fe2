"""A SQLite store whose last writer was killed during a WAL checkpoint opens with every
event: its file header already counts pages that only the WAL holds so far."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from core.errors import StoreCorrupt
from core.events import NewEvent
from core.store import SqlEventStore

_WAL_HEADER = 32
_FRAME_HEADER = 24


def _killed_during_checkpoint(tmp_path: Path) -> Path:
    """A store as a kill -9 in a checkpoint leaves it: page 1 (the header, with the grown
    page count) copied from the WAL into the file, the pages that grow the file not yet."""
    original = tmp_path / "original" / "store.db"
    original.parent.mkdir()
    SqlEventStore.open(original).close()  # a small file, its WAL checkpointed away
    keeper = sqlite3.connect(original)  # keeps the WAL from the last close's checkpoint
    try:
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
        store = SqlEventStore.open(original)
        for n in range(20):
            store.append_to_stream(
                f"order-{n}", [NewEvent("Placed", {"pad": "x" * 4000}) for _ in range(5)]
            )
        store.close()
        copy = tmp_path / "crashed" / "store.db"
        copy.parent.mkdir()
        shutil.copyfile(original, copy)
        shutil.copyfile(f"{original}-wal", f"{copy}-wal")
    finally:
        keeper.close()
    wal = Path(f"{copy}-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    last_page_one = None
    for offset in range(_WAL_HEADER, len(wal), _FRAME_HEADER + page_size):
        if int.from_bytes(wal[offset : offset + 4], "big") == 1:
            last_page_one = wal[offset + _FRAME_HEADER : offset + _FRAME_HEADER + page_size]
    assert last_page_one is not None
    with copy.open("r+b") as handle:
        handle.write(last_page_one)
    pages = int.from_bytes(last_page_one[28:32], "big")
    assert copy.stat().st_size < pages * page_size  # what the open used to call truncated
    return copy


@pytest.mark.parametrize("read_only", [True, False])
def test_a_store_killed_during_a_checkpoint_opens_whole(tmp_path: Path, read_only: bool) -> None:
    crashed = _killed_during_checkpoint(tmp_path)
    store = SqlEventStore.open(crashed, read_only=read_only)
    try:
        assert store.head_position() == 100
        assert store.check().ok
    finally:
        store.close()


def test_a_truncated_store_without_a_wal_is_still_refused(tmp_path: Path) -> None:
    crashed = _killed_during_checkpoint(tmp_path)
    Path(f"{crashed}-wal").unlink()  # nothing can finish the checkpoint now
    with pytest.raises(StoreCorrupt, match="truncated"):
        SqlEventStore.open(crashed, read_only=True)
