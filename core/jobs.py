"""Cancel flags and progress reports for long store work, run by a worker thread.

A caller that may run long work (a search over millions of events, a count, the
search indexer catching up) makes a :class:`Job`, runs the work inside
``with job.running():`` on its worker thread, and keeps the job to :meth:`Job.cancel`
it from any other thread. The store checks the job between pages and, where the
database allows, inside a running statement (SQLite's progress handler, PostgreSQL's
query cancel); a cancelled job's work raises :class:`~core.errors.Cancelled`.

:meth:`Job.cancel` never waits: the hooks that interrupt running statements (a server
round trip on PostgreSQL) run on one shared daemon thread, started at the first cancel
that has hooks to run.

Core functions call :func:`checkpoint` as they go; it reports progress to the job
running on this thread, if any, and raises once that job is cancelled.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

from core.errors import Cancelled

__all__ = ["Job", "Progress", "ProgressCallback", "ProgressMeter", "checkpoint", "current_job"]

#: Called with (done, total) in whatever unit the work counts (events, buckets, ...).
ProgressCallback = Callable[[int, int], None]

_current: ContextVar[Job | None] = ContextVar("eventscope_job", default=None)


class Job:
    """A cancel flag and a progress sink for one piece of work.

    Args:
        on_progress: called on the working thread with (done, total); keep it cheap
            and thread-safe (a Qt signal emit is both).
    """

    def __init__(self, on_progress: ProgressCallback | None = None) -> None:
        self._on_progress = on_progress
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._on_cancel: dict[int, _Hook] = {}
        self._next_hook = 0

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Ask the work to stop (from any thread); it raises Cancelled at its next check.

        Returns at once: the :meth:`on_cancel` hooks run on a background thread (the GUI
        thread cancels tasks, and a PostgreSQL query cancel is a server round trip).
        """
        with self._lock:
            if self._cancelled.is_set():
                return
            self._cancelled.set()
            hooks = list(self._on_cancel.values())
        if hooks:
            runner = _hook_runner()
            for hook in hooks:
                runner.submit(hook.run)

    def check(self) -> None:
        """Raise Cancelled if the job has been cancelled."""
        if self._cancelled.is_set():
            raise Cancelled("cancelled")

    def report(self, done: int, total: int) -> None:
        """Report progress, then raise Cancelled if the job has been cancelled."""
        if self._on_progress is not None:
            self._on_progress(done, total)
        self.check()

    @contextmanager
    def on_cancel(self, hook: Callable[[], None]) -> Iterator[None]:
        """Run ``hook`` (on a background thread) if the job is cancelled inside the block.

        The store uses it to interrupt a statement that is running on a connection. Once
        the block has exited the hook never runs (the connection may be serving another
        query by then); the exit waits for a hook that is already running.
        """
        registered = _Hook(hook)
        with self._lock:
            key = self._next_hook
            self._next_hook += 1
            self._on_cancel[key] = registered
        try:
            yield
        finally:
            with self._lock:
                del self._on_cancel[key]
            registered.retire()

    @contextmanager
    def running(self) -> Iterator[Job]:
        """Make this the current job of the thread (and context) for the block."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


class _Hook:
    """A cancel hook that can be retired: after :meth:`retire` it never runs."""

    __slots__ = ("_action", "_lock", "_retired")

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._lock = threading.Lock()  # held while the action runs
        self._retired = False

    def run(self) -> None:
        """Run the action unless retired (on the hook runner's thread)."""
        with self._lock:
            if self._retired:
                return
            try:
                self._action()
            except Exception:  # a hook interrupts a statement; failing to is not fatal
                pass

    def retire(self) -> None:
        """Never run from now on (waits for a run in progress to end)."""
        with self._lock:
            self._retired = True


class _HookRunner:
    """One daemon thread that runs submitted cancel hooks in turn, in submission order."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._work, name="eventscope-cancel-hooks", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether its thread runs (not in a child process forked after it started)."""
        return self._thread.is_alive()

    def submit(self, task: Callable[[], None]) -> None:
        """Run ``task`` on the runner's thread after the tasks submitted before it."""
        self._tasks.put(task)

    def _work(self) -> None:
        while True:
            self._tasks.get()()


_runner: _HookRunner | None = None
_runner_lock = threading.Lock()


def _hook_runner() -> _HookRunner:
    """The shared hook runner, started on first use."""
    global _runner
    with _runner_lock:
        if _runner is None or not _runner.alive:
            _runner = _HookRunner()
        return _runner


def current_job() -> Job | None:
    """The job running on this thread, if any."""
    return _current.get()


def checkpoint(done: int | None = None, total: int | None = None) -> None:
    """Report progress to the current job, if any, and raise Cancelled if it was cancelled.

    Without arguments it only checks for cancellation.
    """
    job = _current.get()
    if job is None:
        return
    if done is not None and total is not None:
        job.report(done, total)
    else:
        job.check()


class Progress(NamedTuple):
    """How far long work has come: done of total, the rate so far, the time left."""

    done: int
    total: int
    rate: float  # units per second since the work began
    eta: float | None  # seconds left at that rate (None before anything was done)

    def describe(self, unit: str = "events") -> str:
        """``120,000/1,004,045 events (12%), 85,123 events/s, 10 s left``."""
        percent = 100 * self.done // self.total if self.total else 100
        text = f"{self.done:,}/{self.total:,} {unit} ({percent}%), {self.rate:,.0f} {unit}/s"
        return text if self.eta is None else f"{text}, {self.eta:,.0f} s left"


class ProgressMeter:
    """Turns (done, total) reports into :class:`Progress` with a rate and a time left.

    Args:
        clock: seconds, monotonic (tests inject one).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._began = clock()

    def measure(self, done: int, total: int) -> Progress:
        """The progress at this report."""
        elapsed = self._clock() - self._began
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        return Progress(done, total, rate, eta)
