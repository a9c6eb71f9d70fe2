"""The task runner: progress from core checkpoints, cancelling running and queued work."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QObject, Slot
from pytestqt.qtbot import QtBot

from console.workers import Task, TaskGroup, TaskRunner
from core.errors import Cancelled
from core.jobs import checkpoint

SIGNAL_TIMEOUT_MS = 5_000


class OutcomeRecorder(QObject):
    """Records a task's signals, and whether each arrived on the GUI thread."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.progress: list[tuple[object, int, int]] = []
        self.outcomes: list[tuple[str, object]] = []
        self.on_gui_thread: list[bool] = []
        task.progress.connect(self.on_progress)
        task.succeeded.connect(self.on_succeeded)
        task.failed.connect(self.on_failed)
        task.cancelled.connect(self.on_cancelled)

    def _arrived(self) -> None:
        self.on_gui_thread.append(threading.current_thread() is threading.main_thread())

    @Slot(object, int, int)
    def on_progress(self, tag: object, done: int, total: int) -> None:
        self._arrived()
        self.progress.append((tag, done, total))

    @Slot(object, object)
    def on_succeeded(self, tag: object, _value: object) -> None:
        self._arrived()
        self.outcomes.append(("succeeded", tag))

    @Slot(object, object)
    def on_failed(self, tag: object, _error: object) -> None:
        self._arrived()
        self.outcomes.append(("failed", tag))

    @Slot(object)
    def on_cancelled(self, tag: object) -> None:
        self._arrived()
        self.outcomes.append(("cancelled", tag))


class Spinner:
    """A callable that checks for cancellation until ``seconds`` pass (then returns)."""

    def __init__(self, seconds: float = 20.0) -> None:
        self.seconds = seconds
        self.started = threading.Event()
        self.stopped_by: list[str] = []

    def __call__(self) -> str:
        self.started.set()
        deadline = time.monotonic() + self.seconds
        try:
            while time.monotonic() < deadline:
                checkpoint()
                time.sleep(0.001)
        except Cancelled:
            self.stopped_by.append("cancel")
            raise
        self.stopped_by.append("deadline")
        return "ran to the end"


@pytest.fixture
def own_runners(qapp: Any) -> Iterator[list[TaskRunner]]:
    """Runners a test makes with its own thread count; shut down after it."""
    made: list[TaskRunner] = []
    yield made
    for runner in made:
        runner.shutdown()


def test_checkpoints_in_the_callable_arrive_as_progress_on_the_gui_thread(
    qtbot: QtBot, runner: TaskRunner
) -> None:
    connected = threading.Event()

    def count_to_five() -> str:
        connected.wait(SIGNAL_TIMEOUT_MS / 1000)  # reports made while connected (and see below)
        for done in range(5):
            checkpoint(done, 5)
        return "counted"

    task = runner.submit(count_to_five, tag="count")
    recorder = OutcomeRecorder(task)
    with qtbot.waitSignal(task.succeeded, timeout=SIGNAL_TIMEOUT_MS) as finished:
        connected.set()

    assert finished.args == ["count", "counted"]
    assert recorder.progress == [("count", done, 5) for done in range(5)]
    assert recorder.outcomes == [("succeeded", "count")]
    assert recorder.on_gui_thread == [True] * 6


def test_progress_reported_before_the_caller_connects_still_arrives_in_order(
    qtbot: QtBot, runner: TaskRunner
) -> None:
    finished = threading.Event()

    def count_at_once() -> str:
        for done in range(3):
            checkpoint(done, 3)
        finished.set()
        return "counted"

    task = runner.submit(count_at_once, tag="quick")
    assert finished.wait(SIGNAL_TIMEOUT_MS / 1000)  # every report made before connect()
    recorder = OutcomeRecorder(task)
    qtbot.waitUntil(lambda: recorder.outcomes != [], timeout=SIGNAL_TIMEOUT_MS)

    assert recorder.progress == [("quick", done, 3) for done in range(3)]
    assert recorder.outcomes == [("succeeded", "quick")]  # after the progress, not before
    assert recorder.on_gui_thread == [True] * 4


