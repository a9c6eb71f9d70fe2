"""Concurrent writers as real processes: nothing lost, nothing duplicated, no lock errors."""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from typing import Any

import pytest

from core.errors import WrongExpectedVersion
from core.events import NewEvent
from core.store import SqlEventStore

WORKERS = 4
APPENDS_PER_WORKER = 2_000
STREAMS = 20


def _writer(location: str, worker: int, start: Any, results: Any) -> None:
    """Append APPENDS_PER_WORKER events with exact expected versions, retrying conflicts."""
    rng = random.Random(worker)
    conflicts = 0
    failures: list[str] = []
    store = SqlEventStore.open(location)
    start.wait()
    try:
        for seq in range(APPENDS_PER_WORKER):
            stream_id = f"counter-{rng.randrange(STREAMS)}"
            event = NewEvent("Incremented", {"worker": worker, "seq": seq})
            while True:
                info = store.stream_info(stream_id)
                expected = "no_stream" if info is None else info.version
                try:
                    store.append_to_stream(stream_id, [event], expected)
                    break
                except WrongExpectedVersion:
                    conflicts += 1
                except Exception as error:  # anything else is a failure of the store
                    failures.append(f"{type(error).__name__}: {error}")
                    break
    finally:
        store.close()
    results.put((worker, conflicts, failures))


def _run_writers(location: str) -> tuple[int, list[str]]:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_writer, args=(location, worker, start, results))
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    start.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    conflicts = sum(outcome[1] for outcome in outcomes)
    failures = [failure for outcome in outcomes for failure in outcome[2]]
    return conflicts, failures


def _assert_exact_history(location: str, conflicts: int, failures: list[str]) -> None:
    assert failures == []  # no "database is locked", no other error escaped to a caller
    store = SqlEventStore.open(location, read_only=True)
    try:
        events = list(store.read_all())
        assert [e.position for e in events] == list(range(1, WORKERS * APPENDS_PER_WORKER + 1))
        written = Counter((e.data["worker"], e.data["seq"]) for e in events)
        assert len(written) == WORKERS * APPENDS_PER_WORKER  # nothing lost
        assert set(written.values()) == {1}  # nothing duplicated
        for info in store.list_streams():
            versions = [e.version for e in store.read_stream(info.stream_id)]
            assert versions == list(range(len(versions)))
        assert store.check().ok
    finally:
        store.close()
    # Twenty streams shared by four writers must have collided; each collision was a
    # WrongExpectedVersion that the writer retried.
    assert conflicts > 0


@pytest.mark.slow
def test_concurrent_writer_processes_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    location = str(tmp_path / "concurrent.db")
    SqlEventStore.open(location).close()
    conflicts, failures = _run_writers(location)
    _assert_exact_history(location, conflicts, failures)


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_writer_processes_on_postgres(pg_location: str) -> None:
    SqlEventStore.open(pg_location).close()
    conflicts, failures = _run_writers(pg_location)
    _assert_exact_history(pg_location, conflicts, failures)
