"""Run plain Python callables off the GUI thread and hand their outcome back as Qt signals."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from core.errors import Cancelled
from core.jobs import Job

__all__ = ["Task", "TaskGroup", "TaskRunner"]


class Task(QObject):
    """One callable submitted to a :class:`TaskRunner`.

    Its outcome arrives on the GUI thread as exactly one of three signals, each carrying
    the ``tag`` given to :meth:`TaskRunner.submit` first (callers use it to drop stale
    results, e.g. a generation counter that changes when a filter does). While it runs,
    ``progress`` carries what the core function reports through :mod:`core.jobs`.
    """

    succeeded = Signal(object, object)  # tag, the callable's return value
    failed = Signal(object, object)  # tag, the exception it raised
    cancelled = Signal(object)  # tag: cancel() was called before the outcome arrived
    progress = Signal(object, int, int)  # tag, done, total (on the GUI thread)

    def __init__(self, tag: object, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tag = tag
        #: Where a report from the pool thread goes (the runner queues it to its thread).
        self.forward: Callable[[int, int], None] | None = None
        self.job = Job(self._report)

    def cancel(self) -> None:
        """Stop the work at its next check (a running SQLite/PostgreSQL statement is
        interrupted); the task then emits ``cancelled`` instead of its outcome."""
        self.job.cancel()

    def _report(self, done: int, total: int) -> None:
        forward = self.forward
        try:
            if forward is not None:
                forward(done, total)
            else:
                self.progress.emit(self.tag, done, total)
        except RuntimeError:
            pass  # the task or its runner was deleted meanwhile


class _CallableRunnable(QRunnable):
    """Runs on a pool thread; reports back through the runner's private signal only."""

    def __init__(
        self, runner: TaskRunner, task_id: int, function: Callable[[], Any], job: Job
    ) -> None:
        super().__init__()
        self._runner = runner
        self._task_id = task_id
        self._function = function
        self._job = job

    def run(self) -> None:
        try:
            self._job.check()  # cancelled while queued: do not start
            with self._job.running():
                outcome, ok = self._function(), True
        except BaseException as error:  # every outcome must reach the GUI thread
            outcome, ok = error, False
        try:
            self._runner.task_completed.emit(self._task_id, ok, outcome)
        except RuntimeError:
            pass  # the runner was deleted while this ran: nobody is waiting any more


class TaskRunner(QObject):
    """A small thread pool for blocking work (store queries) that the GUI must not wait on.

    Submit a plain callable; the :class:`Task` returned emits ``succeeded``, ``failed`` or
    ``cancelled`` on the thread that owns the runner (the GUI thread). Call :meth:`shutdown`
    before closing whatever the callables use (the workspace).

    Args:
        max_threads: how many callables may run at once.
        parent: the usual QObject parent.
    """

    # Emitted from pool threads; queued to the runner's own thread by Qt. Progress goes
    # this way too: emitted on the task from a pool thread, a report made before the
    # caller connected ``progress`` would be lost (Qt finds no receiver then).
    task_completed = Signal(int, bool, object)
    task_progressed = Signal(int, int, int)  # task id, done, total

    def __init__(self, *, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # A private pool, so shutdown waits for our work only; not a child, so its
        # destructor never runs while a pool thread is still emitting on us.
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(max_threads)
        self._ids = itertools.count(1)
        self._tasks: dict[int, Task] = {}
        self._closed = False
        self.task_completed.connect(self._on_self_task_completed)
        self.task_progressed.connect(self._on_self_task_progressed)

    @property
    def pending(self) -> int:
        """How many submitted tasks have not reported back yet."""
        return len(self._tasks)

    def submit(self, function: Callable[[], Any], *, tag: object = None) -> Task:
        """Run ``function()`` on a pool thread.

        Args:
            function: a plain callable; it must not touch Qt widgets.
            tag: handed back with the outcome, unchanged.

        Returns:
            The task; connect to its signals before control returns to the event loop.
            Once the runner has shut down (the window is closing; a panel's timer may
            still fire), the callable never runs and the task reports ``cancelled``.
        """
        task_id = next(self._ids)
        task = Task(tag, self)
        self._tasks[task_id] = task
        if self._closed:
            task.cancel()
            closed = Cancelled("the task runner has been shut down")
            QTimer.singleShot(0, self, lambda: self._on_self_task_completed(task_id, False, closed))
            return task
        progressed = self.task_progressed
        task.forward = lambda done, total: progressed.emit(task_id, done, total)
        self._pool.start(_CallableRunnable(self, task_id, function, task.job))
        return task

    def cancel_all(self) -> None:
        """Cancel every task not reported back yet (e.g. before the store is reopened)."""
        for task in list(self._tasks.values()):
            task.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Refuse new work, drop work not started yet and wait for running work.

        Returns:
            Whether every running callable finished within the timeout.
        """
        self._closed = True
        self._pool.clear()
        self.cancel_all()
        finished = self._pool.waitForDone(timeout_ms)
        for task in self._tasks.values():
            task.deleteLater()
        self._tasks.clear()
        return finished

    @Slot(int, int, int)
    def _on_self_task_progressed(self, task_id: int, done: int, total: int) -> None:
        task = self._tasks.get(task_id)
        if task is not None:
            task.progress.emit(task.tag, done, total)

    @Slot(int, bool, object)
    def _on_self_task_completed(self, task_id: int, ok: bool, outcome: object) -> None:
        task = self._tasks.pop(task_id, None)
        if task is None:
            return  # shut down meanwhile
        # Cancelled first: a caller that cancelled no longer wants even a finished outcome.
        if task.job.cancelled or (not ok and isinstance(outcome, Cancelled)):
            task.cancelled.emit(task.tag)
        elif ok:
            task.succeeded.emit(task.tag, outcome)
        else:
            task.failed.emit(task.tag, outcome)
        task.deleteLater()


class TaskGroup(QObject):
    """The tasks one owner has in flight, to cancel together (say, the loads of a filter
    that has just been replaced). A task leaves the group when its outcome arrives.

    Args:
        parent: the usual QObject parent (the owner).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: list[Task] = []

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: Task) -> Task:
        """Hold ``task`` until its outcome arrives; returns it."""
        self._tasks.append(task)
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)
        task.cancelled.connect(self._on_task_cancelled)
        return task

    def cancel_all(self) -> None:
        """Cancel every task of the group; each still reports back (as ``cancelled``)."""
        for task in self._tasks:
            task.cancel()

    def _forget_sender(self) -> None:
        sender = self.sender()
        self._tasks = [task for task in self._tasks if task is not sender]

    @Slot(object, object)
    def _on_task_succeeded(self, _tag: object, _value: object) -> None:
        self._forget_sender()

    @Slot(object, object)
    def _on_task_failed(self, _tag: object, _error: object) -> None:
        self._forget_sender()

    @Slot(object)
    def _on_task_cancelled(self, _tag: object) -> None:
        self._forget_sender()
