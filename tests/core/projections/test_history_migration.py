"""Schema 8's append-only history, migrated from schema 7's rows (valid_to stored).

A history is written as schema 7 stored it (raw DDL and rows), migrated, and every
``HistoryStore`` answer compared with the in-memory history fed the same batches.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, text

from core.projections.history import (
    Change,
    HistoryStore,
    InMemoryHistoryStore,
    open_history,
)
from core.projections.history.port import chain_versions
from core.store import InMemoryEventStore, SqlEventStore
from core.store.schema import SCHEMA_VERSION

MODEL = "tally:1"
KEYS = ["a", "b", "c", "é", "日本"]


def put(key: str, position: int, value: Any) -> Change:
    return Change(key, position, orjson.dumps(value))


def gone(key: str, position: int) -> Change:
    return Change(key, position, None)


#: Deletes and re-creations, a delete and a put at one position, a key deleted for good,
#: a key deleted then re-created in a later batch, a delete at the batch's edge.
BATCHES: list[list[Change]] = [
    [put("a", 1, 1), put("b", 1, 1), put("c", 2, 1), put("a", 3, 2), gone("b", 4)],
    [put("b", 5, 2), gone("a", 6), put("a", 6, 3), put("é", 7, 1), gone("c", 8)],
    [gone("a", 9), put("日本", 9, 1), gone("é", 10)],
    [put("a", 12, 4), put("c", 12, 2), gone("b", 13), put("b", 14, 3)],
]
HEAD = 14


def schema_7_ddl(dialect: str) -> list[str]:
    """read_model_docs as schema 7 had it (table, valid_to and valid_from indexes)."""
    without_rowid = " WITHOUT ROWID" if dialect == "sqlite" else ""
    return [
        "DROP TABLE read_model_docs",
        "CREATE TABLE read_model_docs (model VARCHAR NOT NULL, key VARCHAR NOT NULL, "
        "valid_from BIGINT NOT NULL, valid_to BIGINT NOT NULL, doc TEXT NOT NULL, "
        f"PRIMARY KEY (model, key, valid_from)){without_rowid}",
        "CREATE INDEX ix_read_model_docs_valid_to ON read_model_docs (model, valid_to, key)",
        "CREATE INDEX ix_read_model_docs_valid_from ON read_model_docs "
        "(model, valid_from, valid_to, key)",
    ]


def schema_7_rows(batches: Sequence[Sequence[Change]]) -> list[tuple[str, str, int, int, str]]:
    """The rows schema 7 held after these batches: one version per surviving put, valid
    until its key's next change (what its commits' updates left)."""
    return chain_versions(MODEL, list(itertools.chain.from_iterable(batches))).inserts


def as_schema_7(execute: Callable[[str, Any], object], dialect: str) -> None:
    """Turn a new store (its read model registered at HEAD) into a schema-7 one."""
    for statement in schema_7_ddl(dialect):
        execute(statement, None)
    values = "?, ?, ?, ?, ?" if dialect == "sqlite" else ":m, :k, :f, :t, :d"
    for model, key, valid_from, valid_to, doc in schema_7_rows(BATCHES):
        row = (model, key, valid_from, valid_to, doc)
        execute(
            f"INSERT INTO read_model_docs VALUES ({values})",
            row if dialect == "sqlite" else dict(zip("mkftd", row, strict=True)),
        )
    execute("UPDATE eventscope_meta SET value = '7' WHERE key = 'schema_version'", None)


def reference() -> HistoryStore:
    memory = InMemoryHistoryStore(InMemoryEventStore())
    memory.ensure("tally", 1)
    checkpoint = 0
    for batch in BATCHES:
        upto = batch[-1].position
        assert memory.commit(MODEL, checkpoint, upto, batch)
        checkpoint = upto
    assert memory.commit(MODEL, checkpoint, HEAD, [])
    return memory


def registered(store: SqlEventStore) -> None:
    history = open_history(store)
    assert history is not None
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, HEAD, [])  # the documents come as schema 7's rows


def assert_same_answers(found: HistoryStore, expected: HistoryStore) -> None:
    assert found.status(MODEL).checkpoint == HEAD  # type: ignore[union-attr]
    for position in [*range(HEAD + 2), None]:
        assert list(found.iter_documents_at(MODEL, position, page_size=2)) == list(
            expected.iter_documents_at(MODEL, position)
        ), position
        for key in [*KEYS, "missing"]:
            assert found.document_at(MODEL, key, position) == expected.document_at(
                MODEL, key, position
            ), (key, position)
    for key in [*KEYS, "missing"]:
        assert found.versions_of(MODEL, key) == expected.versions_of(MODEL, key), key
        assert found.current_doc(MODEL, key) == expected.current_doc(MODEL, key), key
    assert found.versions(MODEL) == expected.versions(MODEL)
    assert found.current_keys(MODEL, limit=10) == expected.current_keys(MODEL, limit=10)


def tombstones_sqlite(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as raw:
        rows = raw.execute(
            "SELECT key, valid_from FROM read_model_docs WHERE doc IS NULL ORDER BY 1, 2"
        ).fetchall()
    raw.close()
    return [(str(key), int(at)) for key, at in rows]


#: Where schema 7's versions ended with no next version of their key: a tombstone each.
EXPECTED_TOMBSTONES = [("a", 9), ("b", 4), ("b", 13), ("c", 8), ("é", 10)]


def test_a_sqlite_history_migrates_to_the_append_only_layout(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqlEventStore.open(path)
    registered(store)
    store.close()
    with sqlite3.connect(path) as raw:
        as_schema_7(lambda sql, args: raw.execute(sql, args or ()), "sqlite")
    raw.close()

    reader = SqlEventStore.open(path, read_only=True)  # read-only: not migrated
    assert reader.schema_version == 7 and open_history(reader) is None
    reader.close()

    store = SqlEventStore.open(path)  # writable: migrated
    assert store.schema_version == SCHEMA_VERSION == 9
    history = open_history(store)
    assert history is not None
    assert tombstones_sqlite(path) == EXPECTED_TOMBSTONES
    assert_same_answers(history, reference())
    # Appending on the migrated history chains onto its rows.
    assert history.commit(MODEL, HEAD, HEAD + 1, [gone("c", HEAD + 1), put("é", HEAD + 1, 9)])
    assert history.document_at(MODEL, "c", HEAD) == 2
    assert history.document_at(MODEL, "c") is None
    assert history.versions_of(MODEL, "é")[-1] == (HEAD + 1, 2**62, 9)
    store.close()
    with sqlite3.connect(path) as raw:
        indexes = {
            row[0]
            for row in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'read_model_docs'"
            )
        }
    raw.close()
    assert indexes == {"ix_read_model_docs_valid_from"}


@pytest.mark.postgres
def test_a_postgres_history_migrates_to_the_append_only_layout(pg_location: str) -> None:
    store = SqlEventStore.open(pg_location)
    registered(store)
    store.close()
    engine = create_engine(pg_location)
    with engine.begin() as conn:
        as_schema_7(lambda sql, args: conn.execute(text(sql), args or {}), "postgresql")

    migration = SqlEventStore.migrate(pg_location)
    assert (migration.from_version, migration.to_version) == (7, SCHEMA_VERSION)
    assert migration.concurrent_indexes == ["ix_read_model_docs_valid_from"]

    with engine.connect() as conn:
        tombstones = conn.execute(
            text("SELECT key, valid_from FROM read_model_docs WHERE doc IS NULL ORDER BY 1, 2")
        ).all()
        indexes = conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'read_model_docs' "
                "AND schemaname = current_schema()"
            )
        ).all()
    engine.dispose()
    assert sorted((str(k), int(v)) for k, v in tombstones) == sorted(EXPECTED_TOMBSTONES)
    assert {row[0] for row in indexes} == {
        "read_model_docs_pkey",
        "ix_read_model_docs_valid_from",
    }
    store = SqlEventStore.open(pg_location)
    history = open_history(store)
    assert history is not None
    assert_same_answers(history, reference())
    store.close()
