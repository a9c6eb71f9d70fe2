"""Projections run by the console itself while its store is writable (DESIGN §7).

The console runs the worker's own :class:`~core.scheduler.ProjectionScheduler` (its
jobs on APScheduler threads, never on the GUI thread) under a worker name of its own,
so its runs take the same leases as ``eventscope worker``: a projection another worker
is running is left to it, and the status bar says which worker has it. Read-only, or
with the setting off, nothing runs here and the console only monitors. Starting and
stopping touch the store, so they run on the task runner (or on the thread that
switches the store); this object turns the scheduler's callbacks into Qt signals.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Final, cast

from PySide6.QtCore import QObject, QSettings, QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QWidget

from console.workers import TaskRunner
from core.scheduler import ProjectionScheduler
from core.services.projections import default_worker_name
from core.workspace import Workspace

__all__ = ["SAMPLE_INTERVAL_MS", "SETTING_KEY", "InAppProjections"]

#: The QSettings key of "run projections in the console when writable" (default on).
SETTING_KEY: Final = "projections/run_in_console"
#: How often the status bar asks who runs the projections.
SAMPLE_INTERVAL_MS: Final = 2_000


class InAppProjections(QObject):
    """The console's projection scheduler, its status bar label and its setting.

    Args:
        workspace: the store and its projections.
        runner: where store work runs (off the GUI thread).
        settings: where the setting persists (None: on, not saved).
        parent: the window (the label and the action belong to it).
    """

    run_finished = Signal(object)  # a core.scheduler.TickOutcome, queued to the GUI thread
    running_changed = Signal(bool)  # whether this console runs projections now
    workers_sampled = Signal(object)  # {other worker: projections it holds}

    def __init__(
        self,
        workspace: Workspace,
        runner: TaskRunner,
        *,
        settings: QSettings | None,
        parent: QWidget,
        sample_interval_ms: int = SAMPLE_INTERVAL_MS,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._runner = runner
        self._settings = settings
        self.worker = default_worker_name("console")
        self._scheduler: ProjectionScheduler | None = None
        self._lock = threading.Lock()
        self._others: dict[str, int] = {}
        self._sampling = False
        self._shut_down = False
        enabled = True if settings is None else settings.value(SETTING_KEY, True, type=bool)
        self.enabled = bool(enabled)

        self.label = QLabel("projections: …", parent)
        self.label.setObjectName("projectionsRunner")
        self.action = QAction("Run &projections here when writable", parent)
        self.action.setCheckable(True)
        self.action.setChecked(self.enabled)
        self.action.setStatusTip(
            "While the store is writable, keep its projections current from this console "
            "(a worker that holds a projection's lease keeps it)"
        )
        self.action.toggled.connect(self._on_action_toggled)
        self.running_changed.connect(self._on_self_running_changed)
        self._timer = QTimer(self)
        self._timer.setInterval(sample_interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()
        self._show()

    @property
    def running(self) -> bool:
        """Whether the scheduler is running in this console."""
        return self._scheduler is not None

    # -- starting and stopping (on a worker thread) -------------------------------------------

    def start(self) -> bool:
        """Start running projections here; nothing if the setting is off, the store is
        read-only, it is running already, or no projection is loaded. Blocks: call it
        off the GUI thread.

        Returns:
            Whether the scheduler runs now (never once :meth:`shut_down` was called).
        """
        with self._lock:
            if self._scheduler is not None:
                return True
            if self._shut_down:
                return False  # the window closed before this queued start ran
            workspace = self._workspace
            if not self.enabled or workspace.read_only or not workspace.registry.projections:
                return False
            logging.getLogger("apscheduler").setLevel(logging.ERROR)
            scheduler = ProjectionScheduler(
                workspace, worker=self.worker, on_tick=self.run_finished.emit
            )
            scheduler.start()
            self._scheduler = scheduler
        self.running_changed.emit(True)
        return True

    def stop(self) -> None:
        """Stop: runs in flight stop between batches and leases are given back. Blocks
        until they have (again: nothing)."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.shutdown()
        self.running_changed.emit(False)

    def start_later(self) -> None:
        """Start on the task runner (from the GUI thread)."""
        self._runner.submit(self.start)

    def shut_down(self) -> None:
        """Stop for good (the window is closing): no more samples, the scheduler stopped."""
        self._timer.stop()
        with self._lock:
            self._shut_down = True
        self.stop()

    # -- the label --------------------------------------------------------------------------

    def _show(self) -> None:
        if self.running:
            text, tip = "projections: run here", f"This console runs them as {self.worker}"
        elif self._workspace.read_only:
            text, tip = "projections: monitored", "Read-only: this console runs none"
        elif not self.enabled:
            text, tip = "projections: not run here", "Store → Run projections here is off"
        else:
            text, tip = "projections: starting…", ""
        if self._others:
            held = ", ".join(f"{worker} runs {n}" for worker, n in sorted(self._others.items()))
            text = f"{text} · {held}"
            tip = f"{tip}\nOther workers hold leases: {held}".strip()
        self.label.setText(text)
        self.label.setToolTip(tip)

    @Slot(bool)
    def _on_self_running_changed(self, _running: bool) -> None:
        self._show()

    @Slot(bool)
    def _on_action_toggled(self, checked: bool) -> None:
        self.enabled = checked
        if self._settings is not None:
            self._settings.setValue(SETTING_KEY, checked)
            self._settings.sync()
        if checked:
            self.start_later()
        else:
            self._runner.submit(self.stop)
        self._show()

    @Slot()
    def _on_timer_timeout(self) -> None:
        if self._sampling:
            return
        self._sampling = True
        projections, me = self._workspace.projections, self.worker

        def sample() -> dict[str, int]:
            holders = Counter(s.worker for s in projections.statuses() if s.worker)
            holders.pop(me, None)
            return dict(holders)

        task = self._runner.submit(sample)
        task.succeeded.connect(self._on_sample_task_succeeded)
        task.failed.connect(self._on_sample_task_failed)
        task.cancelled.connect(self._on_sample_task_cancelled)

    @Slot(object, object)
    def _on_sample_task_succeeded(self, _tag: object, others: object) -> None:
        self._sampling = False
        self._others = cast(dict[str, int], others)
        self._show()
        self.workers_sampled.emit(dict(self._others))

    @Slot(object, object)
    def _on_sample_task_failed(self, _tag: object, _error: object) -> None:
        self._sampling = False  # the store is being switched, or gone: the next beat asks

    @Slot(object)
    def _on_sample_task_cancelled(self, _tag: object) -> None:
        self._sampling = False
