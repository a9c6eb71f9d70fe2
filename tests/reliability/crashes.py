"""Study: kill -9 a writer process at random points, then open, check and verify the store.

A writer (:mod:`tests.reliability.writer`, a separate Python process) appends batches
with exact expected versions and imports batches, acknowledging each one in an fsync-ed
file after the call returned. After a random delay the study sends it SIGKILL, then
opens the store (timed: the recovery open), runs the integrity check, reads the events
written since the last round and verifies that every batch is whole (all of its events,
at consecutive positions) or absent, that every acknowledged batch is there, and that a
new writer can append at once (no lock left behind).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.errors import EventscopeError
from core.events import NewEvent
from core.store import SqlEventStore
from tests.reliability.writer import import_lines

__all__ = ["TITLE", "CrashFigures", "percentile", "postgres_rounds", "run", "sqlite_rounds"]

TITLE: Final = "Crashes: kill -9 of a writer at random points"
ROOT: Final = Path(__file__).resolve().parents[2]
#: Rounds on SQLite and on PostgreSQL: (full, make test).
SQLITE_ROUNDS: Final = (200, 20)
POSTGRES_ROUNDS: Final = (50, 3)
#: Every this many rounds, the process killed is ``eventscope import FILE`` instead.
CLI_IMPORT_EVERY: Final = 5
#: Seconds a next writer may wait for the lock a killed one held.
BUSY_TIMEOUT: Final = 10.0


@dataclass
class CrashFigures:
    """What the rounds on one backend measured."""

    backend: str
    rounds: int = 0
    failures: list[str] = field(default_factory=list)
    read_only_open_ms: list[float] = field(default_factory=list)
    open_ms: list[float] = field(default_factory=list)
    next_append_ms: list[float] = field(default_factory=list)
    session_end_ms: list[float] = field(default_factory=list)  # PostgreSQL only
    acknowledged: int = 0  # batches acknowledged by the writer
    verified: int = 0  # acknowledged batches found whole in the store
    acknowledged_events: int = 0
    batches_seen: int = 0  # whole batches in the store (acknowledged or not)
    in_flight: dict[str, list[int]] = field(default_factory=dict)  # kind: [killed, committed]
    events: int = 0


@dataclass
class _State:
    head: int = 0
    seen: set[str] = field(default_factory=set)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of values; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _p50_p99(values: list[float]) -> str:
    return f"{percentile(values, 0.5):.1f} / {percentile(values, 0.99):.1f} ms"


def sqlite_rounds(path: Path, rounds: int, seed: int, max_delay: float = 0.6) -> CrashFigures:
    """Kill a writer ``rounds`` times on one SQLite file, verifying after each kill."""
    figures = CrashFigures("SQLite")
    _kill_rounds(str(path), path.parent, rounds, seed, max_delay, ("0.2", "100", "2000"), figures)
    return figures


def postgres_rounds(
    url: str, workdir: Path, rounds: int, seed: int, max_delay: float = 1.5
) -> CrashFigures:
    """Kill a writer ``rounds`` times on one PostgreSQL schema; most kills land in the
    middle of a large import (one transaction holding the events lock)."""
    figures = CrashFigures("PostgreSQL")
    _kill_rounds(url, workdir, rounds, seed, max_delay, ("0.6", "2000", "20000"), figures)
    return figures


def _kill_rounds(
    location: str,
    workdir: Path,
    rounds: int,
    seed: int,
    max_delay: float,
    import_args: tuple[str, str, str],
    figures: CrashFigures,
) -> None:
    rng = random.Random(seed)
    state = _State()
    SqlEventStore.open(location).close()
    for number in range(1, rounds + 1):
        ack_path = workdir / f"ack-{figures.backend}-{number}.jsonl"
        session = None if figures.backend == "SQLite" else f"eventscope-crash-{number}"
        target = location if session is None else _named(location, session)
        if number % CLI_IMPORT_EVERY == 0:
            size = rng.randint(int(import_args[1]), int(import_args[2]))
            problem = _kill_cli_import(target, ack_path, f"r{number}", size, rng, max_delay)
        else:
            problem = _kill_writer(target, ack_path, f"r{number}", rng, max_delay, import_args)
        if session is not None and not problem:
            problem = _wait_for_session_end(location, session, figures)
        if problem:
            figures.failures.append(f"round {number}: {problem}")
            continue
        for failure in _verify(location, ack_path, f"r{number}", state, figures):
            figures.failures.append(f"round {number}: {failure}")
        figures.rounds += 1
    figures.events = state.head
    completed = subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", location, "check"],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    if completed.returncode != 0:
        figures.failures.append(f"eventscope check exited {completed.returncode}")


def _named(url: str, session: str) -> str:
    """The URL with an ``application_name``, to find the session in pg_stat_activity."""
    named = make_url(url).update_query_dict({"application_name": session})
    return named.render_as_string(hide_password=False)


def _wait_for_session_end(url: str, session: str, figures: CrashFigures) -> str | None:
    """Wait until the killed client's server session has ended (a COMMIT it had sent
    still completes after the kill); a problem if it outlives the busy timeout."""
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            while time.perf_counter() - started < BUSY_TIMEOUT:
                alive = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :s"),
                    {"s": session},
                ).scalar_one()
                conn.rollback()
                if not alive:
                    figures.session_end_ms.append((time.perf_counter() - started) * 1000)
                    return None
                time.sleep(0.005)
    finally:
        engine.dispose()
    return f"the killed client's session outlived {BUSY_TIMEOUT:.0f} s"


def _kill_writer(
    location: str,
    ack_path: Path,
    prefix: str,
    rng: random.Random,
    max_delay: float,
    import_args: tuple[str, str, str],
) -> str | None:
    """Start a writer, let it write for a random time, SIGKILL it; a problem or None."""
    command = [sys.executable, "-m", "tests.reliability.writer", location, str(ack_path)]
    command += [prefix, str(rng.randrange(2**31)), *import_args]
    writer = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        if writer.stdout.readline().strip() != "ready":
            writer.wait(timeout=60)
            assert writer.stderr is not None
            last = (writer.stderr.read().strip().splitlines() or ["(nothing)"])[-1]
            return f"the writer did not start: {last}"
        time.sleep(rng.uniform(0.0, max_delay))
        if writer.poll() is not None:
            assert writer.stderr is not None
            last = (writer.stderr.read().strip().splitlines() or ["(nothing)"])[-1]
            return f"the writer died before the kill: {last}"
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=60)
        return None
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        for stream in (writer.stdout, writer.stderr):
            if stream is not None:
                stream.close()


def _kill_cli_import(
    location: str, ack_path: Path, prefix: str, size: int, rng: random.Random, max_delay: float
) -> str | None:
    """Start ``eventscope import`` on a file of one batch, SIGKILL it after a random time
    (across its start, its import and its indexing); acknowledge it if it exited 0 first."""
    batch = f"{prefix}-cli"
    lines = ack_path.with_suffix(".import.jsonl")
    lines.write_bytes(b"".join(line + b"\n" for line in import_lines(batch, size)))
    with ack_path.open("ab") as ack:
        ack.write(orjson.dumps({"start": batch, "kind": "cli import"}) + b"\n")
    command = [sys.executable, "-m", "console.cli", "--store", location, "import", str(lines)]
    importer = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(rng.uniform(0.5, 1.5 + max_delay))  # about 1 s goes to the start
    if importer.poll() is None:
        os.kill(importer.pid, signal.SIGKILL)
    out, err = importer.communicate(timeout=60)
    if importer.returncode == 0:
        if orjson.loads(out) != {"appended": size, "duplicates": 0}:
            return f"eventscope import printed {out.strip()}"
        with ack_path.open("ab") as ack:
            ack.write(orjson.dumps({"batch": batch, "kind": "cli import", "size": size}) + b"\n")
    elif importer.returncode != -signal.SIGKILL:
        return f"eventscope import exited {importer.returncode}: {err.strip()[-200:]}"
    return None


def _verify(
    location: str, ack_path: Path, prefix: str, state: _State, figures: CrashFigures
) -> list[str]:
    """Recovery open, check, whole-or-absent batches, acknowledged batches present, and
    a next append; the problems found."""
    problems: list[str] = []
    # First as the console opens a store (read-only), then writable.
    started = time.perf_counter()
    try:
        inspector = SqlEventStore.open(location, read_only=True)
    except EventscopeError as error:
        return [f"the store does not open read-only: {error}"]
    try:
        figures.read_only_open_ms.append((time.perf_counter() - started) * 1000)
        read_only_head = inspector.head_position()
    finally:
        inspector.close()
    started = time.perf_counter()
    try:
        store = SqlEventStore.open(location, busy_timeout=BUSY_TIMEOUT)
    except EventscopeError as error:
        return [f"the store does not open: {error}"]
    figures.open_ms.append((time.perf_counter() - started) * 1000)
    try:
        report = store.check()
        if not report.ok:
            problems.append(f"check: {'; '.join(report.problems)}")
        if store.dialect == "sqlite" and report.details.get("sqlite_integrity") != ["ok"]:
            problems.append(f"integrity_check: {report.details.get('sqlite_integrity')}")
        batches: dict[str, list[int]] = {}  # batch: [size, count, first, last position]
        expected_position = state.head + 1
        for event in store.read_all(from_position=state.head + 1):
            if event.position != expected_position:
                problems.append(f"position {event.position} follows {expected_position - 1}")
            expected_position = event.position + 1
            batch = event.metadata.get("batch")
            if batch is None:
                problems.append(f"an event without a batch at {event.position}")
                continue
            entry = batches.setdefault(batch, [event.metadata["size"], 0, event.position, 0])
            entry[1] += 1
            entry[3] = event.position
        for batch, (size, count, first, last) in batches.items():
            if batch in state.seen:
                problems.append(f"batch {batch} has events in two places")
            elif count != size or last - first + 1 != size:
                problems.append(f"batch {batch} is torn: {count} of {size} events")
        state.seen.update(batches)
        figures.batches_seen += len(batches)
        state.head = expected_position - 1
        if read_only_head != state.head:
            problems.append(f"a read-only open saw head {read_only_head}, not {state.head}")
        problems += _check_acknowledgements(ack_path, state, figures)
        # The search index (an interrupted `eventscope import` may have been indexing)
        # catches up to the head.
        store.update_index()
        if store.indexed_position() != state.head:
            problems.append(f"indexed to {store.indexed_position()}, head {state.head}")
        # No lock left behind: a new writer appends within the busy timeout.
        probe = f"{prefix}-probe"
        started = time.perf_counter()
        try:
            appended = store.append_to_stream(
                "probe-1", [NewEvent("Probed", {}, {"batch": probe, "size": 1})]
            )
        except EventscopeError as error:
            problems.append(f"the next append failed: {type(error).__name__}: {error}")
        else:
            figures.next_append_ms.append((time.perf_counter() - started) * 1000)
            if appended.last_position != state.head + 1:
                problems.append(f"the next append took position {appended.last_position}")
            state.head = appended.last_position
            state.seen.add(probe)
    finally:
        store.close()
    return problems


def _check_acknowledgements(ack_path: Path, state: _State, figures: CrashFigures) -> list[str]:
    problems = []
    started: dict[str, str] = {}
    acknowledged: set[str] = set()
    lines = ack_path.read_bytes().split(b"\n") if ack_path.exists() else []
    for line in lines[:-1]:  # the last piece is empty, or a line the kill cut short
        entry = orjson.loads(line)
        if "start" in entry:
            started[entry["start"]] = entry["kind"]
            continue
        acknowledged.add(entry["batch"])
        figures.acknowledged += 1
        figures.acknowledged_events += entry["size"]
        if entry["batch"] in state.seen:
            figures.verified += 1
        else:
            problems.append(f"acknowledged {entry['kind']} {entry['batch']} is lost")
    for batch, kind in started.items():
        if batch not in acknowledged:
            killed = figures.in_flight.setdefault(kind, [0, 0])
            killed[0] += 1
            killed[1] += batch in state.seen
    return problems


@contextmanager
def fresh_postgres_schema(admin_url: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema, dropped afterwards."""
    schema = f"crash_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(full: bool, workdir: Path) -> str:
    """Run the rounds on SQLite (and PostgreSQL when EVENTSCOPE_TEST_PG_URL is set)."""
    index = 0 if full else 1
    results = [sqlite_rounds(workdir / "crash.db", SQLITE_ROUNDS[index], seed=15)]
    pg_url = os.environ.get("EVENTSCOPE_TEST_PG_URL")
    if pg_url:
        with fresh_postgres_schema(pg_url) as location:
            results.append(postgres_rounds(location, workdir, POSTGRES_ROUNDS[index], seed=15))
    return report(results)


