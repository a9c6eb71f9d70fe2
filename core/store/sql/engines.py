"""Opening SQL stores: locations, SQLAlchemy engines, and driver errors as core.errors."""

from __future__ import annotations

import collections
import re
import shutil
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from core.errors import (
    NotAnEventStore,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreReadOnly,
    StoreUnreachable,
    one_line,
)
from core.jobs import current_job
from core.store.port import words_match

__all__ = [
    "display_location",
    "hold_sqlite_file",
    "inspect_sqlite_file",
    "is_url",
    "postgres_engine",
    "release_sqlite_file",
    "sqlite_connector",
    "sqlite_engine",
    "sqlite_path",
    "translated",
]

#: SQLite runs the progress handler (a cancel check) every this many VM instructions.
_SQLITE_CANCEL_CHECK_STEPS: Final = 50_000
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"


def is_url(location: str) -> bool:
    """Whether a location is a database URL rather than a file path."""
    return "://" in location


#: ``scheme://user:PASSWORD@``: what a URL that does not parse still must not show.
_USERINFO_PASSWORD: Final = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def display_location(location: str) -> str:
    """A store location fit to show or log: a URL's password becomes ``***``."""
    if not is_url(location):
        return location
    try:
        return make_url(location).render_as_string(hide_password=True)
    except (
        sa_exc.ArgumentError,
        ValueError,
    ):  # malformed: still hide whatever sits where a password would
        return _USERINFO_PASSWORD.sub(r"\1***@", location)


def sqlite_path(location: str) -> Path:
    """The absolute file path of a SQLite location (a path or a ``sqlite:///`` URL)."""
    if location.startswith("sqlite:///"):
        location = urllib.parse.unquote(location[len("sqlite:///") :].split("?", 1)[0])
    elif location.startswith("sqlite:"):
        raise StoreNotFound(f"{location}: only file-backed SQLite stores are supported")
    return Path(location).expanduser().absolute()


# POSIX record locks belong to a process, and closing ANY descriptor of a file drops all
# of the process's locks on it. SQLite counts its locks per file per process and takes
# the real lock once, so reading a store's header while this process has it open would
# silently release SQLite's locks: another process's last close could then delete the
# WAL under this process's connections ("disk I/O error", appends written to a deleted
# WAL). So a file this process already has open is not read again: it was inspected
# when it was first opened.
_held_files: collections.Counter[str] = collections.Counter()
_held_files_lock = threading.Lock()


def hold_sqlite_file(path: Path) -> None:
    """Note that this process opens connections on ``path`` (until released)."""
    with _held_files_lock:
        _held_files[str(path)] += 1


def release_sqlite_file(path: Path) -> None:
    """Note that one store of this process on ``path`` closed its connections."""
    with _held_files_lock:
        _held_files[str(path)] -= 1
        if _held_files[str(path)] <= 0:
            del _held_files[str(path)]


#: Free space under which an I/O error of SQLite counts as a full disk: less than a WAL
#: frame of a big page plus the 32 KiB a -shm file grows by.
_FULL_BELOW_BYTES: Final = 1 << 20
#: A WAL file's header; a longer one holds frames (pages) SQLite reads before the file's.
_WAL_HEADER_BYTES: Final = 32


def inspect_sqlite_file(path: Path, read_only: bool) -> None:
    """Refuse a missing (when read-only), foreign or truncated file before SQLite opens it
    (its header is read only when this process does not have it open already)."""
    if not path.exists():
        if read_only:
            raise StoreNotFound(f"{path}: no such store")
        if not path.parent.is_dir():
            raise StoreNotFound(f"{path}: the folder {path.parent} does not exist")
        return
    if path.is_dir():
        raise StoreCorrupt(f"{path}: is a folder, not a store file")
    size = path.stat().st_size
    if size == 0:
        if read_only:
            raise NotAnEventStore(f"{path}: the file is empty")
        return
    with _held_files_lock:
        if _held_files[str(path)] > 0:
            return  # open here already: reading it would drop SQLite's locks (see above)
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as error:
        raise StoreCorrupt(f"{path}: cannot be read ({error.strerror})") from None
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise StoreCorrupt(f"{path}: not a SQLite database (the file header is wrong)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    change_counter = header[24:28]
    page_count = int.from_bytes(header[28:32], "big")
    # Pages past the file's end may be in the WAL: a checkpoint writes page 1 (the header,
    # counting the grown file) before the pages that grow the file, so one killed in
    # between, or out of disk, leaves a short file whose WAL still holds every page, and
    # SQLite finishes the checkpoint later. Only SQLite can judge that file.
    wal = path.with_name(f"{path.name}-wal")
    in_wal = header[18] == 2 and wal.is_file() and wal.stat().st_size > _WAL_HEADER_BYTES
    if (
        header[92:96] == change_counter
        and page_count
        and size < page_count * page_size
        and not in_wal
    ):
        raise StoreCorrupt(
            f"{path}: truncated (the file has {size:,} bytes, its header says "
            f"{page_count * page_size:,})"
        )


def sqlite_connector(
    path: Path, read_only: bool, busy_timeout: float, interrupted: threading.Event
) -> Callable[[], sqlite3.Connection]:
    """What opens a connection to a SQLite store file, set up as every store connection
    is; its statements stop once ``interrupted`` is set.

    Args:
        path: the store file.
        read_only: open in SQLite's read-only mode (nothing can write the file).
        busy_timeout: seconds a writer waits for another writer's lock.
        interrupted: the store's interrupt flag, checked by each connection's
            progress handler together with the current job's cancel flag.
    """
    if read_only:
        target = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    else:
        target = str(path)

    def cancelled() -> int:
        # The module's function is looked up per call, so tests can count the checks.
        return 1 if interrupted.is_set() else _sqlite_job_cancelled()

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            target,
            uri=read_only,
            timeout=busy_timeout,
            isolation_level=None,  # BEGIN is ours (see the "begin" listener)
            check_same_thread=False,
        )
        if not read_only:
            connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA cache_size=-8000")
        # A store file is data, not code: functions with side effects may not run from
        # its schema (a crafted view, trigger or index calling them is refused).
        connection.execute("PRAGMA trusted_schema=OFF")
        connection.create_function("eventscope_words", 2, _sqlite_words_match, deterministic=True)
        connection.set_progress_handler(cancelled, _SQLITE_CANCEL_CHECK_STEPS)
        return connection

    return connect


