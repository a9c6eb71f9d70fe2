"""Benchmarks of the SQLite event store against raw sqlite3 and the eventsourcing library.

Run on demand (``make bench``), never collected by pytest::

    .venv/bin/python -m tests.benchmarks.run [--events N] [--export-events N] [--profile]
    .venv/bin/python -m tests.benchmarks.run --small-only [--small-rounds N] [--profile]

The second table (rows 6-10, :mod:`tests.benchmarks.small_ops`) times small reads and
appends against the eventsourcing library's SQLite recorder on a RAM disk, the two
sides alternating in rounds; ``--small-only`` runs only those rows and prints them
(writing a report only when ``--output`` is given).

Every figure in the printed table is measured in the same run, on the same
deterministic events (same types, payloads and event ids), with fresh database files
per contender and repetition. Throughputs are the best of ``--repeat`` timed
repetitions after a warm-up. The table is also written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import io
import math
import os
import platform
import pstats
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Final
from zlib import crc32

import orjson
import psutil
import sqlalchemy
from eventsourcing.persistence import JSONTranscoder, StoredEvent

from core.events import NO_STREAM, NewEvent, category_of
from core.store import SqlEventStore
from tests.benchmarks import small_ops
from tests.benchmarks.small_ops import eventsourcing_open, originator_id

ROOT: Final = Path(__file__).resolve().parents[2]
ES_VERSION: Final = package_version("eventsourcing")
CACHE_DIR: Final = Path(tempfile.gettempdir()) / "eventscope-bench"
BATCH_SIZE: Final = 1000
#: Bulk append against raw sqlite3 writing the same rows (issue 16: keep 0.85x).
BULK_RAW_TARGET: Final = 0.85
PAGE_SIZE: Final = 1000
SINGLE_STREAMS: Final = 100
EXPORT_STORE_FORMAT: Final = 1  # bump when the generated events change (the schema is hashed)
MIB: Final = 1024 * 1024

EVENT_TYPES: Final = (
    "OrderPlaced",
    "ItemAdded",
    "ItemRemoved",
    "OrderPaid",
    "OrderShipped",
    "OrderDelivered",
    "OrderCancelled",
    "RefundIssued",
)
WAREHOUSES: Final = ("fra-1", "fra-2", "ams-1", "dub-3", "waw-1")
WORDS: Final = (
    "gift",
    "wrap",
    "fragile",
    "leave",
    "at",
    "door",
    "call",
    "before",
    "delivery",
    "express",
    "weekend",
    "invoice",
    "company",
    "address",
)
# 2026-01-01T00:00:00Z: event ids and recorded_at of the export store start here.
BASE_MILLIS: Final = 1_767_225_600_000

# -- the events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchEvent:
    """One event as every contender receives it: type, JSON objects and a UUIDv7 id."""

    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    event_id: str


def generate_events(count: int, seed: int = 20260301) -> Iterator[BenchEvent]:
    """Deterministic events: ~200-byte ``data``, a correlation id in ``metadata``.

    Event ids are time-ordered UUIDv7 values (what ``NewEvent`` generates by default),
    derived from the index and the seed, so every run and contender sees the same ids.
    """
    rng = random.Random(seed)
    for index in range(count):
        millis = BASE_MILLIS + index // 4096
        event_id = uuid.UUID(
            int=(millis << 80)
            | (0x7 << 76)
            | ((index % 4096) << 64)
            | 0x8000_0000_0000_0000
            | rng.getrandbits(62)
        )
        note = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 9)))
        data = {
            "order_id": f"ord-{rng.randrange(10**7):07d}",
            "customer_id": f"cust-{rng.randrange(10**6):06d}",
            "sku": f"SKU-{rng.randrange(10**5):05d}-{rng.choice('SMLX')}",
            "quantity": rng.randint(1, 9),
            "unit_price": round(rng.uniform(1, 500), 2),
            "currency": "EUR",
            "warehouse": rng.choice(WAREHOUSES),
            "gift": rng.random() < 0.1,
            "note": note,
        }
        metadata = {
            "correlation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "user": f"user-{rng.randrange(100)}",
        }
        yield BenchEvent(EVENT_TYPES[index % len(EVENT_TYPES)], data, metadata, str(event_id))


Batch = tuple[str, list[BenchEvent]]


def plan_batches(events: Sequence[BenchEvent], size: int = BATCH_SIZE) -> list[Batch]:
    """Split events into appends of ``size`` events, each to one stream.

    Batch ``b`` goes to stream ``order-{b % S}`` with S = a quarter of the batches, so
    most appends extend a stream that already exists (its version must be read).
    """
    count = math.ceil(len(events) / size)
    streams = max(1, count // 4)
    return [
        (f"order-{number % streams}", list(events[number * size : (number + 1) * size]))
        for number in range(count)
    ]


def plan_singles(events: Sequence[BenchEvent]) -> list[Batch]:
    """One event per append, round-robin over ``SINGLE_STREAMS`` streams."""
    return [(f"order-{index % SINGLE_STREAMS}", [event]) for index, event in enumerate(events)]


def to_new_events(batches: Sequence[Batch]) -> list[tuple[str, list[NewEvent]]]:
    """The same batches as Eventscope's ``NewEvent`` values (built before timing)."""
    return [
        (stream_id, [NewEvent(e.type, e.data, e.metadata, e.event_id) for e in events])
        for stream_id, events in batches
    ]


# -- contender: Eventscope ---------------------------------------------------------------------


def eventscope_append(path: Path, batches: Sequence[tuple[str, list[NewEvent]]]) -> float:
    """Append every batch with ``append_to_stream`` and an exact expected version."""
    store = SqlEventStore.open(path)
    try:
        versions: dict[str, int] = {}
        start = time.perf_counter()
        for stream_id, events in batches:
            result = store.append_to_stream(stream_id, events, versions.get(stream_id, NO_STREAM))
            versions[stream_id] = result.version
        return time.perf_counter() - start
    finally:
        store.close()


def eventscope_read(path: Path) -> tuple[float, int]:
    """Iterate ``read_all()``: RecordedEvent objects with data and metadata decoded."""
    store = SqlEventStore.open(path, read_only=True)
    try:
        count = 0
        start = time.perf_counter()
        for _event in store.read_all():
            count += 1
        return time.perf_counter() - start, count
    finally:
        store.close()


