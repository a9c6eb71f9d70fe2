"""The projection runner: exactly-once batches with history, on SQLite and PostgreSQL.

The reference answer is always the in-memory fold of the same events (what replay
did before read models had history): the runner's read model, now and at every
position of its history, must equal it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from core.errors import Cancelled
from core.events import NewEvent, RecordedEvent
from core.jobs import Job
from core.projections.definition import Projection, View, handles
from core.projections.fold import fold_projection
from core.projections.history import SqlHistoryStore
from core.projections.runner import CheckpointMoved, ProjectionRunner
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace


class Tally(Projection):
    """Per-stream totals, with deletes and same-event double writes: every kind of change."""

    name: ClassVar[str] = "tally"
    version: ClassVar[int] = 1

    @handles("Added")
    def added(self, view: View, event: RecordedEvent) -> None:
        key = event.stream_id
        doc = view.get(key) or {"total": 0, "events": 0}
        doc["total"] += event.data["n"]
        doc["events"] += 1
        view.put(key, doc)
        view.put(key, doc)  # the same document twice: one version
        summary = view.get("all") or {"streams": []}
        if key not in summary["streams"]:
            summary["streams"] = sorted([*summary["streams"], key])
            view.put("all", summary)

    @handles("Closed")
    def closed(self, view: View, event: RecordedEvent) -> None:
        view.delete(event.stream_id)
        summary = view.get("all") or {"streams": []}
        summary["streams"] = [s for s in summary["streams"] if s != event.stream_id]
        view.put("all", summary)


def append_history(store: SqlEventStore, rounds: int, *, offset: int = 0) -> None:
    """Adds over five streams, a stream closed now and then and reopened later."""
    for n in range(offset, offset + rounds):
        stream = f"acct-{n % 5}"
        store.append_to_stream(stream, [NewEvent("Added", {"n": n})])
        if n % 7 == 6:
            store.append_to_stream(stream, [NewEvent("Closed", {})])
        store.append_to_stream("noise-1", [NewEvent("Ignored", {"n": n})])


def folded(store: SqlEventStore, position: int | None = None) -> dict[str, Any]:
    return fold_projection(Tally, store.read(EventFilter(to_position=position)))


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlEventStore]:
    if request.param == "sqlite":
        location = str(tmp_path / "store.db")
    else:
        location = str(request.getfixturevalue("pg_location"))
    store = SqlEventStore.open(location)
    yield store
    store.close()


def test_the_read_model_and_its_history_equal_the_fold_at_every_position(
    sql_store: SqlEventStore,
) -> None:
    append_history(sql_store, 40)
    history = SqlHistoryStore(sql_store)
    runner = ProjectionRunner(history, Tally, batch_size=7)
    first = runner.run()
    head = sql_store.head_position()
    assert (first.from_position, first.checkpoint) == (0, head)
    append_history(sql_store, 25, offset=40)  # a second run goes on from the checkpoint
    second = runner.run()
    assert (second.from_position, second.checkpoint) == (head, sql_store.head_position())
    assert history.documents_at("tally:1") == folded(sql_store)
    for position in range(sql_store.head_position() + 1):
        assert history.documents_at("tally:1", position) == folded(sql_store, position), position


def test_a_document_gets_a_version_only_when_it_changes(sql_store: SqlEventStore) -> None:
    sql_store.append_to_stream("acct-1", [NewEvent("Added", {"n": 0}) for _ in range(3)])
    history = SqlHistoryStore(sql_store)
    ProjectionRunner(history, Tally).run()
    # acct-1: 3 versions (events 1, 2, 3); "all": 1 (the streams list changed once).
    assert history.versions("tally:1") == 4


def test_two_runners_never_apply_a_batch_twice(sql_store: SqlEventStore) -> None:
    append_history(sql_store, 60)
    location = sql_store.location
    results: list[int] = []
    conflicts: list[int] = []

    def catch_up() -> None:
        store = SqlEventStore.open(location)
        try:
            runner = ProjectionRunner(SqlHistoryStore(store), Tally, batch_size=3)
            while True:
                try:
                    results.append(runner.run().events)
                    return
                except CheckpointMoved:
                    conflicts.append(1)
        finally:
            store.close()

    threads = [threading.Thread(target=catch_up) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = SqlHistoryStore(sql_store)
    assert history.documents_at("tally:1") == folded(sql_store)
    handled = sum(1 for e in sql_store.read() if e.type in Tally.handlers)
    runs = list(history.runs("tally:1", limit=1000))
    # Every handled event was committed by exactly one run (conflicting batches by none).
    assert sum(run.events for run in runs) == handled
    assert {run.outcome for run in runs} <= {"ok", "conflict"}
    assert len([run for run in runs if run.outcome == "conflict"]) == len(conflicts)
    assert history.status("tally:1").checkpoint == sql_store.head_position()  # type: ignore[union-attr]


def test_a_crash_mid_run_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    """The runner process dies (os._exit, as under kill -9) inside its third batch;
    the next run starts at the last committed checkpoint and ends equal to the fold."""
    path = tmp_path / "store.db"
    store = SqlEventStore.open(path)
    append_history(store, 50)
    script = textwrap.dedent(
        f"""
        import os
        from core.projections.history import SqlHistoryStore
        from core.projections.runner import ProjectionRunner
        from core.store import SqlEventStore
        from tests.core.projections.test_runner import Tally

        seen = []
        original = Tally.added

        def dying(self, view, event):
            seen.append(event.position)
            if len(seen) == 13:
                os._exit(9)
            original(self, view, event)

        Tally.added = dying
        store = SqlEventStore.open({str(path)!r})
        ProjectionRunner(SqlHistoryStore(store), Tally, batch_size=10).run()
        """
    )
    died = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[3])
    assert died.returncode == 9
    history = SqlHistoryStore(store)
    status = history.status("tally:1")
    assert status is not None and status.checkpoint in (10, 20)  # whole batches only
    assert history.documents_at("tally:1") == folded(store, status.checkpoint)
    ProjectionRunner(history, Tally).run()
    assert history.documents_at("tally:1") == folded(store)
    store.close()


def test_cancelling_a_run_keeps_the_batches_it_committed(tmp_path: Path) -> None:
    store = SqlEventStore.open(tmp_path / "store.db")
    append_history(store, 30)
    history = SqlHistoryStore(store)
    job = Job(lambda done, total: job.cancel() if done >= 20 else None)
    with job.running(), pytest.raises(Cancelled):
        ProjectionRunner(history, Tally, batch_size=10).run()
    status = history.status("tally:1")
    assert status is not None and status.checkpoint == 20
    assert history.documents_at("tally:1") == folded(store, 20)
    (run,) = history.runs("tally:1")
    assert (run.outcome, run.from_position, run.to_position) == ("cancelled", 0, 20)
    store.close()


def test_replay_reads_history_once_a_version_has_run(tmp_path: Path, bank_registry) -> None:  # type: ignore[no-untyped-def]
    store = SqlEventStore.open(tmp_path / "bank.db")
    for account, amount in [("a", 100), ("b", 50), ("a", -30)]:
        kind = "Deposited" if amount > 0 else "Withdrawn"
        store.append_to_stream(
            f"account-{account}",
            [NewEvent(kind, {"account": account, "amount": abs(amount)}, {"schema_version": 2})],
        )
    workspace = Workspace(store, bank_registry)
    before = workspace.timetravel.replay("balances:1@2")
    assert before.source == "fold"
    workspace.projections.run("balances:1")
    after = workspace.timetravel.replay("balances:1@2")
    assert after.source == "history"
    assert after.documents == before.documents == {"a": {"balance": 100}, "b": {"balance": 50}}
    assert workspace.timetravel.replay("balances:1").documents == {
        "a": {"balance": 70},
        "b": {"balance": 50},
    }
    workspace.projections.reset("balances:1")
    assert workspace.timetravel.replay("balances:1@2").source == "fold"  # history forgotten
    workspace.close()