def report(results: list[CrashFigures]) -> str:
    """The study's Markdown section."""
    rows = [
        "| backend | rounds | failures | recovery open p50 / p99: read-only, writable "
        "| next append p50 / max "
        "| batches acknowledged / verified | events acknowledged | killed in flight "
        "(committed) | events at the end |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for f in results:
        flight = ", ".join(
            f"{kind}s {killed} ({committed})" for kind, (killed, committed) in f.in_flight.items()
        )
        slowest = max(f.next_append_ms, default=0.0)
        rows.append(
            f"| {f.backend} | {f.rounds} | {len(f.failures)} "
            f"| {_p50_p99(f.read_only_open_ms)}, {_p50_p99(f.open_ms)} "
            f"| {percentile(f.next_append_ms, 0.5):.1f} / {slowest:.1f} ms "
            f"| {f.acknowledged:,} / {f.verified:,} | {f.acknowledged_events:,} "
            f"| {flight or '-'} | {f.events:,} |"
        )
    failures = [f"- {f.backend} {failure}" for f in results for failure in f.failures[:10]]
    sessions = [
        f"PostgreSQL: the killed client's session ended {percentile(f.session_end_ms, 0.5):.0f} "
        f"ms (p50) / {max(f.session_end_ms):.0f} ms (max) after the kill."
        for f in results
        if f.session_end_ms
    ]
    return "\n".join(
        [
            "A writer process (`tests/reliability/writer.py`) appends batches of 1-50 events "
            "with exact expected versions and imports batches (`import_records`, the path of "
            "`eventscope import`) of 100-2,000 records on SQLite, 2,000-20,000 on "
            "PostgreSQL (where most kills land inside an import's transaction); every "
            f"{CLI_IMPORT_EVERY}th round the process killed is `eventscope import FILE` "
            "instead (one batch; killed during its start, its import or its indexing). It "
            "acknowledges a batch by appending a line to a file and fsync-ing it, only after "
            "the call returned; each event carries its batch id and size in its metadata. "
            "After a random delay (up to 0.6 s on SQLite, 1.5 s on PostgreSQL) the study "
            "sends it SIGKILL. On PostgreSQL the study first waits for the killed client's "
            "server session to end (timed; a COMMIT the client had sent still completes "
            "after the kill). Then it opens the store read-only, as the console does, and "
            "writable (both timed: the recovery opens; the read-only one must see the same "
            "head), "
            "runs `check` (SQLite's `PRAGMA integrity_check`, gapless positions, contiguous "
            "versions, the streams table), reads the new events and requires every batch "
            "whole at consecutive positions or absent, every acknowledged batch present, the "
            "search index to catch up to the head, and "
            f"a next append to succeed within the busy timeout ({BUSY_TIMEOUT:.0f} s; no lock "
            "left behind). One store per backend takes every round; `eventscope check` runs "
            'on it at the end. "Killed in flight" counts the calls the kill interrupted, '
            "and how many of those had committed before their acknowledgement was written.",
            "",
            *rows,
            "",
            *([*sessions, ""] if sessions else []),
            *(["Failures:", "", *failures, ""] if failures else []),
            'Reproduce: `make reliability RELIABILITY_ARGS="--only crashes"`.',
        ]
    )
