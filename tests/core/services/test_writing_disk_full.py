"""An import or demo whose events were committed, then the disk filled while they were
indexed: the caller hears that they were stored, not that the disk was full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import StoreFull
from core.store import SqlEventStore
from core.workspace import Workspace


def test_an_import_stored_before_the_disk_filled_reports_its_events_and_indexes_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlEventStore.open(tmp_path / "store.db")
    indexing = store.update_index

    def full(**_options: object) -> int:
        raise StoreFull(f"{tmp_path}: the disk is full; free some space and try again")

    with Workspace(store) as workspace:
        monkeypatch.setattr(store, "update_index", full)
        lines = [json.dumps({"stream_id": f"note-{n}", "type": "Noted"}) for n in range(10)]
        result = workspace.writing.import_lines(lines)
        assert (result.appended, store.head_position(), store.indexed_position()) == (10, 10, 0)
        assert "the search index was not updated" in caplog.text
        monkeypatch.setattr(store, "update_index", indexing)
        assert workspace.writing.update_index() == 10
