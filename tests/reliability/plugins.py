"""Hostile plugins (issue 15, point 7): plugin files that exit or interrupt at import,
and projections whose handlers raise, spin, sleep, hoard memory or dawdle, run by a
writable console's own scheduler while its GUI thread's heartbeat is measured.

Each bad plugin must be a failed plugin (the app lives on); each bad projection must be
faulted at its event while the good one catches up; the GUI thread must keep its
heartbeat (a 20 ms timer) within 200 ms at p99 throughout.
"""

from __future__ import annotations

import statistics
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

TITLE: Final = "Hostile plugins"

HEARTBEAT_MS: Final = 20
#: How long faulted projections are retried (and misbehave again) once all have settled.
MISBEHAVING_SECONDS: Final = 5.0
EVENTS: Final = 300

BAD_IMPORTS: Final = {
    "leaver": "import sys\nsys.exit(2)\n",
    "interrupter": "raise KeyboardInterrupt\n",
    "base_raiser": "class Odd(BaseException):\n    pass\n\nraise Odd('odd')\n",
}

PROJECTIONS: Final = textwrap.dedent(
    '''
    """Projections that misbehave in every way a handler can, and one that does not."""

    import time

    from core.api import Projection, handles


    class Good(Projection):
        name = "good"
        interval = 0.1

        @handles("Tick")
        def tick(self, view, event):
            doc = view.get("all") or {"count": 0}
            doc["count"] += 1
            view.put("all", doc)


    class Raiser(Projection):
        name = "raiser"
        interval = 0.1

        @handles("Tick")
        def tick(self, view, event):
            if event.data["n"] == 150:
                raise ValueError("tick 150 is bad")
            view.put(str(event.data["n"]), {})


    class Dawdler(Projection):
        """In process: spins calling the view (so its deadline can stop it)."""

        name = "dawdler"
        interval = 0.1
        time_limit = 0.3

        @handles("Tick")
        def tick(self, view, event):
            while event.data["n"] == 100:
                view.get("x")


    class Spinner(Projection):
        name = "spinner"
        interval = 0.1
        time_limit = 0.5
        isolated = True

        @handles("Tick")
        def tick(self, view, event):
            while event.data["n"] == 50:
                pass


    class Sleeper(Projection):
        name = "sleeper"
        interval = 0.1
        time_limit = 0.5
        isolated = True

        @handles("Tick")
        def tick(self, view, event):
            if event.data["n"] == 60:
                time.sleep(600)


    class Hoarder(Projection):
        name = "hoarder"
        interval = 0.1
        time_limit = 5.0
        isolated = True
        memory_limit = 64

        @handles("Tick")
        def tick(self, view, event):
            if event.data["n"] == 70:
                hoard = [bytearray(8 * 1024 * 1024) for _ in range(256)]
                raise RuntimeError(f"hoarded {len(hoard) * 8} MiB unchecked")
    '''
)
#: What each projection must end as: its state and what its fault says.
EXPECTED: Final = {
    "good:1": ("caught up", None),
    "raiser:1": ("faulted", "ValueError: tick 150 is bad"),
    "dawdler:1": ("faulted", "HandlerTimedOut"),
    "spinner:1": ("faulted", "HandlerTimedOut"),
    "sleeper:1": ("faulted", "HandlerTimedOut"),
    "hoarder:1": ("faulted", "MemoryError"),
}


