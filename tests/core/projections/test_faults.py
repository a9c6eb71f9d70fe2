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
from core.store import EventFilter, SqlEventStore
from core.workspace import AUDIT_STREAM, ProjectionStateError, Workspace


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
        recorded = workspace.append(f"account-a{n % 3}", "Booked", data)
        positions[n] = recorded.position
    return positions


def fold(workspace: Workspace, *, upto: int | None = None, skip: int | None = None) -> Any:
    events = [
        e
        for e in workspace.read(EventFilter(types=("Booked",), to_position=upto))
        if e.position != skip
    ]
    return fold_projection(workspace.registry.projection("ledger"), events)


def documents(workspace: Workspace, reference: str) -> Any:
    history = workspace.history
    assert history is not None
    return history.documents_at(reference)


def test_a_handler_that_raises_faults_its_projection_at_that_event(workspace: Workspace) -> None:
    positions = book(workspace, 30, n17={"poison": True})
    poisoned = positions[17]
    result = workspace.run_projection("fragile")
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (poisoned, poisoned - 1)
    assert "ValueError: cannot book a2: poisoned" in result.fault.error
    assert "Traceback" in result.fault.error  # the whole traceback is kept
    # What came before the event is committed, nothing of or after it.
    assert documents(workspace, "fragile:1") == fold(workspace, upto=poisoned - 1)
    status = workspace.projection_status("fragile")
    assert (status.state, status.checkpoint, status.fault_position) == (
        "faulted",
        poisoned - 1,
        poisoned,
    )
    event = next(workspace.read(EventFilter(from_position=poisoned), limit=1))
    assert status.fault_event_id == event.event_id
    # A faulted projection is not run again until an operator acts.
    with pytest.raises(ProjectionInactive, match="faulted at position"):
        workspace.run_projection("fragile")
    (last_run,) = workspace.projection_runs("fragile", limit=1)
    assert (last_run.outcome, last_run.to_position) == ("faulted", poisoned - 1)
    assert last_run.error == "ValueError: cannot book a2: poisoned"


def test_the_other_projections_are_untouched_by_a_fault(workspace: Workspace) -> None:
    book(workspace, 20, n5={"poison": True})
    assert workspace.run_projection("fragile").fault is not None
    assert workspace.run_projection("ledger").fault is None
    assert documents(workspace, "ledger:1") == fold(workspace)
    assert workspace.projection_status("ledger").state == "caught up"


def test_retry_applies_the_event_again_and_skip_steps_over_it_recorded_in_audit(
    workspace: Workspace,
) -> None:
    positions = book(workspace, 25, n9={"poison": True})
    poisoned = positions[9]
    workspace.run_projection("fragile")
    workspace.retry_projection("fragile")
    again = workspace.run_projection("fragile")  # the handler still raises: faulted again
    assert again.fault is not None and again.fault.position == poisoned
    skipped = workspace.skip_faulted_event("fragile")
    assert skipped.fault_position == poisoned
    audit = list(workspace.read(EventFilter(stream_id=AUDIT_STREAM)))
    assert [e.type for e in audit] == ["ProjectionRetried", "ProjectionEventSkipped"]
    assert audit[-1].data["position"] == poisoned
    assert audit[-1].data["event_id"] == skipped.fault_event_id
    assert audit[-1].data["error"] == "ValueError: cannot book a0: poisoned"
    assert audit[-1].data["user"]
    finished = workspace.run_projection("fragile")
    assert finished.fault is None and finished.checkpoint == workspace.head_position()
    assert documents(workspace, "fragile:1") == fold(workspace, skip=poisoned)
    with pytest.raises(ProjectionStateError, match="not faulted"):
        workspace.skip_faulted_event("fragile")


def test_a_handler_past_its_time_limit_is_a_fault_too(tmp_path: Path, registry: Registry) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db"), registry)
    positions = book(workspace, 12, n6={"hang": True})
    began = time.monotonic()
    result = workspace.run_projection("sluggish")  # its handler loops forever on n6
    assert time.monotonic() - began < 5
    assert result.fault is not None and result.fault.position == positions[6]
    assert "time limit of 0.5 s" in result.fault.error
    assert documents(workspace, "sluggish:1") == fold(workspace, upto=positions[6] - 1)
    workspace.skip_faulted_event("sluggish")
    assert workspace.run_projection("sluggish").checkpoint == workspace.head_position()
    workspace.close()


