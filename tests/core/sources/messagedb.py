"""A real Message DB for tests: its npm package fetched once, installed by its own script.

``@eventide/message-db`` ships the SQL and ``database/install.sh`` (psql, driven by
``DATABASE_NAME`` and the ``PG*`` variables). Tests install it into a database of
their own on the server of ``EVENTSCOPE_TEST_PG_URL`` and write with its own
``message_store.write_message`` function.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

#: The package version the tests run against (pinned: the cache holds exactly it).
MESSAGE_DB_VERSION: Final = "1.3.1"
CACHE: Final = Path.home() / ".cache" / "eventscope-tests" / "message-db" / MESSAGE_DB_VERSION


def server_url() -> URL:
    """The test server's URL, or skip."""
    location = os.environ.get("EVENTSCOPE_TEST_PG_URL")
    if not location:
        pytest.skip("EVENTSCOPE_TEST_PG_URL is unset: Message DB needs a PostgreSQL server")
    return make_url(location)


def package_dir() -> Path:
    """The unpacked ``@eventide/message-db`` package (fetched with npm the first time)."""
    install = CACHE / "package" / "database" / "install.sh"
    if install.is_file():
        return CACHE / "package"
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot fetch @eventide/message-db")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as scratch:
        try:
            packed = subprocess.run(
                [npm, "pack", f"@eventide/message-db@{MESSAGE_DB_VERSION}", "--silent"],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            reason = getattr(error, "stderr", "") or str(error)
            pytest.skip(f"npm could not fetch @eventide/message-db: {reason.strip()[-300:]}")
        tarball = Path(scratch) / packed.stdout.strip().splitlines()[-1]
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarball) as archive:
            archive.extractall(unpacked, filter="data")
        try:
            unpacked.rename(CACHE)  # atomic: a concurrent session may have won the race
        except OSError:
            if not install.is_file():
                raise
    return CACHE / "package"


def _pg_environment(server: URL, database: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_NAME": database, "PGHOST": server.host or "127.0.0.1"}
    env["PGPORT"] = str(server.port or 5432)
    env["PGUSER"] = server.username or "postgres"
    if server.password:
        env["PGPASSWORD"] = str(server.password)
    env.pop("PGDATABASE", None)
    env.pop("PGOPTIONS", None)
    return env


def connect(server: URL, database: str, **options: Any) -> psycopg.Connection[Any]:
    """A psycopg connection to ``database`` on the test server; Message DB's functions
    name their tables unqualified, so ``message_store`` leads the search path."""
    return psycopg.connect(
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        user=server.username or "postgres",
        password=server.password or None,
        dbname=database,
        options="-c search_path=message_store,public",
        **options,
    )


@contextmanager
def message_db_database() -> Iterator[tuple[URL, str]]:
    """A fresh database with Message DB installed by its own script, dropped afterwards.

    Yields:
        (the server's URL, the database's name).
    """
    server = server_url()
    package = package_dir()
    name = f"eventscope_mdb_{uuid.uuid4().hex[:12]}"
    # The database is created here rather than by the script (CREATE_DATABASE=off), with
    # a natural-language collation when the server has ICU: byte-wise stream order must
    # then come from the source's SQL, not from a C collation.
    with connect(server, server.database or "postgres", autocommit=True) as admin:
        icu = admin.execute("SELECT 1 FROM pg_collation WHERE collname = 'en-US-x-icu'").fetchone()
        locale = " LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" if icu else ""
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0{locale}')
    environment = {**_pg_environment(server, name), "CREATE_DATABASE": "off"}
    installed = subprocess.run(
        ["bash", str(package / "database" / "install.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        if installed.returncode != 0:
            raise RuntimeError(f"Message DB's install.sh failed:\n{installed.stderr}")
        yield server, name
    finally:
        with connect(server, server.database or "postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def source_url(server: URL, database: str) -> str:
    """The ``messagedb+postgresql://`` URL of ``database`` on the test server."""
    url = server.set(drivername="messagedb+postgresql", database=database)
    return url.render_as_string(hide_password=False)


def write_message(
    conn: psycopg.Connection[Any],
    stream_name: str,
    message_type: str,
    data: str | None,
    metadata: str | None = None,
    expected_version: int | None = None,
    message_id: str | None = None,
) -> tuple[str, int]:
    """Write one message with Message DB's own function; returns (its id, its position
    in the stream)."""
    message_id = message_id or str(uuid.uuid4())
    row = conn.execute(
        "SELECT message_store.write_message(%s, %s, %s, %s::jsonb, %s::jsonb, %s)",
        (message_id, stream_name, message_type, data, metadata, expected_version),
    ).fetchone()
    assert row is not None
    return message_id, int(row[0])