def test_cancelling_a_running_task_stops_it_and_reports_cancelled_only(
    qtbot: QtBot, runner: TaskRunner
) -> None:
    spinner = Spinner()
    task = runner.submit(spinner, tag="spin")
    recorder = OutcomeRecorder(task)
    assert spinner.started.wait(SIGNAL_TIMEOUT_MS / 1000)

    with qtbot.waitSignal(task.cancelled, timeout=SIGNAL_TIMEOUT_MS) as cancelled:
        task.cancel()

    assert cancelled.args == ["spin"]
    assert spinner.stopped_by == ["cancel"]
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert recorder.outcomes == [("cancelled", "spin")]


def test_a_task_cancelled_after_its_callable_returned_reports_cancelled_not_its_value(
    qtbot: QtBot, runner: TaskRunner
) -> None:
    returning = threading.Event()

    def answer() -> int:
        returning.set()
        return 42

    task = runner.submit(answer, tag="answer")
    recorder = OutcomeRecorder(task)
    # The GUI thread is busy here, so the outcome cannot have been delivered yet.
    assert returning.wait(SIGNAL_TIMEOUT_MS / 1000)
    with qtbot.waitSignal(task.cancelled, timeout=SIGNAL_TIMEOUT_MS):
        task.cancel()

    assert recorder.outcomes == [("cancelled", "answer")]


def test_a_task_cancelled_while_queued_never_runs(
    qtbot: QtBot, own_runners: list[TaskRunner]
) -> None:
    runner = TaskRunner(max_threads=1)
    own_runners.append(runner)
    gate = threading.Event()
    ran: list[str] = []
    blocker = runner.submit(lambda: gate.wait(SIGNAL_TIMEOUT_MS / 1000), tag="blocker")
    queued = runner.submit(lambda: ran.append("queued ran"), tag="queued")
    recorder = OutcomeRecorder(queued)

    queued.cancel()
    with qtbot.waitSignals([blocker.succeeded, queued.cancelled], timeout=SIGNAL_TIMEOUT_MS):
        gate.set()

    assert ran == []
    assert recorder.outcomes == [("cancelled", "queued")]
    assert runner.pending == 0


def test_shutdown_cancels_running_work_instead_of_waiting_for_it_to_end(
    qtbot: QtBot, own_runners: list[TaskRunner]
) -> None:
    runner = TaskRunner()
    own_runners.append(runner)
    spinner = Spinner(seconds=20.0)
    runner.submit(spinner)
    assert spinner.started.wait(SIGNAL_TIMEOUT_MS / 1000)

    # Uncancelled, the spinner would outlast this timeout and shutdown would say so.
    assert runner.shutdown(timeout_ms=10_000)
    assert spinner.stopped_by == ["cancel"]
    # Work submitted afterwards (a panel's timer firing while its window closes) never
    # runs; its task reports cancelled.
    ran: list[bool] = []
    late = runner.submit(lambda: ran.append(True))
    with qtbot.waitSignal(late.cancelled, timeout=SIGNAL_TIMEOUT_MS):
        pass
    assert ran == []


def test_a_task_group_cancels_its_own_tasks_only_and_forgets_finished_ones(
    qtbot: QtBot, own_runners: list[TaskRunner]
) -> None:
    runner = TaskRunner(max_threads=3)
    own_runners.append(runner)
    group = TaskGroup()
    gate = threading.Event()
    spinner = Spinner()
    grouped = group.add(runner.submit(spinner, tag="grouped"))
    other = runner.submit(lambda: gate.wait(SIGNAL_TIMEOUT_MS / 1000), tag="other")
    quick = group.add(runner.submit(lambda: "quick", tag="quick"))
    with qtbot.waitSignal(quick.succeeded, timeout=SIGNAL_TIMEOUT_MS):
        pass
    assert len(group) == 1  # the quick one left when it finished
    other_outcomes = OutcomeRecorder(other)
    assert spinner.started.wait(SIGNAL_TIMEOUT_MS / 1000)

    with qtbot.waitSignal(grouped.cancelled, timeout=SIGNAL_TIMEOUT_MS):
        group.cancel_all()
    assert spinner.stopped_by == ["cancel"]
    assert len(group) == 0
    with qtbot.waitSignal(other.succeeded, timeout=SIGNAL_TIMEOUT_MS) as finished:
        gate.set()
    assert finished.args == ["other", True]  # not cancelled: it was not in the group
    assert other_outcomes.outcomes == [("succeeded", "other")]
