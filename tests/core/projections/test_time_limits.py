"""Time limits of projection handlers: a cooperative deadline in process, a killed child
process for isolated projections, and the batch, retry and skip semantics of a timeout.

Every case runs the projections of a real plugin file from disk (``faulty_plugin.py``)
on a real SQLite file and on PostgreSQL, with real child processes, and compares the
read model with the in-memory fold of the events it should have applied.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.api import Projection, handles
from core.projections.fold import fold_projection
from core.projections.history import SqlHistoryStore
from core.projections.isolation import IsolationFailed
from core.projections.runner import ProjectionRunner
from core.registry import Registry
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace

#: The time limit of the plugin's projections, in seconds.
LIMIT = 0.5
#: What a timed-out isolated run may take beyond the kill: the kill is due within
#: LIMIT plus two looks at the child (LIMIT / 10 each), then one fresh interpreter
#: starts and imports the plugin (core.api brings SQLAlchemy: about 0.4 s here) to
#: apply the batch's earlier events again, and the batch commits. 1.5 s leaves room
#: for a loaded two-core machine; a run that was not stopped would take 60 s or more.
START_ALLOWANCE = 1.5


class IsolatedTally(Projection):
    """Defined in this test module: its child process imports it by module name."""

    name = "isolated_tally"
    isolated = True

    @handles("Booked")
    def booked(self, view: Any, event: Any) -> None:
        doc = view.get("all") or {"count": 0}
        doc["count"] += 1
        view.put("all", doc)


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(
    request: pytest.FixtureRequest, tmp_path: Path, faulty_registry: Registry
) -> Iterator[Workspace]:
    if request.param == "sqlite":
        location = str(tmp_path / "store.db")
    else:
        location = str(request.getfixturevalue("pg_location"))
    opened = Workspace(SqlEventStore.open(location), faulty_registry)
    yield opened
    opened.close()


def book(workspace: Workspace, count: int, **special: dict[str, Any]) -> dict[int, int]:
    """Append ``count`` Booked events over three accounts; ``special`` maps an event's
    index (as ``n7``) to extra data. Returns {index: position}."""
    positions = {}
    for n in range(count):
        data = {"account": f"a{n % 3}", "amount": n + 1, **special.get(f"n{n}", {})}
        positions[n] = workspace.writing.append(f"account-a{n % 3}", "Booked", data).position
    return positions


def fold(workspace: Workspace, *, upto: int | None = None, skip: int | None = None) -> Any:
    """The ledger of the Booked events up to ``upto``, without the one at ``skip``."""
    events = [
        e
        for e in workspace.events.read(EventFilter(types=("Booked",), to_position=upto))
        if e.position != skip
    ]
    return fold_projection(workspace.registry.projection("ledger"), events)


def documents(workspace: Workspace, name: str) -> Any:
    return workspace.projections.history().documents_at(f"{name}:1")


def handler_processes() -> set[int]:
    """The child processes of this process that apply isolated handlers."""
    found = set()
    for child in psutil.Process().children():
        try:
            if any("core.projections.handler_process" in part for part in child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue  # ended meanwhile
    return found


def ended(pid: int, timeout: float = 10.0) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


# -- isolated: killed past the limit ---------------------------------------------------------


@pytest.mark.parametrize("how", ["sleep", "spin"])
def test_an_isolated_handler_blocked_or_spinning_is_killed_within_twice_its_limit(
    workspace: Workspace, how: str
) -> None:
    book(workspace, 4)
    assert workspace.projections.run("stuck").fault is None  # its process is started
    positions = book(workspace, 10, n6={"stuck": how})
    stuck = positions[6]
    began = time.monotonic()
    result = workspace.projections.run("stuck")
    elapsed = time.monotonic() - began
    assert elapsed < 2 * LIMIT + START_ALLOWANCE, elapsed
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (stuck, stuck - 1)
    assert "time limit of 0.5 s (its process was killed)" in result.fault.error
    # The batch's six events before it are committed with the fault; nothing after it.
    assert result.events == 6
    assert documents(workspace, "stuck") == fold(workspace, upto=stuck - 1)
    status = workspace.projections.status("stuck")
    assert (status.state, status.checkpoint, status.fault_position) == (
        "faulted",
        stuck - 1,
        stuck,
    )
    # The next batches commit on the same store: step over the event and go on.
    workspace.projections.skip("stuck")
    book(workspace, 5)
    finished = workspace.projections.run("stuck")
    assert finished.fault is None and finished.checkpoint == workspace.events.head_position()
    assert documents(workspace, "stuck") == fold(workspace, skip=stuck)


def test_an_isolated_handler_that_raises_faults_with_its_traceback(workspace: Workspace) -> None:
    positions = book(workspace, 9, n5={"stuck": "raise"})
    raised = positions[5]
    result = workspace.projections.run("stuck")
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (raised, raised - 1)
    assert "Traceback" in result.fault.error
    assert result.fault.error.endswith("ValueError: cannot book a2: stuck")
    assert documents(workspace, "stuck") == fold(workspace, upto=raised - 1)
    workspace.projections.retry("stuck")  # still raises: faulted again, at the same event
    again = workspace.projections.run("stuck")
    assert again.fault is not None and again.fault.position == raised


def test_an_isolated_handler_allocating_without_bound_faults_at_its_memory_limit(
    workspace: Workspace,
) -> None:
    positions = book(workspace, 6, n3={"stuck": "hoard"})
    hoarded = positions[3]
    result = workspace.projections.run("stuck")
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (hoarded, hoarded - 1)
    assert result.fault.error.endswith("MemoryError")  # its process hit its cap, not ours
    assert documents(workspace, "stuck") == fold(workspace, upto=hoarded - 1)


def test_an_isolated_handler_whose_process_dies_faults_at_its_event(
    workspace: Workspace,
) -> None:
    positions = book(workspace, 8, n4={"stuck": "exit"})
    died = positions[4]
    result = workspace.projections.run("stuck")
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (died, died - 1)
    assert "HandlerProcessDied" in result.fault.error and "exit code 3" in result.fault.error
    assert documents(workspace, "stuck") == fold(workspace, upto=died - 1)


def test_a_timeout_in_a_later_batch_commits_the_earlier_batches_and_its_own_earlier_events(
    tmp_path: Path, faulty_registry: Registry
) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db"), faulty_registry)
    positions = book(workspace, 30, n23={"stuck": "spin"})
    result = workspace.projections.run("stuck", batch_size=10)  # faults in the third batch
    spun = positions[23]
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint, result.events) == (spun, spun - 1, 23)
    assert documents(workspace, "stuck") == fold(workspace, upto=spun - 1)
    workspace.close()


# -- retries after a timeout -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["gated", "gated_isolated"])
def test_a_retried_event_that_timed_out_runs_to_completion(
    workspace: Workspace, name: str, tmp_path: Path
) -> None:
    """Each event takes 50 ms (a tenth of the limit). An event whose gate file exists
    runs past the limit; once the file is gone, a retry applies it and the rest in
    time, cycle after cycle, through the same runner."""
    gate = tmp_path / "gate"
    for cycle in range(3):
        gate.touch()
        positions = book(workspace, 8, n3={"gate": str(gate)})
        faulted = workspace.projections.run(name)
        assert faulted.fault is not None, cycle
        assert faulted.fault.position == positions[3], cycle
        assert "time limit of 0.5 s" in faulted.fault.error
        assert documents(workspace, name) == fold(workspace, upto=positions[3] - 1)
        gate.unlink()
        workspace.projections.retry(name)
        finished = workspace.projections.run(name)
        assert finished.fault is None, (cycle, finished.fault)
        assert finished.checkpoint == workspace.events.head_position()
        assert finished.events == 5
    assert documents(workspace, name) == fold(workspace)
    runs = workspace.projections.runs(name, limit=100)
    assert [run.outcome for run in reversed(runs)] == ["faulted", "ok"] * 3


# -- in process: the cooperative deadline ----------------------------------------------------


def test_a_handler_past_its_limit_is_faulted_at_its_next_view_call(
    workspace: Workspace, tmp_path: Path
) -> None:
    marker = tmp_path / "reached"
    positions = book(workspace, 7, n4={"dawdle": "then_get", "marker": str(marker)})
    late = positions[4]
    result = workspace.projections.run("dawdling")
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (late, late - 1)
    assert result.fault.error == (
        "HandlerTimedOut: the handler ran past the projection's time limit of 0.5 s "
        "(stopped at its view.get call)"
    )
    # Raised at the view.get: its `except Exception` did not swallow it, the rest of
    # the handler never ran.
    assert not marker.exists()
    assert documents(workspace, "dawdling") == fold(workspace, upto=late - 1)
    workspace.projections.skip("dawdling")
    finished = workspace.projections.run("dawdling")
    assert finished.fault is None and finished.checkpoint == workspace.events.head_position()
    assert documents(workspace, "dawdling") == fold(workspace, skip=late)


def test_a_handler_past_its_limit_is_faulted_when_it_returns(workspace: Workspace) -> None:
    positions = book(workspace, 7, n2={"dawdle": "then_return"})
    late = positions[2]
    result = workspace.projections.run("dawdling")
    assert result.fault is not None
    assert (result.fault.position, result.checkpoint) == (late, late - 1)
    assert result.fault.error.endswith("of 0.5 s (faulted when it returned)")
    # What it wrote before it ran late is dropped with the event.
    assert documents(workspace, "dawdling") == fold(workspace, upto=late - 1)


def test_handlers_well_within_their_limit_are_never_faulted(workspace: Workspace) -> None:
    book(workspace, 40)  # 20 ms each: 0.8 s in all, the limit applies to each call
    result = workspace.projections.run("dawdling")
    assert result.fault is None and result.events == 40
    assert documents(workspace, "dawdling") == fold(workspace)


# -- the child processes ---------------------------------------------------------------------


def test_a_runner_reuses_its_process_and_close_or_dropping_it_stops_it(
    tmp_path: Path, faulty_registry: Registry
) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db"), faulty_registry)
    history = workspace.projections.history()
    runner = ProjectionRunner(history, faulty_registry.projection("stuck"), batch_size=3)
    before = handler_processes()
    book(workspace, 10)
    runner.run()  # four batches
    book(workspace, 5)
    runner.run()
    started = handler_processes() - before
    assert len(started) == 1  # one process for every batch and run
    runner.close()
    runner.close()  # idempotent
    (pid,) = started
    assert ended(pid)
    book(workspace, 2)
    assert runner.run().checkpoint == workspace.events.head_position()  # a new one, when needed
    (again,) = handler_processes() - before
    assert again != pid
    del runner
    gc.collect()
    assert ended(again)
    assert documents(workspace, "stuck") == fold(workspace)
    workspace.close()


@pytest.mark.parametrize("parent", ["exits", "is killed"])
def test_no_handler_process_outlives_its_parent(
    tmp_path: Path, faulty_registry: Registry, parent: str
) -> None:
    """A console that exits without closing its runners, or is killed outright while a
    handler sleeps in its child, leaves no handler process behind."""
    plugins = tmp_path / "faulty-plugins"
    store = tmp_path / "store.db"
    script = textwrap.dedent(
        f"""
        import psutil
        from core.registry import Registry
        from core.store import SqlEventStore
        from core.workspace import Workspace

        registry = Registry.discover([{str(plugins)!r}], environ={{}}, builtin=False,
                                     entry_points=False)
        workspace = Workspace(SqlEventStore.open({str(store)!r}), registry)
        workspace.writing.append("account-a0", "Booked", {{"account": "a0", "amount": 1}})
        workspace.projections.run("gated_isolated")
        print(*[child.pid for child in psutil.Process().children()], flush=True)
        if {parent == "is killed"}:
            gate = {str(tmp_path / "gate")!r}
            open(gate, "w").close()
            workspace.writing.append("account-a0", "Booked", {{"account": "a0", "amount": 2,
                                                       "gate": gate}})
            print("applying", flush=True)
            workspace.projections.run("gated_isolated")
        """
    )
    script_process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert script_process.stdout is not None
        pids = [int(pid) for pid in script_process.stdout.readline().split()]
        assert len(pids) == 1, script_process.stderr
        if parent == "is killed":
            assert script_process.stdout.readline() == b"applying\n"
            time.sleep(0.2)  # the child is in the gated handler (killed at 0.5 s)
            script_process.kill()
        script_process.wait(30)
        assert script_process.returncode == (-9 if parent == "is killed" else 0)
        assert ended(pids[0]), "the handler process outlived its parent"
    finally:
        if script_process.poll() is None:
            script_process.kill()
        script_process.wait()


def test_isolated_projections_load_from_plugin_packages_and_by_module_name(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "plugins"
    package = folder / "counting"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A plugin package."""\n')
    (package / "rules.py").write_text("def bump(doc):\n    doc['n'] += 1\n    return doc\n")
    (package / "model.py").write_text(
        textwrap.dedent(
            """
            from core.api import Projection, handles

            from .rules import bump


            class Counting(Projection):
                name = "counting"
                isolated = True

                @handles("Booked")
                def booked(self, view, event):
                    key = event.data["account"]
                    view.put(key, bump(view.get(key) or {"n": 0}))
            """
        )
    )
    registry = Registry.discover([folder], environ={}, builtin=False, entry_points=False)
    assert not registry.failed, registry.failed
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db"), registry)
    book(workspace, 7)
    assert workspace.projections.run("counting").fault is None
    assert documents(workspace, "counting") == {"a0": {"n": 3}, "a1": {"n": 2}, "a2": {"n": 2}}
    history = workspace.projections.history()
    runner = ProjectionRunner(history, IsolatedTally)
    assert runner.run().fault is None
    assert history.documents_at("isolated_tally:1") == {"all": {"count": 7}}
    runner.close()
    workspace.close()


def test_an_isolated_projection_its_process_cannot_import_fails_the_run(tmp_path: Path) -> None:
    class Local(Projection):
        name = "local"
        isolated = True

        @handles("Booked")
        def booked(self, view: Any, event: Any) -> None:
            view.put("x", {})

    store = SqlEventStore.open(tmp_path / "store.db")
    history = SqlHistoryStore(store)
    workspace = Workspace(store)
    book(workspace, 2)
    with pytest.raises(IsolationFailed, match="defined at the top level"):
        ProjectionRunner(history, Local).run()
    (run,) = history.runs("local:1")
    assert (run.outcome, run.to_position) == ("failed", 0)
    store.close()


def test_no_asynchronous_exceptions_are_left_in_the_engine() -> None:
    """Nothing in core/ raises into another thread: a thread may hold a connection."""
    core = Path(__file__).resolve().parents[3] / "core"
    sources = sorted(core.rglob("*.py"))
    assert len(sources) > 20
    for source in sources:
        text = source.read_text()
        assert "PyThreadState_SetAsyncExc" not in text, source
        assert "ctypes" not in text, source
