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

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "events", "meta", "metadata", "streams"]

#: Bumped whenever the tables change; a store with a higher number is refused. Version 1
#: is ``metadata`` below; every later version is a step in ``MIGRATIONS``, run on new
#: stores too, so a migrated store and a new one are the same.
SCHEMA_VERSION: Final = 2

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
    lookups need an index maintained outside the append transaction.
    """
    return ["CREATE INDEX ix_streams_last_position ON streams (last_position)"]


#: from version -> the DDL (for a dialect) that takes a store to the next version.
MIGRATIONS: Final[dict[int, Callable[[str], list[str]]]] = {1: _to_version_2}
