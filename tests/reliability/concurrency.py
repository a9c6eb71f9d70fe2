"""Study: writer processes racing on shared streams with expected versions, readers tailing.

Each writer process appends one event at a time to one of 50 streams with the exact
version it last read, and on WrongExpectedVersion reads again and retries. Two reader
processes tail the log from their last position and require each event they see to be
the next position. Afterwards the log must hold every acknowledged append exactly once,
at positions 1..head, with contiguous versions per stream; no error other than
WrongExpectedVersion (no "database is locked", no StoreBusy) may reach a caller.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from core.errors import WrongExpectedVersion
from core.events import NO_STREAM, ExpectedVersion, NewEvent
from core.store import SqlEventStore
from tests.reliability.crashes import fresh_postgres_schema, percentile

__all__ = ["TITLE", "ConcurrencyFigures", "race", "run"]

TITLE: Final = "Concurrent writers and tailing readers"
#: (writers, appends per writer): full, and make test's.
COUNTS: Final = ((8, 5_000), (4, 200))
STREAMS: Final = 50
READERS: Final = 2


@dataclass
class ConcurrencyFigures:
    """What one race measured."""

    backend: str
    writers: int
    appends_per_writer: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    conflicts: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    read_by_readers: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _writer(
    location: str, worker: int, appends: int, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    """Append ``appends`` events with exact expected versions, retrying conflicts."""
    rng = random.Random(worker)
    conflicts = 0
    failures: list[str] = []
    latencies: list[float] = []
    acknowledged = 0
    store = SqlEventStore.open(location)
    start.wait()
    try:
        for seq in range(appends):
            stream_id = f"counter-{rng.randrange(STREAMS)}"
            event = NewEvent("Incremented", {"worker": worker, "seq": seq})
            while True:
                try:
                    info = store.stream_info(stream_id)
                    expected = NO_STREAM if info is None else ExpectedVersion.exact(info.version)
                    began = time.perf_counter()
                    store.append_to_stream(stream_id, [event], expected)
                    latencies.append((time.perf_counter() - began) * 1000)
                    acknowledged += 1
                    break
                except WrongExpectedVersion:
                    conflicts += 1
                except Exception as error:  # anything else reaching a caller is a failure
                    failures.append(f"writer {worker}: {type(error).__name__}: {error}")
                    break
    finally:
        store.close()
    results.put(("writer", worker, conflicts, failures, latencies, acknowledged))


def _reader(
    location: str, reader: int, start: Any, final_head: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    """Tail the log until the writers are done and the final head was read."""
    failures: list[str] = []
    seen = last = 0
    store = SqlEventStore.open(location, read_only=True)
    start.wait()
    try:
        while True:
            target = final_head.value  # read before the page: 0 until the writers are done
            for event in store.read_all(from_position=last + 1, limit=500):
                if event.position != last + 1:
                    failures.append(f"reader {reader}: saw {event.position} after {last}")
                last = event.position
                seen += 1
            if target and last >= target:
                break
            time.sleep(0.002)
    except Exception as error:
        failures.append(f"reader {reader}: {type(error).__name__}: {error}")
    finally:
        store.close()
    results.put(("reader", reader, seen, failures))


def race(location: str, backend: str, writers: int, appends: int) -> ConcurrencyFigures:
    """Run the writers and readers on ``location`` (a fresh store) and verify the log."""
    figures = ConcurrencyFigures(backend, writers, appends)
    SqlEventStore.open(location).close()
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    final_head = context.Value("q", 0)
    results = context.Queue()
    writer_processes = [
        context.Process(target=_writer, args=(location, worker, appends, start, results))
        for worker in range(writers)
    ]
    reader_processes = [
        context.Process(target=_reader, args=(location, reader, start, final_head, results))
        for reader in range(READERS)
    ]
    for process in writer_processes + reader_processes:
        process.start()
    time.sleep(0.5)  # let every process open its store before the start
    began = time.perf_counter()
    start.set()
    outcomes = [results.get(timeout=1800) for _ in writer_processes]
    figures.seconds = time.perf_counter() - began
    store = SqlEventStore.open(location, read_only=True)
    try:
        final_head.value = max(store.head_position(), 1)
        outcomes += [results.get(timeout=600) for _ in reader_processes]
        for process in writer_processes + reader_processes:
            process.join(timeout=60)
            if process.exitcode != 0:
                figures.failures.append(f"a process exited {process.exitcode}")
        for outcome in outcomes:
            if outcome[0] == "writer":
                _, _, conflicts, failures, latencies, acknowledged = outcome
                figures.conflicts += conflicts
                figures.latencies_ms += latencies
                figures.acknowledged += acknowledged
            else:
                _, _, seen, failures = outcome
                figures.read_by_readers.append(seen)
            figures.failures += failures
        _verify(store, figures)
    finally:
        store.close()
    return figures


def _verify(store: SqlEventStore, figures: ConcurrencyFigures) -> None:
    written: Counter[tuple[int, int]] = Counter()
    expected_position = 1
    for event in store.read_all():
        if event.position != expected_position:
            figures.failures.append(f"position {event.position} follows {expected_position - 1}")
        expected_position = event.position + 1
        written[(event.data["worker"], event.data["seq"])] += 1
    figures.stored = sum(written.values())
    acknowledged_keys = figures.acknowledged  # every (worker, seq) below is acknowledged
    figures.duplicated = sum(count - 1 for count in written.values() if count > 1)
    figures.lost = acknowledged_keys - len(written)
    for info in store.list_streams():
        versions = [e.version for e in store.read_stream(info.stream_id)]
        if versions != list(range(len(versions))):
            figures.failures.append(f"{info.stream_id}: versions are not contiguous")
    report = store.check()
    if not report.ok:
        figures.failures.append(f"check: {'; '.join(report.problems)}")
    if figures.lost or figures.duplicated:
        figures.failures.append(f"{figures.lost} lost, {figures.duplicated} duplicated")
    if figures.stored != figures.acknowledged:
        figures.failures.append(f"{figures.stored} stored, {figures.acknowledged} acknowledged")
    if any(seen != figures.stored for seen in figures.read_by_readers):
        figures.failures.append(f"readers saw {figures.read_by_readers} of {figures.stored}")


def run(full: bool, workdir: Path) -> str:
    """Race on SQLite (and PostgreSQL when EVENTSCOPE_TEST_PG_URL is set)."""
    writers, appends = COUNTS[0 if full else 1]
    results = [race(str(workdir / "race.db"), "SQLite", writers, appends)]
    pg_url = os.environ.get("EVENTSCOPE_TEST_PG_URL")
    if pg_url:
        with fresh_postgres_schema(pg_url) as location:
            results.append(race(location, "PostgreSQL", writers, appends))
    return report(results)


def report(results: list[ConcurrencyFigures]) -> str:
    """The study's Markdown section."""
    rows = [
        "| backend | writers × appends | appends/s | append p50 / p99 / max | conflicts (retried) "
        "| lost | duplicated | events read by each reader | other errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for f in results:
        rate = f.acknowledged / f.seconds if f.seconds else 0.0
        rows.append(
            f"| {f.backend} | {f.writers} × {f.appends_per_writer:,} | {rate:,.0f} "
            f"| {percentile(f.latencies_ms, 0.5):.1f} / {percentile(f.latencies_ms, 0.99):.1f} "
            f"/ {max(f.latencies_ms, default=0.0):.0f} ms "
            f"| {f.conflicts:,} | {f.lost} | {f.duplicated} "
            f"| {' / '.join(f'{n:,}' for n in f.read_by_readers)} | {len(f.failures)} |"
        )
    failures = [f"- {f.backend}: {failure}" for f in results for failure in f.failures[:10]]
    return "\n".join(
        [
            "Writer processes each append one event at a time to one of "
            f"{STREAMS} streams, with the exact version of their last read of the stream; "
            "on `WrongExpectedVersion` they read it again and retry (a conflict). Two "
            "reader processes tail the log (`read_all` from their last position, 500 at a "
            "time) and require every event to be the next position. Afterwards: every "
            "acknowledged append stored once, positions 1..head, contiguous versions per "
            "stream, `check` ok, and no exception other than `WrongExpectedVersion` (no "
            '"database is locked", no `StoreBusy`) reaching a caller. Latency is one '
            "successful `append_to_stream` call (SQLite: `synchronous=FULL`; PostgreSQL: "
            "the events table locked per append); appends/s counts acknowledged appends "
            "over the writers' wall time.",
            "",
            *rows,
            "",
            *(["Failures:", "", *failures, ""] if failures else []),
            'Reproduce: `make reliability RELIABILITY_ARGS="--only concurrency"`.',
        ]
    )
