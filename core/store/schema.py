"""The store's one SQLAlchemy Core schema, shared by SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "CHECKSUM_COLUMN",
    "CHECKSUM_SCHEMA",
    "CORRELATIONS_TABLE",
    "CURRENT",
    "DOCUMENTS_TABLE",
    "INDEXED_POSITION_KEY",
    "MIGRATIONS",
    "READ_MODELS_TABLE",
    "RUNS_TABLE",
    "SCHEMA_VERSION",
    "WORDS_TABLE",
    "events",
    "meta",
    "metadata",
    "projection_runs",
    "read_model_docs",
    "read_models",
    "streams",
]

#: Bumped whenever the tables change; a store with a higher number is refused. Version 1
#: is ``metadata`` below; every later version is a step in ``MIGRATIONS``, run on new
#: stores too, so a migrated store and a new one are the same.
SCHEMA_VERSION: Final = 9

metadata = MetaData()

# SQLite only treats a column typed exactly INTEGER as the rowid alias.
_Position = BigInteger().with_variant(Integer(), "sqlite")
# Byte-wise ordering on both backends, so prefix ranges use the index and sort alike.
_Key = String().with_variant(String(collation="C"), "postgresql")

meta = Table(
    "eventscope_meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("position", _Position, primary_key=True, autoincrement=False),
    Column("stream_id", _Key, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("type", _Key, nullable=False),
    Column("category", _Key, nullable=False),
    Column("data", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("recorded_at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
    UniqueConstraint("stream_id", "version", name="ux_events_stream_version"),
    UniqueConstraint("event_id", name="ux_events_event_id"),
    Index("ix_events_type_position", "type", "position"),
    Index("ix_events_category_position", "category", "position"),
    # Schema 1 to 7 also had ix_events_recorded_at (recorded_at, position); see
    # _to_version_9 for why it went.
)

streams = Table(
    "streams",
    metadata,
    Column("stream_id", _Key, primary_key=True),
    Column("category", _Key, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("first_position", BigInteger, nullable=False),
    Column("last_position", BigInteger, nullable=False),
    Column("first_recorded_at", BigInteger, nullable=False),
    Column("last_recorded_at", BigInteger, nullable=False),
    Index("ix_streams_category", "category", "stream_id"),
)


def _to_version_2(dialect: str) -> list[str]:
    """An index for the streams browser's "by recent activity" order.

    An expression index on ``metadata.correlation_id`` was tried here too and dropped:
    its random keys cut bulk appends to a third (docs/benchmarks.md); correlation
    lookups use the search index of version 3 instead.
    """
    return ["CREATE INDEX ix_streams_last_position ON streams (last_position)"]


#: The search index's tables (schema 3). Not in ``metadata``: their DDL is per dialect.
WORDS_TABLE: Final = "event_words"
CORRELATIONS_TABLE: Final = "event_correlations"
#: The ``eventscope_meta`` key holding the last position the search index covers.
INDEXED_POSITION_KEY: Final = "indexed_position"


def _to_version_3(dialect: str) -> list[str]:
    """The search index: payload words and correlation ids, by position.

    Kept outside the append transaction (filling it in each append cut bulk appends to 0.3-0.5x,
    row 1b of docs/benchmarks.md): ``SqlEventStore.update_index`` fills the tables up to a
    position recorded in ``eventscope_meta``, and searches scan the events after it.
    SQLite: a contentless FTS5 table (rowid = position, no positions or columns
    stored, so it stays small). PostgreSQL: a tsvector per event under a GIN index.
    """
    if dialect == "sqlite":
        words = [
            f"CREATE VIRTUAL TABLE {WORDS_TABLE} USING fts5(data, content='', "
            "detail='none', tokenize='unicode61 remove_diacritics 0')"
        ]
        without_rowid = " WITHOUT ROWID"
    else:
        words = [
            f"CREATE TABLE {WORDS_TABLE} (position BIGINT PRIMARY KEY, words TSVECTOR NOT NULL)",
            f"CREATE INDEX ix_{WORDS_TABLE}_words ON {WORDS_TABLE} USING gin (words)",
        ]
        without_rowid = ""
    return [
        *words,
        f"CREATE TABLE {CORRELATIONS_TABLE} (correlation_id VARCHAR NOT NULL, "
        f"position BIGINT NOT NULL, PRIMARY KEY (correlation_id, position)){without_rowid}",
        f"INSERT INTO {meta.name} (key, value) VALUES ('{INDEXED_POSITION_KEY}', '0')",
    ]


#: The projections' tables (schema 4).
READ_MODELS_TABLE: Final = "read_models"
DOCUMENTS_TABLE: Final = "read_model_docs"
RUNS_TABLE: Final = "projection_runs"
#: ``valid_to`` of a document version that is still current.
CURRENT: Final = 2**62


#: The projections' tables as Core objects, for building statements. Not in ``metadata``:
#: their DDL is the migrations' (``_to_version_4`` to ``_to_version_8``). ``read_model_docs``
#: is schema 8's append-only layout.
_described = MetaData()

read_models = Table(
    READ_MODELS_TABLE,
    _described,
    Column("model", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("checkpoint", BigInteger, nullable=False),
    Column("state", String, nullable=False),
    Column("history_from", BigInteger, nullable=False),
    Column("fault_position", BigInteger),
    Column("fault_event_id", String),
    Column("fault_error", Text),
    Column("updated_at", BigInteger, nullable=False),
    Column("lease_owner", String),
    Column("lease_expires", BigInteger, nullable=False),
)

read_model_docs = Table(
    DOCUMENTS_TABLE,
    _described,
    Column("model", String, primary_key=True),
    Column("key", String, primary_key=True),
    Column("valid_from", BigInteger, primary_key=True),
    Column("doc", Text),  # NULL: a tombstone (the key deleted at valid_from)
)

projection_runs = Table(
    RUNS_TABLE,
    _described,
    Column("id", _Position, primary_key=True),
    Column("model", String, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("duration_us", BigInteger, nullable=False),
    Column("from_position", BigInteger, nullable=False),
    Column("to_position", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("outcome", String, nullable=False),
    Column("error", Text),
    Column("worker", String),
)


def _to_version_4(dialect: str) -> list[str]:
    """Read models with history, their checkpoints, and the projection runs.

    A document version is valid for positions ``valid_from <= p < valid_to`` (CURRENT
    while it is the latest), so the state at a position and the changes between two
    positions are index ranges. Read models live next to the events, so a runner
    commits documents and checkpoint in one transaction.
    """
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    without_rowid = " WITHOUT ROWID" if dialect == "sqlite" else ""
    return [
        f"CREATE TABLE {READ_MODELS_TABLE} (model VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, "
        "version INTEGER NOT NULL, checkpoint BIGINT NOT NULL, state VARCHAR NOT NULL, "
        "history_from BIGINT NOT NULL, fault_position BIGINT, fault_event_id VARCHAR, "
        "fault_error TEXT, updated_at BIGINT NOT NULL)",
        f"CREATE TABLE {DOCUMENTS_TABLE} (model VARCHAR NOT NULL, key VARCHAR NOT NULL, "
        "valid_from BIGINT NOT NULL, valid_to BIGINT NOT NULL, doc TEXT NOT NULL, "
        f"PRIMARY KEY (model, key, valid_from)){without_rowid}",
        f"CREATE INDEX ix_{DOCUMENTS_TABLE}_valid_to ON {DOCUMENTS_TABLE} (model, valid_to, key)",
        f"CREATE TABLE {RUNS_TABLE} (id {serial}, model VARCHAR NOT NULL, "
        "started_at BIGINT NOT NULL, duration_us BIGINT NOT NULL, from_position BIGINT NOT NULL, "
        "to_position BIGINT NOT NULL, events BIGINT NOT NULL, outcome VARCHAR NOT NULL, "
        "error TEXT)",
        f"CREATE INDEX ix_{RUNS_TABLE}_model ON {RUNS_TABLE} (model, id)",
    ]


def _to_version_5(dialect: str) -> list[str]:
    """Leases and the worker of each run, for schedulers in several processes.

    A worker holds a read model's lease (``lease_owner`` until ``lease_expires``,
    microseconds) while it runs it; its batch commits check the lease, so two workers
    never apply the same read model at once, and a worker that died loses the lease
    when it expires.
    """
    return [
        f"ALTER TABLE {READ_MODELS_TABLE} ADD COLUMN lease_owner VARCHAR",
        f"ALTER TABLE {READ_MODELS_TABLE} ADD COLUMN lease_expires BIGINT NOT NULL DEFAULT 0",
        f"ALTER TABLE {RUNS_TABLE} ADD COLUMN worker VARCHAR",
    ]


def _to_version_6(dialect: str) -> list[str]:
    """Document versions by ``valid_from``, for the state at an early point.

    The primary key (model, key, valid_from) pages a read model in key order, but at a
    point where few of its documents exist that walk reads every later version to find
    none. This index holds the versions begun by a point as one short range (with
    ``valid_to`` and ``key``, so the documents alive there are found in the index alone).
    """
    return [
        f"CREATE INDEX ix_{DOCUMENTS_TABLE}_valid_from ON {DOCUMENTS_TABLE} "
        "(model, valid_from, valid_to, key)",
    ]


#: The events' checksum column and the schema that added it (NULL in older rows).
CHECKSUM_COLUMN: Final = "checksum"
CHECKSUM_SCHEMA: Final = 7


def _to_version_7(dialect: str) -> list[str]:
    """A checksum per event, so ``check`` finds damage inside rows, not only in the
    database's structure (as KurrentDB keeps one per chunk and PostgreSQL one per page).

    CRC32 of the row's stored fields (:func:`core.store.port.event_checksum`), written
    with the row. Rows stored before this version keep NULL: ``check`` counts them
    apart. Nullable without a default, the column costs no table rewrite.
    """
    return [f"ALTER TABLE events ADD COLUMN {CHECKSUM_COLUMN} BIGINT"]


#: The append-only history table while schema 8's migration builds it.
_DOCUMENTS_V8: Final = f"{DOCUMENTS_TABLE}_v8"


def _to_version_8(dialect: str) -> list[str]:
    """Append-only document history: a commit only inserts.

    A version row is (model, key, valid_from, doc), valid until the next row of its key
    (``valid_to`` is derived, never stored): closing a version no longer rewrites its
    row and two index entries, which took most of a rebuild's commit time. A delete is a
    tombstone, a row with a NULL ``doc``. Built from schema 7's rows in SQL: each version
    keeps (model, key, valid_from, doc), and a version that ended where no other version
    of its key begins (the key was deleted there) gets a tombstone at its ``valid_to``.
    The one secondary index holds the versions begun by a point (the state at an early
    point); the key column sorts by code point on PostgreSQL, as the pages do.
    """
    postgres = dialect != "sqlite"
    key = 'VARCHAR COLLATE "C"' if postgres else "VARCHAR"
    without_rowid = "" if postgres else " WITHOUT ROWID"
    old, new = DOCUMENTS_TABLE, _DOCUMENTS_V8
    steps = [
        f"CREATE TABLE {new} (model VARCHAR NOT NULL, key {key} NOT NULL, "
        "valid_from BIGINT NOT NULL, doc TEXT, "
        f"PRIMARY KEY (model, key, valid_from)){without_rowid}",
        f"INSERT INTO {new} (model, key, valid_from, doc) "
        f"SELECT model, key, valid_from, doc FROM {old} "
        f"UNION ALL SELECT model, key, valid_to, NULL FROM {old} AS ended "
        f"WHERE valid_to <> {CURRENT} AND NOT EXISTS (SELECT 1 FROM {old} AS later "
        "WHERE later.model = ended.model AND later.key = ended.key "
        "AND later.valid_from = ended.valid_to) "
        "ORDER BY 1, 2, 3",
        f"DROP TABLE {old}",
        f"ALTER TABLE {new} RENAME TO {old}",
    ]
    if postgres:
        steps.append(f"ALTER INDEX {new}_pkey RENAME TO {old}_pkey")
    # Versions begun by a point, for the state at an early point (the primary key adds
    # nothing: a version's key is enough to find its row). On an existing PostgreSQL
    # table, ``eventscope migrate`` builds it CONCURRENTLY after the migration commits.
    steps.append(f"CREATE INDEX ix_{old}_valid_from ON {old} (model, valid_from, key)")
    return steps


def _to_version_9(dialect: str) -> list[str]:
    """No index on ``recorded_at``: an append wrote it for one lookup.

    An event's time never decreases with its position (an append records
    ``max(now, the last event's time)``; an import keeps its times only where they do
    not go back), so the last position at or before a time is found by a binary search
    over the primary key (see :meth:`core.store.sql.reads.Reads.position_at`), and the
    index only cost every append a B-tree insert (and a page of the WAL).
    """
    return ["DROP INDEX IF EXISTS ix_events_recorded_at"]


#: from version -> the DDL (for a dialect) that takes a store to the next version.
MIGRATIONS: Final[dict[int, Callable[[str], list[str]]]] = {
    1: _to_version_2,
    2: _to_version_3,
    3: _to_version_4,
    4: _to_version_5,
    5: _to_version_6,
    6: _to_version_7,
    7: _to_version_8,
    8: _to_version_9,
}