# -- contender: raw sqlite3 on the same schema -------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreSchema:
    """The DDL and seed rows SQLAlchemy emitted for a fresh Eventscope store file."""

    statements: tuple[str, ...]
    meta_rows: tuple[tuple[str, str], ...]

    @classmethod
    def from_store(cls, folder: Path) -> StoreSchema:
        """Create a store with ``SqlEventStore.open`` and read its ``sqlite_master``."""
        path = folder / "schema-template.db"
        SqlEventStore.open(path).close()
        with sqlite3.connect(path) as conn:
            rows = list(
                conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
                )
            )
            virtual = [name for name, sql in rows if sql.startswith("CREATE VIRTUAL TABLE")]
            # A virtual table creates its own shadow tables ("<name>_data", ...).
            # SQLite makes its own tables (sqlite_sequence, for AUTOINCREMENT).
            statements = tuple(
                sql
                for name, sql in rows
                if not name.startswith("sqlite_")
                and not any(name.startswith(f"{v}_") for v in virtual)
            )
            meta_rows = tuple(conn.execute("SELECT key, value FROM eventscope_meta"))
        conn.close()
        return cls(statements, meta_rows)


_INSERT_EVENT: Final = (
    "INSERT INTO events (position, stream_id, version, type, category, data, metadata, "
    "event_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT_CHECKED: Final = (
    "INSERT INTO events (position, stream_id, version, type, category, data, metadata, "
    "event_id, recorded_at, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_STREAM: Final = (
    "INSERT INTO streams (stream_id, category, version, first_position, last_position, "
    "first_recorded_at, last_recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
    "last_position = excluded.last_position, last_recorded_at = excluded.last_recorded_at"
)
_SELECT_PAGE: Final = (
    "SELECT position, stream_id, version, type, data, metadata, event_id, recorded_at "
    "FROM events WHERE position > ? ORDER BY position LIMIT ?"
)


# What SqlEventStore.update_index runs per batch, here run inside each append instead.
_INDEX_WORDS: Final = (
    "INSERT INTO event_words (rowid, data) SELECT position, data FROM events "
    "WHERE position > ? AND position <= ?"
)
_INDEX_CORRELATIONS: Final = (
    "INSERT OR IGNORE INTO event_correlations (correlation_id, position) "
    "SELECT json_extract(metadata, '$.correlation_id'), position FROM events "
    "WHERE position > ? AND position <= ? AND json_type(metadata, '$.correlation_id') = 'text'"
)


class WrongVersion(Exception):
    """The raw appender's expected-version check failed."""


