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
    "CORRELATIONS_TABLE",
    "INDEXED_POSITION_KEY",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "WORDS_TABLE",
    "events",
    "meta",
    "metadata",
    "streams",
]

#: Bumped whenever the tables change; a store with a higher number is refused. Version 1
#: is ``metadata`` below; every later version is a step in ``MIGRATIONS``, run on new
#: stores too, so a migrated store and a new one are the same.
SCHEMA_VERSION: Final = 3

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
    Index("ix_events_recorded_at", "recorded_at", "position"),
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


#: from version -> the DDL (for a dialect) that takes a store to the next version.
MIGRATIONS: Final[dict[int, Callable[[str], list[str]]]] = {1: _to_version_2, 2: _to_version_3}
