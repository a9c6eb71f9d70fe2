"""Creating a SQL store's schema and migrating older stores (the DDL is in core.store.schema)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, select, text

from core.errors import NewerSchema, NotAnEventStore, OlderSchema, StoreCorrupt
from core.store.schema import MIGRATIONS, SCHEMA_VERSION, meta, metadata
from core.store.sql.connections import Connections

__all__ = ["Migration", "migrate_schema", "prepare_schema"]

# Serialises schema creation and migration between processes on PostgreSQL.
_SCHEMA_LOCK_KEY = 7316240113
#: The ``eventscope_meta`` key listing the indexes a PostgreSQL migration still has to
#: build (CONCURRENTLY, outside its transaction); ``migrate`` again finishes them.
PENDING_INDEXES_KEY: Final = "pending_indexes"
_CREATE_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX (\w+) ON (\w+)", re.IGNORECASE)
_DROP_TABLE = re.compile(r"^DROP TABLE (\w+)", re.IGNORECASE)


@dataclass(slots=True)
class Migration:
    """What ``eventscope migrate`` did: the versions, and the indexes built concurrently."""

    from_version: int | None  # None: there was no store, it was created
    to_version: int
    concurrent_indexes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary JSON ``eventscope migrate`` prints."""
        return {
            "from_version": self.from_version,
            "to_version": self.to_version,
            "migrated": self.from_version != self.to_version,
            "concurrent_indexes": self.concurrent_indexes,
        }


def prepare_schema(conns: Connections) -> int:
    """Check the store's schema; create it (new store) or migrate it (an older SQLite
    store opened writable; an older PostgreSQL store is shared by other processes, and
    is refused instead: it is upgraded only by :func:`migrate_schema`).

    Returns:
        The schema version the store is read at: SCHEMA_VERSION, or an older one when
        an older store is open read-only (it is read as it is; searches scan).

    Raises:
        NotAnEventStore: a read-only open of an empty database, or a foreign database.
        NewerSchema: the store was written by a newer Eventscope.
        OlderSchema: an older PostgreSQL store opened writable.
        StoreCorrupt: the schema version is unreadable.
    """
    with conns.translate():
        with conns.engine.connect() as conn:
            found = _schema_version(conns, conn)
            conn.rollback()
        if found is None:
            if conns.read_only:
                raise NotAnEventStore(f"{conns.shown()} holds no Eventscope store yet")
            _create_schema(conns)
        elif found > SCHEMA_VERSION:
            raise NewerSchema(
                f"{conns.shown()} has store schema {found}, newer than this Eventscope "
                f"understands ({SCHEMA_VERSION}); upgrade Eventscope to open it"
            )
        elif found < SCHEMA_VERSION and not conns.read_only and not conns.sqlite:
            raise OlderSchema(
                f"{conns.shown()} has store schema {found}, older than this Eventscope's "
                f"({SCHEMA_VERSION}); a shared PostgreSQL store is never upgraded on open: "
                "run `eventscope --store URL migrate` (it can still be opened read-only)"
            )
        elif found < SCHEMA_VERSION and not conns.read_only:
            _migrate(conns)
        elif found < SCHEMA_VERSION:
            return found
    return SCHEMA_VERSION


def _schema_version(conns: Connections, conn: Connection) -> int | None:
    if conns.sqlite:
        names = {
            row[0]
            for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    else:
        names = {
            row[0]
            for row in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        }
    if conns.sqlite:
        _refuse_code(conns, conn)
    if meta.name not in names:
        if names - {"sqlite_sequence"}:
            raise NotAnEventStore(
                f"{conns.shown()} is a database, but not an Eventscope store "
                f"(it has tables {', '.join(sorted(names)[:5])})"
            )
        return None
    value = conn.execute(
        select(meta.c.value).where(meta.c.key == "schema_version")
    ).scalar_one_or_none()
    if value is None or not str(value).isdigit():
        raise StoreCorrupt(f"{conns.shown()} has no readable schema version")
    return int(value)


def _refuse_code(conns: Connections, conn: Connection) -> None:
    """Refuse a SQLite file holding triggers: Eventscope creates none, and one would run
    its SQL on this process's writes (a crafted store must not run code when opened or
    written to)."""
    triggers = [
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        )
    ]
    if triggers:
        raise StoreCorrupt(
            f"{conns.shown()} holds triggers Eventscope never creates "
            f"({', '.join(triggers[:3])}{', …' if len(triggers) > 3 else ''}): an altered "
            "or crafted store; it is not opened, so they cannot run"
        )


def _create_schema(conns: Connections) -> None:
    if conns.sqlite:
        # WAL is a property of the file: set it once, outside any transaction.
        raw = conns.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
        finally:
            raw.close()
    with conns.translate(), conns.engine.connect() as conn:
        conn.execution_options(eventscope_write=True)
        conn.begin()
        if not conns.sqlite:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})"))
        if _schema_version(conns, conn) is not None:
            return  # another process created it first
        metadata.create_all(conn)
        conn.execute(
            meta.insert(),
            [
                {"key": "schema_version", "value": "1"},
                {"key": "created_at", "value": str(conns.clock())},
            ],
        )
        _migrate_in(conns, conn, 1)
        conn.commit()


