"""Store schema versions: new stores are current, older ones migrate on a writable open."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.events import NewEvent
from core.store import EventFilter, SqlEventStore
from core.store.schema import SCHEMA_VERSION

NEW_INDEXES = {"ix_streams_last_position", "ix_read_model_docs_valid_from"}
SEARCH_TABLES = {"event_words", "event_correlations"}
READ_MODEL_TABLES = {"read_models", "read_model_docs", "projection_runs"}


def sqlite_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    return names


def sqlite_indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    raw.close()
    return names


def stored_version(path: Path) -> str:
    with sqlite3.connect(path) as raw:
        (value,) = raw.execute(
            "SELECT value FROM eventscope_meta WHERE key = 'schema_version'"
        ).fetchone()
    raw.close()
    return str(value)


def make_version_1(path: Path) -> None:
    """A store as Eventscope's first schema left it: without version 2's index or
    version 3's search tables (nor version 7's checksums), with the time index that
    version 8 dropped."""
    store = SqlEventStore.open(path)
    store.append_to_stream("order-1", [NewEvent("Placed", {}, {"correlation_id": "c-1"})])
    store.append_to_stream("order-2", [NewEvent("Placed", {}, {"correlation_id": "c-2"})])
    store.close()
    with sqlite3.connect(path) as raw:
        for name in NEW_INDEXES:
            raw.execute(f"DROP INDEX {name}")
        for name in SEARCH_TABLES | READ_MODEL_TABLES:
            raw.execute(f"DROP TABLE {name}")
        raw.execute("ALTER TABLE events DROP COLUMN checksum")
        raw.execute("CREATE INDEX ix_events_recorded_at ON events (recorded_at, position)")
        raw.execute("DELETE FROM eventscope_meta WHERE key = 'indexed_position'")
        raw.execute("UPDATE eventscope_meta SET value = '1' WHERE key = 'schema_version'")
    raw.close()


def test_a_new_store_is_at_the_current_version_with_its_indexes(tmp_path: Path) -> None:
    SqlEventStore.open(tmp_path / "new.db").close()
    assert stored_version(tmp_path / "new.db") == str(SCHEMA_VERSION) == "9"
    assert NEW_INDEXES <= sqlite_indexes(tmp_path / "new.db")
    assert "ix_events_recorded_at" not in sqlite_indexes(tmp_path / "new.db")
    assert SEARCH_TABLES | READ_MODEL_TABLES <= sqlite_tables(tmp_path / "new.db")


def test_an_older_store_reads_as_it_is_read_only_and_migrates_when_writable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.db"
    make_version_1(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    reader = SqlEventStore.open(path, read_only=True)
    assert [e.stream_id for e in reader.read(EventFilter(correlation_id="c-2"))] == ["order-2"]
    reader.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert stored_version(path) == "1"

    writer = SqlEventStore.open(path)
    assert [e.stream_id for e in writer.read(EventFilter(correlation_id="c-1"))] == ["order-1"]
    assert writer.check().ok
    assert writer.indexed_position() == 0
    assert writer.update_index() == 2
    assert [e.stream_id for e in writer.read(EventFilter(correlation_id="c-1"))] == ["order-1"]
    assert writer.position_at(datetime(2100, 1, 1, tzinfo=UTC)) == 2
    writer.close()
    assert stored_version(path) == str(SCHEMA_VERSION)
    assert NEW_INDEXES <= sqlite_indexes(path)
    assert "ix_events_recorded_at" not in sqlite_indexes(path)
    assert SEARCH_TABLES | READ_MODEL_TABLES <= sqlite_tables(path)


def test_the_correlation_filter_works_on_postgres(pg_location: str) -> None:
    store = SqlEventStore.open(pg_location)
    store.append_to_stream("order-1", [NewEvent("Placed", {}, {"correlation_id": "c-1"})])
    store.append_to_stream("order-2", [NewEvent("Placed", {}, {"correlation_id": "c-2"})])
    assert [e.stream_id for e in store.read(EventFilter(correlation_id="c-1"))] == ["order-1"]
    assert store.update_index() == 2
    assert [e.stream_id for e in store.read(EventFilter(correlation_id="c-1"))] == ["order-1"]
    engine = create_engine(pg_location)
    with engine.connect() as conn:
        version = conn.execute(
            text("SELECT value FROM eventscope_meta WHERE key = 'schema_version'")
        ).scalar_one()
    engine.dispose()
    store.close()
    assert version == str(SCHEMA_VERSION)


@pytest.mark.parametrize("missing", sorted(NEW_INDEXES))
def test_migration_restores_each_index(tmp_path: Path, missing: str) -> None:
    path = tmp_path / "v1.db"
    make_version_1(path)
    SqlEventStore.open(path).close()
    assert missing in sqlite_indexes(path)
