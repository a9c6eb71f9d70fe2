"""Creating a SQL store's schema and migrating older stores (the DDL is in core.store.schema)."""

from __future__ import annotations

from sqlalchemy import Connection, select, text

from core.errors import NewerSchema, NotAnEventStore, StoreCorrupt
from core.store.schema import MIGRATIONS, SCHEMA_VERSION, meta, metadata
from core.store.sql.connections import Connections

__all__ = ["prepare_schema"]

# Serialises schema creation and migration between processes on PostgreSQL.
_SCHEMA_LOCK_KEY = 7316240113


def prepare_schema(conns: Connections) -> int:
    """Check the store's schema; create it (new store) or migrate it (older, writable).

    Returns:
        The schema version the store is read at: SCHEMA_VERSION, or an older one when
        an older store is open read-only (it is read as it is; searches scan).

    Raises:
        NotAnEventStore: a read-only open of an empty database, or a foreign database.
        NewerSchema: the store was written by a newer Eventscope.
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
