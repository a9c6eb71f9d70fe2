"""Faults, retry and skip, time limits, pause, retire, retention and leases of projections.

Every case runs a real plugin file from disk on a real SQLite file (and PostgreSQL
where the backend matters), and compares the read model with the in-memory fold of
the events it should have applied.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.projections.fold import fold_projection
from core.projections.history import open_history
from core.projections.runner import CheckpointMoved, ProjectionInactive, ProjectionRunner
from core.registry import Registry
from core.services.projections import ProjectionStateError
from core.services.writing import AUDIT_STREAM
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace


@pytest.fixture
def registry(faulty_registry: Registry) -> Registry:
    return faulty_registry


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(
    request: pytest.FixtureRequest, tmp_path: Path, registry: Registry
) -> Iterator[Workspace]:
    if request.param == "sqlite":
        location = str(tmp_path / "store.db")
    else:
        location = str(request.getfixturevalue("pg_location"))
    opened = Workspace(SqlEventStore.open(location), registry)
    yield opened
    opened.close()


def book(workspace: Workspace, count: int, **special: dict[str, Any]) -> dict[int, int]:
    """Append ``count`` Booked events over three accounts; ``special`` maps an event's
    index (as ``n7``) to extra data. Returns {index: position}."""
    positions = {}
    for n in range(count):
        data = {"account": f"a{n % 3}", "amount": n + 1, **special.get(f"n{n}", {})}
        recorded = workspace.writing.append(f"account-a{n % 3}", "Booked", data)
        positions[n] = recorded.position
    return positions


def fold(workspace: Workspace, *, upto: int | None = None, skip: int | None = None) -> Any:
    events = [
        e
        for e in workspace.events.read(EventFilter(types=("Booked",), to_position=upto))
        if e.position != skip
    ]
    return fold_projection(workspace.registry.projection("ledger"), events)


def documents(workspace: Workspace, reference: str) -> Any:
    history = workspace.projections.history()
    assert history is not None
    return history.documents_at(reference)


def test_a_handler_that_raises_faults_its_projection_at_that_event(workspace: Workspace) -> None:
    positions = book(workspace, 30, n17={"poison": True})
    poisoned = positions[17]
    result = workspace.projections.run("fragile")
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (poisoned, poisoned - 1)
    assert "ValueError: cannot book a2: poisoned" in result.fault.error
    assert "Traceback" in result.fault.error  # the whole traceback is kept
    # What came before the event is committed, nothing of or after it.
    assert documents(workspace, "fragile:1") == fold(workspace, upto=poisoned - 1)
    status = workspace.projections.status("fragile")
    assert (status.state, status.checkpoint, status.fault_position) == (
        "faulted",
        poisoned - 1,
        poisoned,
    )
    event = next(workspace.events.read(EventFilter(from_position=poisoned), limit=1))
    assert status.fault_event_id == event.event_id
    # A faulted projection is not run again until an operator acts.
    with pytest.raises(ProjectionInactive, match="faulted at position"):
        workspace.projections.run("fragile")
    (last_run,) = workspace.projections.runs("fragile", limit=1)
    assert (last_run.outcome, last_run.to_position) == ("faulted", poisoned - 1)
    assert last_run.error == "ValueError: cannot book a2: poisoned"


def test_the_other_projections_are_untouched_by_a_fault(workspace: Workspace) -> None:
    book(workspace, 20, n5={"poison": True})
    assert workspace.projections.run("fragile").fault is not None
    assert workspace.projections.run("ledger").fault is None
    assert documents(workspace, "ledger:1") == fold(workspace)
    assert workspace.projections.status("ledger").state == "caught up"


def test_retry_applies_the_event_again_and_skip_steps_over_it_recorded_in_audit(
    workspace: Workspace,
) -> None:
    positions = book(workspace, 25, n9={"poison": True})
    poisoned = positions[9]
    workspace.projections.run("fragile")
    workspace.projections.retry("fragile")
    again = workspace.projections.run("fragile")  # the handler still raises: faulted again
    assert again.fault is not None and again.fault.position == poisoned
    skipped = workspace.projections.skip("fragile")
    assert skipped.fault_position == poisoned
    audit = list(workspace.events.read(EventFilter(stream_id=AUDIT_STREAM)))
    assert [e.type for e in audit] == ["ProjectionRetried", "ProjectionEventSkipped"]
    assert audit[-1].data["position"] == poisoned
    assert audit[-1].data["event_id"] == skipped.fault_event_id
    assert audit[-1].data["error"] == "ValueError: cannot book a0: poisoned"
    assert audit[-1].data["user"]
    finished = workspace.projections.run("fragile")
    assert finished.fault is None and finished.checkpoint == workspace.events.head_position()
    assert documents(workspace, "fragile:1") == fold(workspace, skip=poisoned)
    with pytest.raises(ProjectionStateError, match="not faulted"):
        workspace.projections.skip("fragile")


def test_a_handler_past_its_time_limit_is_a_fault_too(tmp_path: Path, registry: Registry) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db"), registry)
    positions = book(workspace, 12, n6={"hang": True})
    began = time.monotonic()
    # Its handler loops forever on n6 without calling the view: sluggish is isolated,
    # so its process is killed (and a fresh one applies n0..n5 again).
    result = workspace.projections.run("sluggish")
    assert time.monotonic() - began < 5
    assert result.fault is not None and result.fault.position == positions[6]
    assert "time limit of 0.5 s (its process was killed)" in result.fault.error
    assert documents(workspace, "sluggish:1") == fold(workspace, upto=positions[6] - 1)
    workspace.projections.skip("sluggish")
    assert workspace.projections.run("sluggish").checkpoint == workspace.events.head_position()
    workspace.close()


def test_pausing_stops_a_run_between_batches_and_resuming_goes_on(
    tmp_path: Path, registry: Registry
) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db"), registry)
    book(workspace, 40)
    history = workspace.projections.history()

    runner = ProjectionRunner(history, registry.projection("ledger"), batch_size=10)

    def pause_after_first_batch(position: int, goal: int) -> None:
        if position == 10:
            workspace.projections.pause("ledger")

    with pytest.raises(ProjectionInactive, match="ledger:1 is paused"):
        runner.run(on_batch=pause_after_first_batch)
    status = workspace.projections.status("ledger")
    assert (status.state, status.checkpoint) == ("paused", 10)
    assert documents(workspace, "ledger:1") == fold(workspace, upto=10)
    (stopped,) = workspace.projections.runs("ledger")
    assert (stopped.outcome, stopped.from_position, stopped.to_position) == ("stopped", 0, 10)
    with pytest.raises(ProjectionStateError, match="paused: it cannot be resumed or retried"):
        workspace.projections.retry("ledger")  # retry is for faults; a pause is resumed
    workspace.projections.resume("ledger")
    assert runner.run().checkpoint == workspace.events.head_position()
    assert documents(workspace, "ledger:1") == fold(workspace)
    workspace.close()


def test_retiring_a_version_drops_it_and_leaves_the_others(workspace: Workspace) -> None:
    book(workspace, 15)
    workspace.projections.run("ledger")
    workspace.projections.run("sluggish")
    workspace.projections.retire("sluggish")
    assert documents(workspace, "sluggish:1") == {}
    assert workspace.projections.status("sluggish").state == "retired"
    with pytest.raises(ProjectionInactive, match="retired"):
        workspace.projections.run("sluggish")
    assert documents(workspace, "ledger:1") == fold(workspace)
    workspace.projections.reset("sluggish")  # a rebuild brings it back
    assert workspace.projections.run("sluggish").checkpoint == workspace.events.head_position()


def test_retention_drops_history_before_a_position_and_replay_folds_there(
    workspace: Workspace,
) -> None:
    book(workspace, 30)
    workspace.projections.run("ledger")
    history = workspace.projections.history()
    before = history.versions("ledger:1")
    deleted = workspace.projections.retain("ledger", 20)
    assert deleted > 0 and history.versions("ledger:1") == before - deleted
    for position in (5, 19, 20, 25, 30):
        replayed = workspace.timetravel.replay(f"ledger@{position}")
        assert replayed.documents == fold(workspace, upto=position), position
        assert replayed.source == ("history" if position >= 20 else "fold"), position
    assert workspace.projections.status("ledger").history_from == 20


def test_a_lease_held_by_another_worker_stops_a_runner(workspace: Workspace) -> None:
    book(workspace, 10)
    history = workspace.projections.history()
    history.ensure("ledger", 1)
    assert history.acquire_lease("ledger:1", "worker-a", seconds=30)
    assert not history.acquire_lease("ledger:1", "worker-b", seconds=30)
    with pytest.raises(CheckpointMoved, match="lease"):
        workspace.projections.run("ledger", lease=("worker-b", 30))
    assert workspace.projections.status("ledger").checkpoint == 0
    assert workspace.projections.status("ledger").worker == "worker-a"
    history.release_lease("ledger:1", "worker-a")
    assert history.acquire_lease("ledger:1", "worker-b", seconds=0.2)
    time.sleep(0.3)  # worker-b's lease expires: worker-a may take it over
    assert history.acquire_lease("ledger:1", "worker-a", seconds=30)
    result = workspace.projections.run("ledger", lease=("worker-a", 30))
    assert result.checkpoint == workspace.events.head_position()
    (run,) = workspace.projections.runs("ledger", limit=1)
    assert run.worker == "worker-a"


def test_the_run_history_keeps_the_newest_runs(workspace: Workspace) -> None:
    history = open_history(workspace.handle.store, keep_runs=3)
    assert history is not None
    history.ensure("ledger", 1)
    runner = ProjectionRunner(history, workspace.registry.projection("ledger"))
    for n in range(5):
        book(workspace, 1)
        runner.run()
        assert len(history.runs("ledger:1")) == min(n + 1, 3)
    assert [run.to_position for run in history.runs("ledger:1")] == [5, 4, 3]