def sqlite_engine(connect: Callable[[], sqlite3.Connection]) -> Engine:
    """An engine whose connections ``connect`` opens (see :func:`sqlite_connector`)."""
    engine = create_engine(
        "sqlite://", creator=connect, poolclass=QueuePool, pool_size=4, max_overflow=8
    )

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("eventscope_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _sqlite_words_match(data: str | None, words: str) -> bool:
    """SQL ``eventscope_words(data, 'w1 w2')``: the payload search of a scan."""
    return data is not None and words_match(data, words.split(" "))


def _sqlite_job_cancelled() -> int:
    """SQLite's progress handler: non-zero interrupts the running statement."""
    job = current_job()
    return 1 if job is not None and job.cancelled else 0


def postgres_engine(location: str, read_only: bool) -> Engine:
    """An engine on a PostgreSQL URL (``postgresql://`` means psycopg 3).

    Raises:
        StoreNotFound: the location is not a URL of a supported database.
        StoreUnreachable: the driver cannot be loaded or the URL is malformed.
    """
    try:
        url = make_url(location)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        shown = display_location(location)
        raise StoreNotFound(f"{shown!r} is neither a file path nor a database URL") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if not url.drivername.startswith("postgresql"):
        raise StoreNotFound(f"{url.drivername}: unsupported database (use SQLite or PostgreSQL)")
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if read_only:
        options = url.query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        connect_args["options"] = f"{options} -c default_transaction_read_only=on".strip()
    try:
        return create_engine(url, connect_args=connect_args, pool_size=4, max_overflow=8)
    except (sa_exc.ArgumentError, ImportError) as error:
        message = str(error).replace(str(url.password or "\x00"), "***")
        raise StoreUnreachable(f"{display_location(location)}: {message}") from None


def translated(error: BaseException, shown: str, sqlite_file: Path | None = None) -> StoreError:
    """A driver error as one of core.errors, with a one-line message.

    Args:
        error: what the driver (or SQLAlchemy) raised.
        shown: the store's location fit to show.
        sqlite_file: a SQLite store's file: an I/O error while its disk is full is
            StoreFull (SQLite reports a -shm or -wal file it cannot create or grow so).
    """
    original = getattr(error, "orig", error)
    text = str(original).strip()
    # The first line (PostgreSQL adds DETAIL lines), with what a damaged row holds escaped.
    message = one_line(text.split("\n", 1)[0]) if text else repr(original)
    lowered = message.lower()
    if "disk i/o error" in lowered and sqlite_file is not None and _disk_full(sqlite_file):
        lowered = "database or disk is full"
    if (
        "database is locked" in lowered
        or "database table is locked" in lowered
        or "lock timeout" in lowered  # PostgreSQL's lock_timeout on the events lock
    ):
        return StoreBusy(f"{shown}: another writer held the store too long ({message})")
    if (
        "database or disk is full" in lowered  # SQLITE_FULL
        or "no space left on device" in lowered  # ENOSPC, as PostgreSQL reports it
        or getattr(original, "sqlstate", None) == "53100"  # PostgreSQL's disk_full
    ):
        return StoreFull(f"{shown}: the disk is full; free some space and try again ({message})")
    if "readonly database" in lowered or "read-only transaction" in lowered:
        return StoreReadOnly(f"{shown}: the store is read-only ({message})")
    if "file is not a database" in lowered or "malformed" in lowered or "disk i/o error" in lowered:
        return StoreCorrupt(f"{shown}: {message}")
    if "could not decode to utf-8" in lowered:  # a damaged text value in a row
        return StoreCorrupt(
            f"{shown}: a stored event is damaged ({message}); "
            "`eventscope check` lists every damaged event"
        )
    if "unable to open database file" in lowered:
        return StoreNotFound(f"{shown}: {message}")
    if isinstance(error, sa_exc.OperationalError) and not isinstance(original, sqlite3.Error):
        if "does not exist" in lowered:
            return StoreNotFound(f"{shown}: {message}")
        if "connection" in lowered or "could not" in lowered or "timeout" in lowered:
            return StoreUnreachable(f"{shown}: {message}")
    if isinstance(error, sa_exc.IntegrityError):
        return StoreError(f"{shown}: constraint violated: {message}")
    return StoreError(f"{shown}: {message}")


def _disk_full(sqlite_file: Path) -> bool:
    """Whether the filesystem holding ``sqlite_file`` has (next to) no space left."""
    try:
        return shutil.disk_usage(sqlite_file.parent).free < _FULL_BELOW_BYTES
    except OSError:
        return False
