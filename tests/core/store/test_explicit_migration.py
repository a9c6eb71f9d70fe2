"""``eventscope migrate``: a shared PostgreSQL store is upgraded only explicitly, its
indexes on existing tables built CONCURRENTLY; SQLite stores migrate either way."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.errors import OlderSchema
from core.events import NewEvent
from core.store import SqlEventStore
from core.store.schema import SCHEMA_VERSION
from tests.core.projections.test_history_migration import schema_7_ddl
from tests.core.store.test_schema_migration import make_version_1, stored_version

DEFERRED_INDEX = "ix_read_model_docs_valid_from"  # version 8's, on a table of version 4


def sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = conn.execute(text(statement))
                rows = [tuple(row) for row in result] if result.returns_rows else []
            return rows
    finally:
        engine.dispose()


def make_pg_version_5(url: str) -> None:
    """A PostgreSQL store as schema 5 left it: without version 6's index, version 7's
    checksums, or version 8's append-only history."""
    store = SqlEventStore.open(url)
    store.append_to_stream("order-1", [NewEvent("Placed", {"n": 1})])
    store.close()
    sql(
        url,
        *schema_7_ddl("postgresql")[:3],  # schema 4's read_model_docs, with no documents
        "ALTER TABLE events DROP COLUMN checksum",
        "UPDATE eventscope_meta SET value = '5' WHERE key = 'schema_version'",
    )


def pg_version(url: str) -> str:
    rows = sql(url, "SELECT value FROM eventscope_meta WHERE key = 'schema_version'")
    return str(rows[0][0])


def index_state(url: str, name: str) -> bool | None:
    """Whether the index is valid; None when there is none."""
    rows = sql(
        url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = '{name}' "
        "AND n.nspname = current_schema()",
    )
    return bool(rows[0][0]) if rows else None


def eventscope(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", store, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.postgres
def test_an_older_shared_store_is_refused_writable_and_left_untouched(pg_location: str) -> None:
    make_pg_version_5(pg_location)

    with pytest.raises(OlderSchema, match="run `eventscope --store URL migrate`"):
        SqlEventStore.open(pg_location)
    assert pg_version(pg_location) == "5"
    assert index_state(pg_location, DEFERRED_INDEX) is None

    reader = SqlEventStore.open(pg_location, read_only=True)  # read as it is
    assert [e.stream_id for e in reader.read_all()] == ["order-1"]
    reader.close()

    appended = eventscope(pg_location, "append", "order-2", "Placed")
    assert appended.returncode == 5
    assert appended.stderr.count("\n") == 1 and "migrate" in appended.stderr


@pytest.mark.postgres
def test_migrate_upgrades_it_building_the_index_concurrently(pg_location: str) -> None:
    make_pg_version_5(pg_location)

    migrated = eventscope(pg_location, "migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout) == {
        "from_version": 5,
        "to_version": SCHEMA_VERSION,
        "migrated": True,
        "concurrent_indexes": [DEFERRED_INDEX],
    }
    assert pg_version(pg_location) == str(SCHEMA_VERSION)
    assert index_state(pg_location, DEFERRED_INDEX) is True
    assert sql(pg_location, "SELECT count(*) FROM eventscope_meta WHERE key = 'pending_indexes'")[
        0
    ] == (0,)
    store = SqlEventStore.open(pg_location)  # writable now
    store.append_to_stream("order-2", [NewEvent("Placed")])
    store.close()
    again = eventscope(pg_location, "migrate")
    assert json.loads(again.stdout)["migrated"] is False


@pytest.mark.postgres
def test_migrate_finishes_an_interrupted_migration_rebuilding_an_invalid_index(
    pg_location: str,
) -> None:
    """As a migration killed during its concurrent build leaves the store: at the new
    version, the index listed as pending and left invalid."""
    SqlEventStore.open(pg_location).close()
    statement = f"CREATE INDEX {DEFERRED_INDEX} ON read_model_docs (model, valid_from, key)"
    sql(
        pg_location,
        f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{DEFERRED_INDEX}'::regclass",
        "INSERT INTO eventscope_meta (key, value) VALUES "
        f"('pending_indexes', '{json.dumps([statement])}')",
    )
    assert index_state(pg_location, DEFERRED_INDEX) is False

    migration = SqlEventStore.migrate(pg_location)

    assert migration.concurrent_indexes == [DEFERRED_INDEX]
    assert index_state(pg_location, DEFERRED_INDEX) is True


def test_migrate_on_sqlite_upgrades_creates_or_says_there_was_nothing_to_do(
    tmp_path: Path,
) -> None:
    old = tmp_path / "v1.db"
    make_version_1(old)
    assert SqlEventStore.migrate(old).to_dict() == {
        "from_version": 1,
        "to_version": SCHEMA_VERSION,
        "migrated": True,
        "concurrent_indexes": [],
    }
    assert stored_version(old) == str(SCHEMA_VERSION)
    assert SqlEventStore.migrate(old).to_dict()["migrated"] is False

    new = tmp_path / "new.db"
    created = eventscope(str(new), "migrate")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["from_version"] is None
    with sqlite3.connect(new) as raw:
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (0,)
    raw.close()
