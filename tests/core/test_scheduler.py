"""The projection scheduler: read models kept current, run history, faults, pause, leases."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.errors import StoreFull
from core.events import NewEvent, wall_clock_micros
from core.projections.fold import fold_projection
from core.projections.history import RunRecord
from core.registry import Registry
from core.scheduler import ProjectionScheduler, TickOutcome
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace


@pytest.fixture
def registry(faulty_registry: Registry) -> Registry:
    return faulty_registry


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_location"))


@pytest.fixture
def workspace(location: str, registry: Registry) -> Iterator[Workspace]:
    opened = Workspace(SqlEventStore.open(location), registry)
    yield opened
    opened.close()


def book(workspace: Workspace, start: int, count: int, **extra: Any) -> None:
    for n in range(start, start + count):
        data = {"account": f"a{n % 4}", "amount": n, **extra.get(f"n{n}", {})}
        workspace.writing.append(f"account-a{n % 4}", "Booked", data)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def caught_up(workspace: Workspace, reference: str) -> Callable[[], bool]:
    return lambda: workspace.projections.status(reference).lag == 0


def folded(workspace: Workspace, name: str, skip: int | None = None) -> Any:
    events = [
        e for e in workspace.events.read(EventFilter(types=("Booked",))) if e.position != skip
    ]
    return fold_projection(workspace.registry.projection(name), events)


def assert_runs_chain(runs: list[RunRecord], head: int, handled: int) -> None:
    """The runs that committed cover 0..head once each: no gap, no overlap, and together
    they applied every handled event exactly once."""
    committed = sorted(
        (r for r in runs if r.to_position > r.from_position), key=lambda r: r.from_position
    )
    assert committed[0].from_position == 0
    for earlier, later in itertools.pairwise(committed):
        assert earlier.to_position == later.from_position, (earlier, later)
    assert committed[-1].to_position == head
    assert sum(r.events for r in committed) == handled


def test_scheduled_read_models_follow_the_log_and_every_run_is_recorded(
    workspace: Workspace,
) -> None:
    book(workspace, 0, 50)
    ticks: list[TickOutcome] = []
    scheduler = ProjectionScheduler(
        workspace, references=["ledger"], worker="w1", on_tick=ticks.append, batch_size=7
    )
    scheduler.start()
    try:
        wait_until(caught_up(workspace, "ledger"))
        for round_ in range(1, 4):  # appends arrive while it runs
            book(workspace, 50 * round_, 50)
            wait_until(caught_up(workspace, "ledger"))
    finally:
        scheduler.shutdown()
    history = workspace.projections.history()
    assert history.documents_at("ledger:1") == folded(workspace, "ledger")
    runs = workspace.projections.runs("ledger", limit=1000)
    assert len(runs) >= 4 and {r.outcome for r in runs} == {"ok"}
    assert {r.worker for r in runs} == {"w1"}
    assert_runs_chain(runs, workspace.events.head_position(), handled=200)
    # Every run the scheduler reported is in the history, and nothing else is.
    reported = sorted((t.result.from_position, t.result.checkpoint) for t in ticks if t.result)
    assert reported == sorted((r.from_position, r.to_position) for r in runs)
    # Its lease was given back when it stopped.
    assert workspace.projections.status("ledger").worker is None


def test_a_faulting_projection_does_not_stop_the_others(workspace: Workspace) -> None:
    book(workspace, 0, 30, n12={"poison": True})
    scheduler = ProjectionScheduler(workspace, references=["ledger", "fragile"], worker="w1")
    scheduler.start()
    try:
        wait_until(lambda: workspace.projections.status("fragile").state == "faulted")
        wait_until(caught_up(workspace, "ledger"))
        book(workspace, 30, 30)  # the healthy one keeps following the log
        wait_until(caught_up(workspace, "ledger"))
        fragile = workspace.projections.status("fragile")
        assert fragile.state == "faulted" and fragile.lag > 0
        poisoned = fragile.fault_position
        assert poisoned is not None
        workspace.projections.skip("fragile")  # the operator steps over it
        wait_until(caught_up(workspace, "fragile"))
    finally:
        scheduler.shutdown()
    history = workspace.projections.history()
    assert history.documents_at("ledger:1") == folded(workspace, "ledger")
    assert history.documents_at("fragile:1") == folded(workspace, "fragile", skip=poisoned)


def handler_processes() -> set[int]:
    """The child processes of this process that apply isolated projections' handlers."""
    found = set()
    for child in psutil.Process().children():
        try:
            if any("core.projections.handler_process" in part for part in child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue  # ended meanwhile
    return found


def test_shutting_down_stops_the_processes_of_isolated_projections(
    workspace: Workspace,
) -> None:
    book(workspace, 0, 20, n7={"stuck": "raise"})
    before = handler_processes()
    scheduler = ProjectionScheduler(workspace, references=["stuck", "ledger"], worker="w1")
    scheduler.start()
    try:
        wait_until(lambda: workspace.projections.status("stuck").state == "faulted")
        workspace.projections.skip("stuck")
        wait_until(caught_up(workspace, "stuck"))
        wait_until(caught_up(workspace, "ledger"))
        started = handler_processes() - before
        assert len(started) == 1  # one for the isolated projection, kept between ticks
    finally:
        scheduler.shutdown()
    for pid in started:
        with pytest.raises(psutil.NoSuchProcess):
            psutil.Process(pid).wait(10)  # gone (reaped), or still there: a leak
    history = workspace.projections.history()
    assert history.documents_at("stuck:1") == folded(workspace, "ledger", skip=8)
    assert history.documents_at("ledger:1") == folded(workspace, "ledger")


def test_a_paused_projection_waits_and_a_resumed_one_catches_up(workspace: Workspace) -> None:
    book(workspace, 0, 20)
    scheduler = ProjectionScheduler(workspace, references=["ledger"], worker="w1")
    scheduler.start()
    try:
        wait_until(caught_up(workspace, "ledger"))
        workspace.projections.pause("ledger")  # as an operator would, from another process
        book(workspace, 20, 20)
        time.sleep(0.5)  # five scheduler intervals go by
        status = workspace.projections.status("ledger")
        assert status.state == "paused" and status.lag > 0
        workspace.projections.resume("ledger")
        wait_until(caught_up(workspace, "ledger"))
    finally:
        scheduler.shutdown()
    assert workspace.projections.history().documents_at("ledger:1") == folded(workspace, "ledger")


def test_two_schedulers_never_run_one_projection_at_once(
    location: str, registry: Registry, workspace: Workspace
) -> None:
    """Two workers on one store (each with its own connections): every event is applied
    once, no two runs of the same read model overlap in time, and when the worker
    holding the lease stops, the other takes over."""
    book(workspace, 0, 400)
    others = [Workspace(SqlEventStore.open(location), registry) for _ in range(2)]
    schedulers = {
        f"w{n}": ProjectionScheduler(
            w, references=["ledger"], worker=f"w{n}", lease_seconds=0.3, batch_size=10
        )
        for n, w in enumerate(others)
    }
    for scheduler in schedulers.values():
        scheduler.start()
    try:
        for round_ in range(6):
            book(workspace, 400 + 40 * round_, 40)
            wait_until(caught_up(workspace, "ledger"))
            if round_ == 2:  # the worker holding the lease goes away; the other goes on
                holder = workspace.projections.status("ledger").worker
                assert holder in schedulers
                schedulers.pop(holder).shutdown()
    finally:
        for scheduler in schedulers.values():
            scheduler.shutdown()
        for other in others:
            other.close()
    runs = workspace.projections.runs("ledger", limit=10_000)
    assert {r.worker for r in runs} == {"w0", "w1"}
    assert_runs_chain(runs, workspace.events.head_position(), handled=640)
    spans = sorted(
        (r.started_at, r.started_at + r.duration_us, r.worker)
        for r in runs
        if r.outcome in ("ok", "conflict")
    )
    for (_, end, who), (start, _, other) in itertools.pairwise(spans):
        assert who == other or start >= end - 2_000, "two workers ran ledger at once"
    assert workspace.projections.history().documents_at("ledger:1") == folded(workspace, "ledger")


@pytest.mark.postgres
def test_the_checkpoint_never_passes_an_open_append(pg_location: str, registry: Registry) -> None:
    """An append holds position 2 open; later appends wait behind it; the scheduled read
    model stops at 1, and once it commits every event is applied, none skipped."""
    setup = Workspace(SqlEventStore.open(pg_location), registry)
    book(setup, 0, 1)
    inside, release = threading.Event(), threading.Event()

    def held_clock() -> int:
        inside.set()
        assert release.wait(30)
        return wall_clock_micros()

    slow = SqlEventStore.open(pg_location, clock=held_clock)
    fast = SqlEventStore.open(pg_location)
    booked = lambda store, n: store.append_to_stream(  # noqa: E731
        f"account-a{n}", [NewEvent("Booked", {"account": f"a{n}", "amount": n})]
    )
    scheduler = ProjectionScheduler(setup, references=["ledger"], worker="w1")
    threads = [threading.Thread(target=booked, args=(slow, 1))]
    try:
        scheduler.start()
        wait_until(caught_up(setup, "ledger"))
        threads[0].start()
        assert inside.wait(30)
        threads += [threading.Thread(target=booked, args=(fast, n)) for n in (2, 3, 4)]
        for thread in threads[1:]:
            thread.start()
        time.sleep(0.6)  # several ticks while the append is open
        assert setup.projections.status("ledger").checkpoint == 1
        release.set()
        for thread in threads:
            thread.join(30)
        assert setup.events.head_position() == 5
        wait_until(caught_up(setup, "ledger"))
    finally:
        release.set()
        scheduler.shutdown()
        slow.close()
        fast.close()
    assert setup.projections.history().documents_at("ledger:1") == folded(setup, "ledger")
    runs = setup.projections.runs("ledger", limit=100)
    assert_runs_chain(runs, 5, handled=5)
    setup.close()


def test_a_run_that_cannot_take_its_lease_on_a_full_disk_is_reported_as_failed(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Taking the lease is the tick's first write: on a full disk it fails before the run
    # starts, and was only logged; the console now shows it from the reported tick.
    with Workspace(SqlEventStore.open(tmp_path / "store.db"), registry) as workspace:
        book(workspace, 0, 10)

        def full(*_args: object) -> None:
            raise StoreFull(f"{tmp_path}: the disk is full; free some space and try again")

        monkeypatch.setattr(workspace.projections, "take_lease", full)
        ticks: list[TickOutcome] = []
        scheduler = ProjectionScheduler(
            workspace, references=["ledger"], worker="w1", on_tick=ticks.append
        )
        scheduler.start()
        try:
            wait_until(lambda: bool(ticks))
        finally:
            scheduler.shutdown()
        assert ticks[0].failed and ticks[0].result is None
        assert "the disk is full" in (ticks[0].error or "")
        assert workspace.projections.status("ledger").state != "faulted"


def test_a_scheduler_started_on_a_full_disk_registers_its_projections_once_space_is_freed(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # start() registers never-run projections (a write): on a full disk it raised, and the
    # console's in-app projections never started, even after space was freed.
    with Workspace(SqlEventStore.open(tmp_path / "store.db"), registry) as workspace:
        book(workspace, 0, 10)
        ensure = workspace.projections.ensure
        disk = {"full": True}

        def ensure_unless_full(reference: str) -> Any:
            if disk["full"]:
                raise StoreFull(f"{tmp_path}: the disk is full; free some space and try again")
            return ensure(reference)

        monkeypatch.setattr(workspace.projections, "ensure", ensure_unless_full)
        ticks: list[TickOutcome] = []
        scheduler = ProjectionScheduler(
            workspace, references=["ledger"], worker="w1", on_tick=ticks.append
        )
        scheduler.start()
        try:
            wait_until(lambda: bool(ticks))
            assert ticks[0].failed and "the disk is full" in (ticks[0].error or "")
            disk["full"] = False
            wait_until(caught_up(workspace, "ledger"))
        finally:
            scheduler.shutdown()