def _migrate(conns: Connections) -> None:
    """Take an older store to SCHEMA_VERSION in one transaction."""
    with conns.translate(), conns.engine.connect() as conn:
        conn.execution_options(eventscope_write=True)
        conn.begin()
        if not conns.sqlite:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})"))
            conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
        found = _schema_version(conns, conn)
        if found is not None and found < SCHEMA_VERSION:
            _migrate_in(conns, conn, found)
        conn.commit()


def _migrate_in(conns: Connections, conn: Connection, version: int) -> None:
    while version < SCHEMA_VERSION:
        for statement in MIGRATIONS[version](conns.engine.dialect.name):
            conn.exec_driver_sql(statement)
        version += 1
    conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))


def migrate_schema(conns: Connections) -> Migration:
    """Bring a store to SCHEMA_VERSION explicitly (``eventscope migrate``): create it if
    the database is empty, migrate it if older, finish a migration's pending indexes.

    SQLite migrates in one transaction. PostgreSQL takes the schema lock (not the events
    lock: writers on the current schema keep appending), runs the steps and the version
    change in one transaction, and builds the indexes on tables that already held rows
    afterwards with ``CREATE INDEX CONCURRENTLY``, which does not block writers; they are
    listed under ``pending_indexes`` until built, so an interrupted migration is finished
    by running it again (an index a failed concurrent build left invalid is rebuilt).

    Raises:
        NewerSchema: the store was written by a newer Eventscope.
        NotAnEventStore, StoreCorrupt: as for :func:`prepare_schema`.
    """
    with conns.translate():
        with conns.engine.connect() as conn:
            found = _schema_version(conns, conn)
            conn.rollback()
        if found is None:
            _create_schema(conns)
            return Migration(None, SCHEMA_VERSION)
        if found > SCHEMA_VERSION:
            raise NewerSchema(
                f"{conns.shown()} has store schema {found}, newer than this Eventscope "
                f"understands ({SCHEMA_VERSION}); upgrade Eventscope to migrate it"
            )
        if conns.sqlite:
            if found < SCHEMA_VERSION:
                _migrate(conns)
            return Migration(found, SCHEMA_VERSION)
        if found < SCHEMA_VERSION:
            _migrate_deferring_indexes(conns)
        built = _build_pending_indexes(conns)
        return Migration(found, SCHEMA_VERSION, built)


def _migrate_deferring_indexes(conns: Connections) -> None:
    """PostgreSQL: the steps in one transaction, except the indexes on tables that
    existed before it, which are left in ``pending_indexes``."""
    with conns.engine.connect() as conn:
        conn.execution_options(eventscope_write=True)
        conn.begin()
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})"))
        version = _schema_version(conns, conn)
        if version is None or version >= SCHEMA_VERSION:
            conn.rollback()
            return  # another process migrated it meanwhile
        existing = {
            row[0]
            for row in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        }
        pending: list[str] = _pending(conn)
        while version < SCHEMA_VERSION:
            for statement in MIGRATIONS[version](conns.engine.dialect.name):
                match = _CREATE_INDEX.match(statement)
                dropped = _DROP_TABLE.match(statement)
                if match and match.group(3) in existing:
                    pending.append(statement)
                    continue
                if dropped:  # a rebuilt table: its new indexes are the later steps'
                    pending = [s for s in pending if _indexed_table(s) != dropped.group(1)]
                conn.exec_driver_sql(statement)
            version += 1
        conn.execute(meta.delete().where(meta.c.key == PENDING_INDEXES_KEY))
        if pending:
            conn.execute(meta.insert().values(key=PENDING_INDEXES_KEY, value=json.dumps(pending)))
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))
        conn.commit()


def _indexed_table(statement: str) -> str | None:
    match = _CREATE_INDEX.match(statement)
    return match.group(3) if match else None


def _pending(conn: Connection) -> list[str]:
    value = conn.execute(
        select(meta.c.value).where(meta.c.key == PENDING_INDEXES_KEY)
    ).scalar_one_or_none()
    return list(json.loads(value)) if value else []


def _build_pending_indexes(conns: Connections) -> list[str]:
    """Build the indexes a PostgreSQL migration left pending, each CONCURRENTLY (outside
    any transaction), dropping one a failed earlier build left invalid."""
    built: list[str] = []
    with conns.engine.connect() as conn:
        pending = _pending(conn)
        conn.rollback()
    for statement in pending:
        match = _CREATE_INDEX.match(statement)
        assert match is not None  # only such statements are deferred
        name = match.group(2)
        concurrent = _CREATE_INDEX.sub(
            lambda m: (
                f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY IF NOT EXISTS "
                f"{m.group(2)} ON {m.group(3)}"
            ),
            statement,
            count=1,
        )
        with conns.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT", eventscope_write=True)
            invalid = conn.execute(
                text(
                    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = :name AND n.nspname = current_schema() "
                    "AND NOT i.indisvalid"
                ),
                {"name": name},
            ).first()
            if invalid is not None:
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            conn.exec_driver_sql(concurrent)
        with conns.engine.connect() as conn:
            conn.execution_options(eventscope_write=True)
            conn.begin()
            conn.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})"))
            left = [s for s in _pending(conn) if s != statement]
            conn.execute(meta.delete().where(meta.c.key == PENDING_INDEXES_KEY))
            if left:
                conn.execute(meta.insert().values(key=PENDING_INDEXES_KEY, value=json.dumps(left)))
            conn.commit()
        built.append(name)
    return built