class RawSqliteStore:
    """A hand-written append on the same schema and pragmas as Eventscope's SQLite store.

    Each append is what a correct one must do, in one ``BEGIN IMMEDIATE`` transaction:
    read the stream's version and check it, read the head position and time, insert
    the rows with ``executemany``, upsert the ``streams`` row, commit.
    """

    def __init__(
        self, path: Path, schema: StoreSchema | None = None, *, index_in_append: bool = False
    ) -> None:
        self.index_in_append = index_in_append
        new = schema is not None and not path.exists()
        self.conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        if new and schema is not None:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("BEGIN IMMEDIATE")
            for statement in schema.statements:
                self.conn.execute(statement)
            self.conn.executemany("INSERT INTO eventscope_meta VALUES (?, ?)", schema.meta_rows)
            self.conn.execute("COMMIT")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA cache_size=-32000")

    def append(self, stream_id: str, events: Sequence[BenchEvent], expected: int | None) -> int:
        """Append events to one stream if its last version is ``expected`` (None: no stream)."""
        conn = self.conn
        dumps = orjson.dumps
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT version FROM streams WHERE stream_id = ?", (stream_id,)
            ).fetchone()
            current = None if row is None else row[0]
            if current != expected:
                raise WrongVersion(stream_id, expected, current)
            head = conn.execute(
                "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"
            ).fetchone()
            position, last_at = (0, 0) if head is None else head
            recorded_at = max(time.time_ns() // 1000, last_at)
            category = category_of(stream_id)
            first_version = 0 if current is None else current + 1
            rows = []
            for i, event in enumerate(events):
                data = dumps(event.data).decode()
                metadata = dumps(event.metadata).decode()
                # The same row as Eventscope stores, its checksum included: CRC32 of the
                # stored fields joined by U+001F (schema 7's definition).
                checksum = crc32(
                    f"{position + 1 + i}\x1f{stream_id}\x1f{first_version + i}\x1f{event.type}"
                    f"\x1f{data}\x1f{metadata}\x1f{event.event_id}\x1f{recorded_at}".encode()
                )
                rows.append(
                    (
                        position + 1 + i,
                        stream_id,
                        first_version + i,
                        event.type,
                        category,
                        data,
                        metadata,
                        event.event_id,
                        recorded_at,
                        checksum,
                    )
                )
            conn.executemany(_INSERT_EVENT_CHECKED, rows)
            if self.index_in_append:  # the design not taken: the search index filled here
                conn.execute(_INDEX_WORDS, (position, position + len(events)))
                conn.execute(_INDEX_CORRELATIONS, (position, position + len(events)))
            last_version = first_version + len(events) - 1
            conn.execute(
                _UPSERT_STREAM,
                (
                    stream_id,
                    category,
                    last_version,
                    position + 1,
                    position + len(events),
                    recorded_at,
                    recorded_at,
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return last_version

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def raw_append(
    path: Path, batches: Sequence[Batch], schema: StoreSchema, *, index_in_append: bool = False
) -> float:
    """Append every batch with the hand-written append."""
    store = RawSqliteStore(path, schema, index_in_append=index_in_append)
    try:
        versions: dict[str, int] = {}
        start = time.perf_counter()
        for stream_id, events in batches:
            versions[stream_id] = store.append(stream_id, events, versions.get(stream_id))
        return time.perf_counter() - start
    finally:
        store.close()


def raw_read(path: Path) -> tuple[float, int]:
    """Keyset pages of 1,000 rows, data and metadata decoded with orjson, one tuple per row."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA cache_size=-32000")
    loads = orjson.loads
    try:
        count = 0
        cursor = 0
        start = time.perf_counter()
        while True:
            rows = conn.execute(_SELECT_PAGE, (cursor, PAGE_SIZE)).fetchall()
            for position, stream_id, version, kind, data, meta, event_id, at in rows:
                _decoded = (
                    position,
                    stream_id,
                    version,
                    kind,
                    loads(data),
                    loads(meta),
                    event_id,
                    at,
                )
                count += 1
            if len(rows) < PAGE_SIZE:
                break
            cursor = rows[-1][0]
        return time.perf_counter() - start, count
    finally:
        conn.close()


# -- contender: the eventsourcing library ------------------------------------------------------


def eventsourcing_synchronous(path: Path) -> int:
    """The ``synchronous`` pragma the library's connections run with (2 is FULL)."""
    datastore, _recorder = eventsourcing_open(path)
    try:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous")
            return int(cursor.fetchone()[0])
    finally:
        datastore.close()


def eventsourcing_append(path: Path, batches: Sequence[Batch]) -> float:
    """``insert_events`` per batch; payloads encoded with orjson inside the timing."""
    datastore, recorder = eventsourcing_open(path)
    ids = {stream_id: originator_id(stream_id) for stream_id, _ in batches}
    dumps = orjson.dumps
    try:
        versions: dict[str, int] = {}
        start = time.perf_counter()
        for stream_id, events in batches:
            first = versions.get(stream_id, -1) + 1
            owner = ids[stream_id]
            recorder.insert_events(
                [
                    StoredEvent(
                        originator_id=owner,
                        originator_version=first + i,
                        topic=event.type,
                        state=dumps({"data": event.data, "metadata": event.metadata}),
                    )
                    for i, event in enumerate(events)
                ]
            )
            versions[stream_id] = first + len(events) - 1
        return time.perf_counter() - start
    finally:
        datastore.close()


def eventsourcing_read(path: Path, decode: Callable[[bytes], Any]) -> tuple[float, int]:
    """``select_notifications`` pages of 1,000, each state decoded with ``decode``."""
    datastore, recorder = eventsourcing_open(path)
    try:
        count = 0
        next_id = 1
        start = time.perf_counter()
        while True:
            notifications = recorder.select_notifications(next_id, PAGE_SIZE)
            for notification in notifications:
                _state = decode(notification.state)
                count += 1
            if len(notifications) < PAGE_SIZE:
                break
            next_id = notifications[-1].id + 1
        return time.perf_counter() - start, count
    finally:
        datastore.close()


# -- export of a large store in a subprocess ---------------------------------------------------


def export_store(count: int, schema: StoreSchema) -> Path:
    """A store of ``count`` events under the cache folder, built once and reused.

    The file name carries a hash of the schema, so a changed schema builds a new store.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # sorted: SQLAlchemy creates the indexes of a table in no fixed order
    digest = hashlib.sha256("\n".join(sorted(schema.statements)).encode()).hexdigest()[:10]
    path = CACHE_DIR / f"export-{count}-v{EXPORT_STORE_FORMAT}-{digest}.db"
    marker = path.with_name(path.name + ".ok")
    if path.exists() and marker.exists():
        return path
    for stale in CACHE_DIR.glob(f"export-{count}-*"):  # older formats and schemas, leftovers
        stale.unlink()
    building = path.with_name(path.name + ".building")
    for stale in CACHE_DIR.glob(f"{building.name}*"):
        stale.unlink()
    print(f"building a {count:,}-event store in {path} (cached for later runs)…", file=sys.stderr)
    SqlEventStore.open(building).close()  # the schema, exactly as Eventscope creates it
    conn = sqlite3.connect(building, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-256000")
    conn.execute("BEGIN IMMEDIATE")
    spans: dict[str, list[int]] = {}
    batch_count = math.ceil(count / BATCH_SIZE)
    streams = max(1, batch_count // 4)
    rows: list[tuple[Any, ...]] = []
    dumps = orjson.dumps
    for index, event in enumerate(generate_events(count)):
        stream_id = f"order-{(index // BATCH_SIZE) % streams}"
        position = index + 1
        recorded_at = BASE_MILLIS * 1000 + index
        span = spans.get(stream_id)
        if span is None:
            span = spans[stream_id] = [-1, position, position, recorded_at, recorded_at]
        span[0] += 1
        span[2] = position
        span[4] = recorded_at
        rows.append(
            (
                position,
                stream_id,
                span[0],
                event.type,
                category_of(stream_id),
                dumps(event.data).decode(),
                dumps(event.metadata).decode(),
                event.event_id,
                recorded_at,
            )
        )
        if len(rows) >= 20_000:
            conn.executemany(_INSERT_EVENT, rows)
            rows.clear()
    conn.executemany(_INSERT_EVENT, rows)
    conn.executemany(
        "INSERT INTO streams VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(s, category_of(s), v, fp, lp, fa, la) for s, (v, fp, lp, fa, la) in spans.items()],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = conn.execute("SELECT count(*), max(position) FROM events").fetchone()
    conn.close()
    if tuple(stored) != (count, count):
        raise RuntimeError(f"the export store holds {stored}, not {count} events")
    for suffix in ("-wal", "-shm"):
        Path(str(building) + suffix).unlink(missing_ok=True)
    building.rename(path)
    marker.write_text(f"{count}\n")
    return path


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A finished subprocess: wall time and peak resident set."""

    seconds: float
    peak_rss_bytes: int


# Linux keeps a process's peak RSS across fork and exec, so a child started from this
# (large) process would report at least our own peak. A bare interpreter (~8 MiB) starts
# the command instead and reports RUSAGE_CHILDREN for that one child.
_LAUNCHER: Final = """
import os, resource, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
status = os.waitpid(pid, 0)[1]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as result:
    result.write(f"{os.waitstatus_to_exitcode(status)} {seconds} {peak}")
"""


def run_child(command: Sequence[str], output: Path) -> ChildRun:
    """Run a command with stdout to ``output``; measure its own peak RSS and wall time."""
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryFile() as err:
        result_file = Path(scratch) / "result"
        with output.open("wb") as out:
            subprocess.run(
                [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(result_file), *command],
                stdout=out,
                stderr=err,
                cwd=ROOT,
                check=True,
            )
        code, seconds, peak_kib = result_file.read_text().split()
        if int(code) != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise RuntimeError(f"{' '.join(command)} exited {code}: {message}")
    return ChildRun(float(seconds), int(peak_kib) * 1024)  # ru_maxrss is in KiB on Linux


def warm_page_cache(path: Path) -> None:
    """Read the file once so the export measures the program, not the disk."""
    with path.open("rb") as handle:
        while handle.read(16 * MIB):
            pass


def eventscope_command() -> list[str]:
    """The installed ``eventscope`` console script next to this interpreter."""
    script = Path(sys.executable).parent / "eventscope"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "console.cli"]


# -- measuring and reporting -------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One line of the table."""

    number: str
    name: str
    eventscope: str
    raw: str
    eventsourcing: str
    vs_raw: str
    vs_es: str
    target: str
    result: str
    missed: bool = False


@dataclass(slots=True)
class Report:
    """Everything printed and written: the rows, the small operations' rows (their own
    table), and notes."""

    rows: list[Row] = field(default_factory=list)
    small: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def per_second(count: int, seconds: float) -> str:
    """A throughput as ``123,456 ev/s``."""
    return f"{count / seconds:,.0f} ev/s"


def verdict(vs_raw: float, raw_target: float, vs_lib: float | None = None) -> str:
    """PASS, or MISS naming the baseline(s) whose target (raw, eventsourcing ≥ 3x) failed."""
    failed = [name for name, ok in (("raw", vs_raw >= raw_target),) if not ok]
    if vs_lib is not None and vs_lib < 3:
        failed.append("eventsourcing")
    return "PASS" if not failed else f"MISS (vs {' and '.join(failed)})"


def render(report: Report) -> str:
    """The markdown table."""
    header = (
        f"| # | benchmark | Eventscope | raw sqlite3 | eventsourcing {ES_VERSION} | Eventscope/raw "
        "| Eventscope/eventsourcing | target | result |"
    )
    lines = [header, "|---|---|--:|--:|--:|--:|--:|---|---|"]
    for row in report.rows:
        lines.append(
            f"| {row.number} | {row.name} | {row.eventscope} | {row.raw} | {row.eventsourcing} "
            f"| {row.vs_raw} | {row.vs_es} | {row.target} | {row.result} |"
        )
    return "\n".join(lines)


def cost_verdict(ratio: float, target: float) -> str:
    """PASS when a cost ratio (time per call, Eventscope over eventsourcing) is at most
    ``target``, else MISS."""
    return "PASS" if ratio <= target else "MISS (vs eventsourcing)"


def render_small(report: Report) -> str:
    """The small operations' table: costs per call, and their ratio (lower is better)."""
    lines = [
        f"| # | small operation (RAM disk) | Eventscope | eventsourcing {ES_VERSION} "
        "| cost ratio Eventscope/eventsourcing (lower is better; per-round range) "
        "| target | result |",
        "|---|---|--:|--:|--:|---|---|",
    ]
    for row in report.small:
        lines.append(
            f"| {row.number} | {row.name} | {row.eventscope} | {row.eventsourcing} "
            f"| {row.vs_es} | {row.target} | {row.result} |"
        )
    return "\n".join(lines)


def render_all(report: Report) -> str:
    """Both tables, the small operations' under a heading of their own."""
    parts = [render(report)] if report.rows else []
    if report.small:
        heading = "## Small operations, against the eventsourcing recorder"
        parts.append(f"{heading}\n\n{render_small(report)}")
    return "\n\n".join(parts)


#: The small operations' rows: number, wording, and the highest cost ratio that passes.
SMALL_ROWS: Final = {
    small_ops.READ_1: ("6", "read 1 event after a random position", 1.5),
    small_ops.READ_10: ("7", "read 10 events after a random position", 1.5),
    small_ops.LAST_OF_STREAM: ("8", "read the last event of a random stream", 1.5),
    small_ops.INSERT: ("9", "one insert: 1 event to an existing stream, exact version", 1.1),
    small_ops.CONCURRENT: ("10", "concurrent appends", 1.0),
}


def small_plan(args: argparse.Namespace) -> small_ops.SmallOpsPlan:
    """The small operations' plan from the command line."""
    return small_ops.SmallOpsPlan(
        events=args.small_events,
        calls=args.small_calls,
        inserts=args.small_inserts,
        threads=args.small_threads,
        thread_appends=args.small_thread_appends,
        rounds=args.small_rounds,
    )


def bench_small(
    report: Report, plan: small_ops.SmallOpsPlan, events: Sequence[BenchEvent]
) -> small_ops.SmallOpsResult:
    """Rows 6-10: small reads and appends, each side on a fresh RAM-disk store per round."""
    result = small_ops.measure(plan, events, lambda message: print(message, file=sys.stderr))
    for operation, figure in result.figures.items():
        number, name, target = SMALL_ROWS[operation]
        ratios = f"{figure.ratio:.2f}x ({min(figure.ratios):.2f}–{max(figure.ratios):.2f})"
        if operation == small_ops.CONCURRENT:
            total = plan.threads * plan.thread_appends
            name = (
                f"concurrent appends: {plan.threads} threads × {plan.thread_appends:,} single "
                f"events to their own streams ({total:,} events), one shared store; wall µs "
                "per event (events/s)"
            )
            ours = f"{figure.eventscope:,.1f} µs ({1e6 / figure.eventscope:,.0f} ev/s)"
            theirs = f"{figure.eventsourcing:,.1f} µs ({1e6 / figure.eventsourcing:,.0f} ev/s)"
            wording = f"≤ {target:.1f}x (≥ 1.0x the peer's events/s)"
        else:
            ours, theirs = f"{figure.eventscope:,.1f} µs", f"{figure.eventsourcing:,.1f} µs"
            name = f"{name}: µs per call"
            wording = f"≤ {target:.1f}x"
        report.small.append(
            Row(
                number,
                name,
                ours,
                "—",
                theirs,
                "—",
                ratios,
                wording,
                cost_verdict(figure.ratio, target),
                missed=figure.ratio > target,
            )
        )
    return result


def check_store(path: Path, expected_events: int) -> None:
    """Fail loudly if a benchmark wrote a store that Eventscope finds inconsistent."""
    store = SqlEventStore.open(path, read_only=True)
    try:
        report = store.check()
    finally:
        store.close()
    if not report.ok or report.events != expected_events:
        raise RuntimeError(f"{path}: {report.to_dict()}")
    # Every row carries its checksum, verified: both sides wrote the same rows.
    if report.details.get("checksums", {}).get("unverified", 0):
        raise RuntimeError(f"{path}: rows without a checksum: {report.to_dict()}")


def bench_bulk(
    report: Report, folder: Path, events: Sequence[BenchEvent], schema: StoreSchema, repeat: int
) -> tuple[Path, Path, Path]:
    """Row 1; returns the last store file of each contender, for the read benchmark."""
    batches = plan_batches(events)
    new_batches = to_new_events(batches)
    warm = plan_batches(events[: 5 * BATCH_SIZE])
    eventscope_append(folder / "warm-es.db", to_new_events(warm))
    raw_append(folder / "warm-raw.db", warm, schema)
    eventsourcing_append(folder / "warm-lib.db", warm)
    times: dict[str, list[float]] = {"eventscope": [], "raw": [], "lib": [], "raw+index": []}
    index_times: list[float] = []
    for rep in range(repeat):
        times["eventscope"].append(eventscope_append(folder / f"bulk-es-{rep}.db", new_batches))
        times["raw"].append(raw_append(folder / f"bulk-raw-{rep}.db", batches, schema))
        times["lib"].append(eventsourcing_append(folder / f"bulk-lib-{rep}.db", batches))
        times["raw+index"].append(
            raw_append(folder / f"bulk-raw-ix-{rep}.db", batches, schema, index_in_append=True)
        )
        index_times.append(index_catch_up(folder / f"bulk-es-{rep}.db"))
    last = repeat - 1
    check_store(folder / f"bulk-es-{last}.db", len(events))
    check_store(folder / f"bulk-raw-{last}.db", len(events))
    n = len(events)
    es, raw, lib = (n / min(times[k]) for k in ("eventscope", "raw", "lib"))
    report.rows.append(
        Row(
            "1",
            f"bulk append, {len(batches)} batches of {BATCH_SIZE:,} ({n:,} events)",
            f"{es:,.0f} ev/s",
            f"{raw:,.0f} ev/s",
            f"{lib:,.0f} ev/s",
            f"{es / raw:.2f}x",
            f"{es / lib:.2f}x",
            f"≥ {BULK_RAW_TARGET}x raw, ≥ 3x eventsourcing",
            verdict(es / raw, BULK_RAW_TARGET, es / lib),
            missed=es / raw < BULK_RAW_TARGET or es / lib < 3,
        )
    )
    with_index = n / min(times["raw+index"])
    report.rows.append(
        Row(
            "1b",
            "same, raw sqlite3 also filling the search index in each append transaction "
            "(the design not taken: Eventscope indexes after appends)",
            "—",
            f"{with_index:,.0f} ev/s",
            "—",
            f"{with_index / raw:.2f}x (vs raw)",
            "—",
            "info",
            "info",
        )
    )
    report.rows.append(
        Row(
            "1c",
            f"search index catch-up (`update_index`) over the {n:,} appended events",
            f"{n / min(index_times):,.0f} ev/s",
            "—",
            "—",
            "—",
            "—",
            "info",
            "info",
        )
    )
    return (
        folder / f"bulk-es-{last}.db",
        folder / f"bulk-raw-{last}.db",
        folder / f"bulk-lib-{last}.db",
    )


def index_catch_up(path: Path) -> float:
    """Seconds for ``update_index`` to index a store's whole log."""
    store = SqlEventStore.open(path)
    try:
        start = time.perf_counter()
        store.update_index()
        return time.perf_counter() - start
    finally:
        store.close()


def bench_singles(
    report: Report, folder: Path, events: Sequence[BenchEvent], schema: StoreSchema, repeat: int
) -> None:
    """Row 2: one event per durable transaction."""
    singles = plan_singles(events)
    new_singles = to_new_events(singles)
    eventscope_append(folder / "warm-single-es.db", new_singles[:100])
    raw_append(folder / "warm-single-raw.db", singles[:100], schema)
    es_times: list[float] = []
    raw_times: list[float] = []
    for rep in range(repeat):
        es_times.append(eventscope_append(folder / f"single-es-{rep}.db", new_singles))
        raw_times.append(raw_append(folder / f"single-raw-{rep}.db", singles, schema))
    n = len(singles)
    es, raw = n / min(es_times), n / min(raw_times)
    report.rows.append(
        Row(
            "2",
            f"single-event durable appends ({n:,}, synchronous=FULL)",
            f"{es:,.0f} ev/s",
            f"{raw:,.0f} ev/s",
            "—",
            f"{es / raw:.2f}x",
            "—",
            "≥ 0.8x raw",
            verdict(es / raw, 0.8),
            missed=es / raw < 0.8,
        )
    )


def bench_reads(report: Report, eventscope_file: Path, lib_file: Path, repeat: int) -> None:
    """Rows 3 and 3b: read everything back with payloads decoded."""
    transcoder = JSONTranscoder()
    readers: dict[str, Callable[[], tuple[float, int]]] = {
        "eventscope": lambda: eventscope_read(eventscope_file),
        # raw reads the very file Eventscope wrote: same pages, same layout
        "raw": lambda: raw_read(eventscope_file),
        "lib": lambda: eventsourcing_read(lib_file, orjson.loads),
        "lib-json": lambda: eventsourcing_read(lib_file, transcoder.decode),
    }
    counts: dict[str, int] = {}
    for name, reader in readers.items():  # warm-up: code paths and the page cache
        counts[name] = reader()[1]
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"the readers saw different numbers of events: {counts}")
    n = counts["eventscope"]
    best: dict[str, float] = dict.fromkeys(readers, math.inf)
    for _rep in range(repeat):
        for name, reader in readers.items():
            best[name] = min(best[name], reader()[0])
    es, raw, lib, lib_json = (n / best[k] for k in ("eventscope", "raw", "lib", "lib-json"))
    report.rows.append(
        Row(
            "3",
            f"read all {n:,} events, payloads decoded (eventsourcing: orjson)",
            f"{es:,.0f} ev/s",
            f"{raw:,.0f} ev/s",
            f"{lib:,.0f} ev/s",
            f"{es / raw:.2f}x",
            f"{es / lib:.2f}x",
            "≥ 0.7x raw, ≥ 3x eventsourcing",
            verdict(es / raw, 0.7, es / lib),
            missed=es / raw < 0.7 or es / lib < 3,
        )
    )
    report.rows.append(
        Row(
            "3b",
            "same, eventsourcing decoding with its own JSONTranscoder (what an app gets)",
            f"{es:,.0f} ev/s",
            "—",
            f"{lib_json:,.0f} ev/s",
            "—",
            f"{es / lib_json:.2f}x",
            "info (row 3 is the gate)",
            "info",
        )
    )


def bench_export(report: Report, folder: Path, count: int, schema: StoreSchema) -> Path:
    """Row 4: ``eventscope export`` of a large store in a subprocess; peak RSS and speed.

    Two runs of each program, interleaved: the highest peak RSS and the best time count.
    """
    path = export_store(count, schema)
    command = [*eventscope_command(), "--store", str(path), "export"]
    baseline = [sys.executable, str(Path(__file__).with_name("raw_export.py")), str(path)]
    ours, theirs = folder / "sample-eventscope.jsonl", folder / "sample-raw.jsonl"
    run_child([*command, "--limit", "2000"], ours)  # also the warm-up: imports, .pyc
    run_child([*baseline, "2000"], theirs)
    if ours.read_bytes() != theirs.read_bytes() or ours.read_bytes().count(b"\n") != 2000:
        raise RuntimeError("the export baseline does not print what eventscope export prints")
    warm_page_cache(path)
    runs: dict[str, list[ChildRun]] = {"eventscope": [], "raw": []}
    for _rep in range(2):
        runs["eventscope"].append(run_child(command, Path(os.devnull)))
        runs["raw"].append(run_child(baseline, Path(os.devnull)))
    eventscope = ChildRun(
        min(run.seconds for run in runs["eventscope"]),
        max(run.peak_rss_bytes for run in runs["eventscope"]),
    )
    raw = ChildRun(
        min(run.seconds for run in runs["raw"]), max(run.peak_rss_bytes for run in runs["raw"])
    )
    rss_mib = eventscope.peak_rss_bytes / MIB
    report.rows.append(
        Row(
            "4",
            f"`eventscope export` of {count:,} events: peak RSS (subprocess)",
            f"{rss_mib:,.1f} MiB",
            f"{raw.peak_rss_bytes / MIB:,.1f} MiB",
            "—",
            f"{eventscope.peak_rss_bytes / raw.peak_rss_bytes:.2f}x (info)",
            "—",
            "< 150 MiB",
            "PASS" if rss_mib < 150 else "MISS",
            missed=rss_mib >= 150,
        )
    )
    report.rows.append(
        Row(
            "4b",
            f"`eventscope export` of {count:,} events: throughput (wall, incl. start-up)",
            per_second(count, eventscope.seconds),
            per_second(count, raw.seconds),
            "—",
            f"{raw.seconds / eventscope.seconds:.2f}x",
            "—",
            "info",
            "info",
        )
    )
    return path


# -- profiling the misses ----------------------------------------------------------------------


def profile(title: str, work: Callable[[], object], top: int = 25) -> str:
    """Profile ``work``: cProfile's top functions by own time, then pyinstrument's call tree.

    cProfile counts every call (and inflates small, frequent ones); pyinstrument, when
    installed, samples and shows where the wall time goes. Each profiles its own run.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][2],
        reverse=True,
    )
    out = io.StringIO()
    out.write(f"\n### profile: {title}\n\ncProfile, {total:.2f} s in all:\n\n")
    out.write("| own % | cum % | calls | function |\n|--:|--:|--:|---|\n")
    for (filename, line, name), (_cc, calls, own, cum, _callers) in entries[:top]:
        where = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        out.write(
            f"| {100 * own / total:.1f} | {100 * cum / total:.1f} | {calls:,} "
            f"| `{name}` {where}:{line} |\n"
        )
    try:
        from pyinstrument import Profiler
    except ImportError:
        return out.getvalue()
    sampler = Profiler(interval=0.0005)
    sampler.start()
    work()
    sampler.stop()
    tree = sampler.output_text(unicode=False, color=False, show_all=False)
    out.write(f"\npyinstrument (sampling):\n\n```\n{tree.strip()}\n```\n")
    return out.getvalue()


def profile_misses(
    report: Report,
    folder: Path,
    events: Sequence[BenchEvent],
    single_events: Sequence[BenchEvent],
    read_file: Path,
) -> str:
    """Profiles of Eventscope's side of every row that missed its target."""
    missed = {row.number for row in report.rows if row.missed}
    parts: list[str] = []
    runs = iter(range(1_000))
    if "1" in missed:
        batches = to_new_events(plan_batches(events))
        parts.append(
            profile(
                "bulk append (Eventscope)",
                lambda: eventscope_append(folder / f"profile-bulk-{next(runs)}.db", batches),
            )
        )
    if "2" in missed:
        singles = to_new_events(plan_singles(single_events))
        parts.append(
            profile(
                "single-event appends (Eventscope)",
                lambda: eventscope_append(folder / f"profile-single-{next(runs)}.db", singles),
            )
        )
    if "3" in missed:
        parts.append(profile("read all (Eventscope)", lambda: eventscope_read(read_file)))
    if "4" in missed:
        parts.append("\n(row 4 missed: profile the export's memory with tracemalloc)\n")
    return "".join(parts)


def profile_small_misses(
    report: Report, plan: small_ops.SmallOpsPlan, events: Sequence[BenchEvent]
) -> str:
    """Profiles of Eventscope's small read (when row 6, 7 or 8 missed) and insert (row 9
    or 10), each on a fresh store on the RAM disk."""
    missed = {row.number for row in report.small if row.missed}
    wanted = [bool(missed & {"6", "7", "8"}), bool(missed & {"9", "10"})]
    parts: list[str] = []
    for want, (title, work) in zip(wanted, small_ops.profile_work(plan, events), strict=True):
        if want:
            parts.append(profile(title, work))
    return "".join(parts)


# -- main --------------------------------------------------------------------------------------


def source_state() -> str:
    """The commit measured, and whether core/ differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "core"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit}{' with uncommitted changes in core/' if dirty else ''}"


def environment(busy_before: float) -> list[str]:
    """Versions, machine facts and the measured source for the report header."""
    lines = [
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- source: commit {source_state()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}, "
        f"eventsourcing {ES_VERSION}, orjson {orjson.__version__}",
        f"- machine: {platform.machine()}, {os.cpu_count()} logical cores, {platform.system()} "
        f"{platform.release()}; other processes used {busy_before:.0f}% of the CPUs in the "
        "second before the run",
    ]
    if busy_before > 20:
        lines.append(
            "- **warning**: the machine was busy when the run started; rerun on a quiet "
            "machine before trusting small differences"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.run", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events for rows 1 and 3")
    parser.add_argument("--single-appends", type=int, default=2_000, help="appends for row 2")
    parser.add_argument("--export-events", type=int, default=1_000_000, help="events for row 4")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    parser.add_argument("--profile", action="store_true", help="profile rows that miss")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown report (default docs/benchmarks.md; with --small-only, none)",
    )
    small = parser.add_argument_group("small operations (rows 6-10)")
    small.add_argument(
        "--small-only", action="store_true", help="run only rows 6-10 and print them"
    )
    small.add_argument("--small-rounds", type=int, default=5, help="rounds (median is kept)")
    small.add_argument("--small-events", type=int, default=10_000, help="events in the store")
    small.add_argument("--small-calls", type=int, default=2_000, help="timed calls per read")
    small.add_argument("--small-inserts", type=int, default=2_000, help="timed single inserts")
    small.add_argument("--small-threads", type=int, default=4, help="concurrent appenders")
    small.add_argument(
        "--small-thread-appends", type=int, default=500, help="single appends per thread"
    )
    args = parser.parse_args(argv)
    if (
        args.small_rounds < 1
        or args.small_events < 100
        or min(args.small_calls, args.small_inserts, args.small_thread_appends) < 10
        or args.small_threads < 1
    ):
        parser.error(
            "--small-rounds >= 1, --small-events >= 100, --small-threads >= 1, "
            "--small-calls, --small-inserts, --small-thread-appends >= 10"
        )
    if args.output is None and not args.small_only:
        args.output = ROOT / "docs" / "benchmarks.md"
    if args.events < BATCH_SIZE or args.single_appends < 100 or args.export_events < 1000:
        parser.error("--events >= 1000, --single-appends >= 100, --export-events >= 1000")
    if args.repeat < 1:
        parser.error("--repeat >= 1")
    return args


def bench_demo(report: Report, folder: Path, orders: int) -> None:
    """Row 5: ``eventscope demo`` (the orders plugin's history, decided by its handlers)."""
    store = folder / "demo.db"
    command = [*eventscope_command(), "--store", str(store), "demo", "--orders", str(orders)]
    run = run_child(command, folder / "demo-summary.json")
    summary = orjson.loads((folder / "demo-summary.json").read_bytes())
    report.rows.append(
        Row(
            "5",
            f"`eventscope demo --orders {orders:,}` ({summary['appended']:,} events; wall, "
            "incl. start-up)",
            f"{run.seconds:.1f} s",
            "—",
            "—",
            "—",
            "—",
            "< 10 s",
            "PASS" if run.seconds < 10 else "MISS",
            missed=run.seconds >= 10,
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run every benchmark (or only the small operations), print the tables, write the
    report."""
    args = parse_args(argv)
    busy_before = psutil.cpu_percent(interval=1.0)  # we are idle: this is everyone else
    started = time.perf_counter()
    plan = small_plan(args)
    count = plan.total_events if args.small_only else max(args.events, plan.total_events)
    generated = list(generate_events(count))
    report = Report()
    if args.small_only:
        small = bench_small(report, plan, generated)
        table = render_all(report)
        print(table)
        report.notes = small_notes(plan, small)
        report.notes.append(f"- whole run: {time.perf_counter() - started:.0f} s.")
        profiles = profile_small_misses(report, plan, generated) if args.profile else ""
        if profiles:
            print(profiles)
        if args.output is not None:
            write_markdown(
                args.output,
                title="Benchmarks: small operations",
                module="tests.benchmarks.run",
                target="bench-small",
                scope="every figure in one run",
                header=environment(busy_before),
                table=table,
                notes=report.notes,
                profiles=profiles,
            )
        return
    events = generated[: args.events]
    singles = events[: args.single_appends]
    folder = Path(tempfile.mkdtemp(prefix="eventscope-bench-"))
    try:
        schema = StoreSchema.from_store(folder)
        lib_sync = eventsourcing_synchronous(folder / "sync-probe.db")
        es_file, _raw_file, lib_file = bench_bulk(report, folder, events, schema, args.repeat)
        bench_singles(report, folder, singles, schema, args.repeat)
        bench_reads(report, es_file, lib_file, args.repeat)
        export_path = bench_export(report, folder, args.export_events, schema)
        bench_demo(report, folder, 10_000)
        small = bench_small(report, plan, generated)
        table = render_all(report)
        print(table)
        report.notes = notes(args, events, lib_sync, export_path)
        report.notes += small_notes(plan, small)
        report.notes.append(f"- whole run: {time.perf_counter() - started:.0f} s.")
        profiles = profile_misses(report, folder, events, singles, es_file) if args.profile else ""
        if args.profile:
            profiles += profile_small_misses(report, plan, generated)
        if profiles:
            print(profiles)
        write_markdown(
            args.output,
            title="Benchmarks",
            module="tests.benchmarks.run",
            target="bench",
            scope="every figure in one run",
            header=environment(busy_before),
            table=table,
            notes=report.notes,
            profiles=profiles,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def notes(
    args: argparse.Namespace, events: Sequence[BenchEvent], lib_sync: int, export_path: Path
) -> list[str]:
    """How each row was measured, for the report."""
    sizes = sorted(len(orjson.dumps(e.data)) for e in events[:1000])
    streams = max(1, len(plan_batches(events)) // 4)
    return [
        f"- {len(events):,} events of {len(EVENT_TYPES)} types, `data` ~{sizes[500]} bytes "
        "of JSON (median), `metadata` with a correlation id; UUIDv7 event ids; batch b goes "
        f"to stream `order-{{b % {streams}}}`, so most appends extend an existing stream "
        "(exact expected version). Row 2 appends the first "
        f"{args.single_appends:,} of them round-robin over {SINGLE_STREAMS} streams.",
        f"- best of {args.repeat} interleaved repetitions after a warm-up; fresh database "
        "files per contender and repetition; store open/close outside the timing; WAL and "
        "synchronous=FULL everywhere (eventsourcing's connections report "
        f"synchronous={lib_sync}; it sets WAL itself and begins with a deferred BEGIN).",
        "- raw sqlite3: the DDL SQLAlchemy emitted (copied from `sqlite_master`), same "
        "pragmas, one `BEGIN IMMEDIATE` per append: read and check the stream version, read "
        "the head position/time, `executemany` the rows, upsert `streams`, commit; payloads "
        "encoded with orjson and each row's checksum (CRC32 of its stored fields, schema "
        "7's definition) computed inside the timing: the same rows Eventscope writes. The "
        "stores both write pass `store.check()` with every checksum verified.",
        "- eventsourcing: `SQLiteApplicationRecorder(SQLiteDatastore(path))`, "
        "`insert_events` of `StoredEvent`s (state = orjson of data and metadata, encoded "
        "inside the timing); its table has one primary key and no other index.",
        "- reads: Eventscope and raw read the same file (the last Eventscope bulk store); "
        "raw yields tuples with the time as an integer, Eventscope yields `RecordedEvent` "
        "with an aware datetime; eventsourcing reads its own file with "
        "`select_notifications` pages of 1,000 and decodes each state with orjson (row 3) "
        "or with its default `JSONTranscoder` (row 3b).",
        f"- export: {export_path} (built once, reused), page cache warmed, two runs each "
        "(highest peak RSS, best time); the first 2,000 lines of both programs are checked "
        "to be identical; peak RSS is `RUSAGE_CHILDREN` of a bare launcher process (~8 MiB) "
        "that spawns the program with stdout to /dev/null; the raw column is "
        "`tests/benchmarks/raw_export.py` (sqlite3 + orjson, the same lines).",
    ]


def small_notes(plan: small_ops.SmallOpsPlan, result: small_ops.SmallOpsResult) -> list[str]:
    """How rows 6-10 were measured, for the report."""
    sync = result.synchronous
    return [
        f"- rows 6-10: {plan.rounds} rounds; each round opens both sides on fresh stores in "
        f"fresh folders under {small_ops.RAM_DISK} (a RAM disk; removed after the round) and "
        "fills them alike, then times each read and the inserts in blocks of "
        f"{small_ops.BLOCK_CALLS} calls, the sides taking turns block by block (who goes "
        "first alternates by block and by round), so a burst of load from another process "
        "falls on both; a side's round figure is the median of its blocks. The concurrent "
        f"appends run in {small_ops.CONCURRENT_PHASES} phases per round (each thread's "
        "appends split evenly), the sides taking turns phase by phase; the round figure "
        "is the median phase. A figure in the table "
        "is the median of the side's round figures, the ratio is Eventscope's median over "
        "eventsourcing's, and the range in brackets is the lowest and highest per-round "
        f"ratio. Whole small-operation run: {result.seconds:.0f} s.",
        "- rows 6-10, the sides: Eventscope is `SqlEventStore.open(path)` with its defaults "
        "(WAL, `BEGIN IMMEDIATE`, synchronous="
        f"{sync['eventscope']}); eventsourcing is `SQLiteApplicationRecorder(SQLiteDatastore"
        f"(path))` with the library's defaults (synchronous={sync['eventsourcing']}, its "
        "connection pool of 5). All ratios in this table are cost ratios (µs per call, or "
        "wall µs per event): lower is better.",
        f"- rows 6-10, the store: {plan.events:,} of the same generated events in "
        f"{plan.streams:,} streams, appended in two passes of "
        f"{small_ops.EVENTS_PER_STREAM // 2} events per stream (versions from 0 on both "
        "sides, so positions and versions agree). Each read is timed over "
        f"{plan.calls:,} calls after {small_ops.WARM_UP_CALLS} untimed ones, on random "
        "positions/streams (the same for both sides); payloads are decoded on both sides "
        "(eventsourcing: orjson of the stored state).",
        "- row 6/7: Eventscope `list(store.read(EventFilter(from_position=p + 1), limit=n))`; "
        "eventsourcing `recorder.select_notifications(start=p + 1, limit=n)`. Row 8: "
        "Eventscope `next(store.read_stream(s, backwards=True, limit=1))`; eventsourcing "
        "`recorder.select_events(originator_id, desc=True, limit=1)`. The first "
        f"{small_ops.CHECKED_CALLS} results of each read are compared across the sides "
        "(position, stream, version, type) and every timed read must return its n events.",
        f"- row 9: {plan.inserts:,} single-event appends to random existing streams, each at "
        "the stream's next version: Eventscope `append_to_stream(s, [event], version)` "
        "(the `NewEvent`s made before the timing), eventsourcing `insert_events"
        "([StoredEvent(...)])` with the next `originator_version` (the state encoded with "
        "orjson in the call).",
        f"- row 10: {plan.threads} threads released together by a barrier, each appending "
        f"{plan.thread_appends:,} single events round-robin to its own "
        f"{small_ops.STREAMS_PER_THREAD} new streams through one shared store (Eventscope) "
        "or recorder (eventsourcing); the wall time from the release until every thread "
        "finished, per event. After each round both stores must hold "
        f"{plan.total_events:,} events (`count(*)`), the first events after the fill must "
        "read the same on both sides, and the Eventscope store must pass `check()`.",
    ]


def write_markdown(
    output: Path,
    *,
    title: str,
    module: str,
    target: str,
    scope: str,
    header: Sequence[str],
    table: str,
    notes: Sequence[str],
    extra: str = "",
    profiles: str = "",
) -> None:
    """Overwrite a benchmark's markdown report: what ran it (``module`` through ``make
    target``) and where, the table, how each figure was measured, then the ``extra``
    sections and the profiles of the rows that missed."""
    command = " ".join([f".venv/bin/python -m {module}", *sys.argv[1:]])
    text = "\n".join(
        [
            f"# {title}",
            "",
            f"Measured by `{module.replace('.', '/')}.py` (`make {target}`); {scope}.",
            "",
            *header,
            f"- command: `{command}`",
            "",
            table,
            "",
            "## How it was measured",
            "",
            *notes,
            "",
        ]
    )
    text += extra
    if profiles:
        text += "\n## Profiles of the rows that missed\n" + profiles
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"\nwritten to {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