@dataclass(frozen=True, slots=True)
class Result:
    """What the study saw."""

    failed_plugins: dict[str, str]  # name -> last line of its error
    states: dict[str, tuple[str, str | None]]  # reference -> (state, fault's last line)
    lateness_ms: list[float]  # how late each heartbeat came
    seconds: float  # the whole measurement: settling, then the retries
    settled: bool  # every projection ended as expected
    retries: int  # faulted projections retried (to misbehave again) while measuring

    @property
    def p50(self) -> float:
        return statistics.median(self.lateness_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.lateness_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def as_expected(self) -> list[str]:
        """What differs from EXPECTED (empty: all as expected)."""
        wrong = []
        for reference, (state, fault) in EXPECTED.items():
            got_state, got_fault = self.states.get(reference, ("missing", None))
            if got_state != state or (fault is not None and fault not in (got_fault or "")):
                wrong.append(f"{reference}: {got_state} ({got_fault})")
        missing = set(BAD_IMPORTS) - set(self.failed_plugins)
        if missing:
            wrong.append(f"plugins not failed: {sorted(missing)}")
        return wrong


def study(workdir: Path, timeout: float = 90.0) -> Result:
    """Open a writable console on a store of Tick events with the hostile plugins."""
    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from console.main_window import MainWindow
    from console.workers import TaskRunner
    from core.errors import EventscopeError, last_line
    from core.workspace import Workspace

    folder = workdir / "plugins"
    folder.mkdir()
    for name, body in BAD_IMPORTS.items():
        (folder / f"{name}.py").write_text(body)
    (folder / "misbehaving.py").write_text(PROJECTIONS)
    location = str(workdir / "ticks.db")
    with Workspace.open(location, read_only=False, load_plugins=False) as seeding:
        for n in range(1, EVENTS + 1):
            seeding.writing.append("ticker-1", "Tick", {"n": n})

    if QApplication.instance() is None:
        QApplication([])  # the study run outside pytest-qt
    workspace = Workspace.open(location, read_only=False, plugin_dirs=[folder])
    failed = {
        info.name: last_line(info.error or "")
        for info in workspace.registry.plugins
        if info.status == "failed"
    }
    runner = TaskRunner()
    window = MainWindow(workspace, runner)
    window.show()
    lateness: list[float] = []
    last = [time.monotonic()]

    def beat() -> None:
        now = time.monotonic()
        lateness.append(max(0.0, (now - last[0]) * 1000 - HEARTBEAT_MS))
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(beat)
    states: dict[str, tuple[str, str | None]] = {}
    settled = threading.Event()

    done = threading.Event()
    retried = [0]

    def watch() -> None:  # off the GUI thread: reading the store must not skew the beat
        with Workspace.open(location, plugin_dirs=[folder]) as probe:
            while not settled.is_set() and not done.is_set():
                for status in probe.projections.statuses():
                    fault = last_line(status.fault_error) if status.fault_error else None
                    states[status.reference] = (status.state, fault)
                if all_settled(states):
                    settled.set()
                time.sleep(0.25)
        # Then keep them misbehaving: retry every faulted one, again and again, for
        # MISBEHAVING_SECONDS, while the heartbeat goes on.
        with Workspace.open(location, read_only=False, plugin_dirs=[folder]) as operator:
            until = time.monotonic() + MISBEHAVING_SECONDS
            while time.monotonic() < until and not done.is_set():
                for reference, (state, _fault) in EXPECTED.items():
                    if state == "faulted":
                        try:
                            operator.projections.retry(reference)
                            retried[0] += 1
                        except EventscopeError:
                            pass  # not faulted again yet
                time.sleep(0.6)
        done.set()

    watcher = threading.Thread(target=watch, name="watch", daemon=True)
    started = time.monotonic()
    loop = QEventLoop()
    finish = QTimer()
    finish.setInterval(100)
    finish.timeout.connect(
        lambda: loop.quit() if done.is_set() or time.monotonic() - started > timeout else None
    )
    heartbeat.start()
    watcher.start()
    finish.start()
    loop.exec()
    heartbeat.stop()
    finish.stop()
    seconds = time.monotonic() - started
    done.set()
    watcher.join(10)
    window.close()
    window.in_app_projections.shut_down()
    window.deleteLater()
    runner.shutdown()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    workspace.close()
    return Result(failed, dict(states), lateness[1:], seconds, settled.is_set(), retried[0])


def all_settled(states: dict[str, tuple[str, str | None]]) -> bool:
    return all(states.get(ref, ("", None))[0] == want for ref, (want, _) in EXPECTED.items())


def run(full: bool, workdir: Path) -> str:
    result = study(workdir)
    rows = ["| projection | ends as | fault |", "|---|---|---|"]
    for reference, (state, fault) in sorted(result.states.items()):
        rows.append(f"| {reference} | {state} | {fault or ''} |")
    plugin_rows = ["| plugin file | outcome |", "|---|---|"]
    for name, error in sorted(result.failed_plugins.items()):
        plugin_rows.append(f"| {name}.py | failed: {error} |")
    wrong = result.as_expected()
    return "\n".join(
        [
            "A plugin folder holds three files that call `sys.exit`, raise "
            "`KeyboardInterrupt` and raise a `BaseException` subclass at import, and one "
            "whose projections raise (in process), spin calling the view (in process, "
            "0.3 s limit), spin without calling the view, sleep 600 s and allocate without bound "
            "(isolated: 0.5 s and 64 MiB), beside a good one. A writable console opens on "
            f"{EVENTS} events with that folder; its own scheduler runs them while a "
            f"{HEARTBEAT_MS} ms timer on the GUI thread measures how late each beat comes, "
            "until every projection has ended as expected and then while the faulted ones "
            "are retried again and again.",
            "",
            f"**{len(result.failed_plugins)} failed plugins, the app alive; every projection as "
            f"expected: {'yes' if not wrong else 'no: ' + '; '.join(wrong)}; then "
            f"{result.retries} retries of the faulted ones over {MISBEHAVING_SECONDS:g} s made "
            f"them misbehave again ({result.seconds:.1f} s in all). GUI heartbeat lateness over "
            f"{len(result.lateness_ms):,} "
            f"beats: p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms, max "
            f"{max(result.lateness_ms):.0f} ms (target: p99 under 200 ms).**",
            "",
            *plugin_rows,
            "",
            *rows,
            "",
            'Reproduce: `make reliability RELIABILITY_ARGS="--only plugins"` (the same run is '
            "tests/reliability/test_plugins.py in `make test`).",
        ]
    )