def test_pausing_stops_a_run_between_batches_and_resuming_goes_on(
    tmp_path: Path, registry: Registry
) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db"), registry)
    book(workspace, 40)
    history = workspace.require_history()

    runner = ProjectionRunner(history, registry.projection("ledger"), batch_size=10)

    def pause_after_first_batch(position: int, goal: int) -> None:
        if position == 10:
            workspace.pause_projection("ledger")

    with pytest.raises(ProjectionInactive, match="ledger:1 is paused"):
        runner.run(on_batch=pause_after_first_batch)
    status = workspace.projection_status("ledger")
    assert (status.state, status.checkpoint) == ("paused", 10)
    assert documents(workspace, "ledger:1") == fold(workspace, upto=10)
    (stopped,) = workspace.projection_runs("ledger")
    assert (stopped.outcome, stopped.from_position, stopped.to_position) == ("stopped", 0, 10)
    with pytest.raises(ProjectionStateError, match="paused: it cannot be resumed or retried"):
        workspace.retry_projection("ledger")  # retry is for faults; a pause is resumed
    workspace.resume_projection("ledger")
    assert runner.run().checkpoint == workspace.head_position()
    assert documents(workspace, "ledger:1") == fold(workspace)
    workspace.close()


def test_retiring_a_version_drops_it_and_leaves_the_others(workspace: Workspace) -> None:
    book(workspace, 15)
    workspace.run_projection("ledger")
    workspace.run_projection("sluggish")
    workspace.retire_projection("sluggish")
    assert documents(workspace, "sluggish:1") == {}
    assert workspace.projection_status("sluggish").state == "retired"
    with pytest.raises(ProjectionInactive, match="retired"):
        workspace.run_projection("sluggish")
    assert documents(workspace, "ledger:1") == fold(workspace)
    workspace.reset_projection("sluggish")  # a rebuild brings it back
    assert workspace.run_projection("sluggish").checkpoint == workspace.head_position()


def test_retention_drops_history_before_a_position_and_replay_folds_there(
    workspace: Workspace,
) -> None:
    book(workspace, 30)
    workspace.run_projection("ledger")
    history = workspace.require_history()
    before = history.versions("ledger:1")
    deleted = workspace.retain_history("ledger", 20)
    assert deleted > 0 and history.versions("ledger:1") == before - deleted
    for position in (5, 19, 20, 25, 30):
        replayed = workspace.replay(f"ledger@{position}")
        assert replayed.documents == fold(workspace, upto=position), position
        assert replayed.source == ("history" if position >= 20 else "fold"), position
    assert workspace.projection_status("ledger").history_from == 20


def test_a_lease_held_by_another_worker_stops_a_runner(workspace: Workspace) -> None:
    book(workspace, 10)
    history = workspace.require_history()
    history.ensure("ledger", 1)
    assert history.acquire_lease("ledger:1", "worker-a", seconds=30)
    assert not history.acquire_lease("ledger:1", "worker-b", seconds=30)
    with pytest.raises(CheckpointMoved, match="lease"):
        workspace.run_projection("ledger", lease=("worker-b", 30))
    assert workspace.projection_status("ledger").checkpoint == 0
    assert workspace.projection_status("ledger").worker == "worker-a"
    history.release_lease("ledger:1", "worker-a")
    assert history.acquire_lease("ledger:1", "worker-b", seconds=0.2)
    time.sleep(0.3)  # worker-b's lease expires: worker-a may take it over
    assert history.acquire_lease("ledger:1", "worker-a", seconds=30)
    result = workspace.run_projection("ledger", lease=("worker-a", 30))
    assert result.checkpoint == workspace.head_position()
    (run,) = workspace.projection_runs("ledger", limit=1)
    assert run.worker == "worker-a"


def test_the_run_history_keeps_the_newest_runs(workspace: Workspace) -> None:
    history = open_history(workspace.store, keep_runs=3)
    assert history is not None
    history.ensure("ledger", 1)
    runner = ProjectionRunner(history, workspace.registry.projection("ledger"))
    for n in range(5):
        book(workspace, 1)
        runner.run()
        assert len(history.runs("ledger:1")) == min(n + 1, 3)
    assert [run.to_position for run in history.runs("ledger:1")] == [5, 4, 3]
