"""The projections panel: every projection version's status, one version's lag and
throughput charts and run history, its fault, and the operator actions on it; below, the
relays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, cast

from PySide6.QtCore import QEvent, QModelIndex, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QFontDatabase, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from console.colours import error_colour
from console.empty_state import EmptyOr
from console.panels.projections.actions import (
    ACTIONS,
    ActionSpec,
    action_named,
    confirmation_text,
)
from console.panels.projections.chart import ProjectionChart
from console.panels.projections.loads import (
    History,
    format_duration,
    format_lag,
    format_rate,
    load_history,
    load_statuses,
    stored_versions,
)
from console.panels.projections.model import (
    COLUMN_CHECKPOINT,
    COLUMN_LAG,
    COLUMN_PROJECTION,
    COLUMN_STATE,
    COLUMN_THROUGHPUT,
    COLUMN_WORKER,
    RunsModel,
    StatusesModel,
)
from console.panels.projections.relays import RelaysSection
from console.record_table import record_table
from console.resources import icon
from console.workers import Task, TaskGroup, TaskRunner
from core.errors import last_line
from core.jobs import ProgressMeter
from core.relay.relay import RelayStatus
from core.services.events import EventQueries
from core.services.projections import (
    ProjectionService,
    ProjectionStatus,
    default_worker_name,
)

__all__ = [
    "EMPTY_TEXT",
    "READ_ONLY_TEXT",
    "REFRESH_INTERVAL_MS",
    "ProjectionsPanel",
    "describe_status",
]

EMPTY_TEXT: Final = "no projections yet: add a plugin, see docs/plugins.md"
READ_ONLY_TEXT: Final = "read-only: Store → Writable to act on a projection"
#: How often the statuses are read again while the panel is shown.
REFRESH_INTERVAL_MS: Final = 2_000
_MARGIN = 4

#: Confirm(parent, title, question) -> whether to go ahead.
Confirm = Callable[[QWidget, str, str], bool]
#: AskPosition(parent, status) -> the position to keep history from, or None to cancel.
AskPosition = Callable[[QWidget, ProjectionStatus], int | None]


def ask_confirmation(parent: QWidget, title: str, question: str) -> bool:
    """A modal question, Cancel by default (tests give the panel another ``confirm``)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(question)
    box.setInformativeText("This is recorded in the $audit stream.")
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setEscapeButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


def ask_retained_position(parent: QWidget, status: ProjectionStatus) -> int | None:
    """Ask from which position to keep a version's history (its checkpoint by default)."""
    since, ok = QInputDialog.getInt(
        parent,
        f"Retain {status.reference}",
        f"Keep {status.reference}'s history from position (0 – {status.checkpoint:,}):",
        status.checkpoint,
        0,
        max(status.checkpoint, 0),
    )
    return since if ok else None


def describe_status(status: ProjectionStatus) -> str:
    """What the details pane shows: a faulted version's event and whole traceback first,
    then its figures."""
    lines: list[str] = []
    if status.state == "faulted":
        error = (status.fault_error or "(no error recorded)").strip()
        lines += [
            f"{status.reference} faulted at position {status.fault_position} "
            f"(event {status.fault_event_id})",
            f"reason: {last_line(error)}",
            "",
            error,
            "",
        ]
    lines += [
        f"{status.reference}: {status.state}",
        f"checkpoint {status.checkpoint:,} of head {status.head:,}",
        f"lag: {format_lag(status.lag, status.lag_seconds)}",
        f"throughput: {format_rate(status.throughput)} (its runs of the last minute)",
        f"worker: {status.worker or 'none holds its lease'}",
        f"history kept from position {status.history_from:,}",
        f"run every {format_duration(status.interval)} by a scheduler",
    ]
    return "\n".join(lines)


class ProjectionsPanel(QWidget):
    """Every projection version: its state, checkpoint and head, lag, throughput and the
    worker holding its lease, read again every few seconds while the panel is shown (on
    the task runner, never on the GUI thread) and at once after an action or
    :meth:`refresh`.

    The selected version shows its lag and throughput over the last hour of runs, its
    run history, and, when faulted, the event it faulted on and the traceback, with a
    link to the event in the log. Actions (toolbar and context menu) apply to it while
    the store is writable (:meth:`set_writable`) and its state allows; each is audited
    by the service. Destructive ones ask first, naming what is lost, through
    :attr:`confirm` (and Retain asks the position through :attr:`ask_position`): tests
    replace both. Run now and Rebuild show their progress and can be cancelled.

    Args:
        projections: the statuses, runs and actions.
        runner: where all store work runs.
        events: the log's positions in time, from which the lag chart is derived (see
            :class:`~console.panels.projections.loads.History`); without it the chart
            shows the runs' throughput only.
        relays: reads every relay's status, shown in a Relays section below (see
            :class:`~console.panels.projections.relays.RelaysSection`); without it the
            panel has no such section.
        parent: the usual QWidget parent.
    """

    statuses_shown = Signal(int)  # versions shown
    history_shown = Signal(str)  # the version whose runs and charts are shown
    load_failed = Signal(str)  # one line
    action_finished = Signal(str, str)  # action, name:version
    action_failed = Signal(str, str, str)  # action, name:version, the one-line reason
    action_cancelled = Signal(str, str)  # action, name:version (a Cancel, or a "no")
    event_requested = Signal(str)  # the event id to show in the log

    def __init__(
        self,
        projections: ProjectionService,
        runner: TaskRunner,
        *,
        events: EventQueries | None = None,
        relays: Callable[[], Sequence[RelayStatus]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("projectionsPanel")
        self._projections = projections
        self._events = events
        self._runner = runner
        self._loads = TaskGroup(self)
        self._history_loads = TaskGroup(self)
        self._statuses_pending = False
        self._statuses_again = False
        self._history_generation = 0
        self._history_key: tuple[Any, ...] | None = None
        self._writable = False
        self._busy = False  # an action is being asked about or runs
        self._action_task: Task | None = None
        self._meter: ProgressMeter | None = None
        self._selected: str | None = None
        #: Who runs the projection for Run now and Rebuild (the window gives its own).
        self.worker = default_worker_name("console")
        #: Positions per transaction of Run now and Rebuild (None: the runner's default).
        self.batch_size: int | None = None
        # Plain functions, not bound methods: a panel referring to itself would live on
        # in a reference cycle, and be deleted by whichever thread collects it.
        self.confirm: Confirm = ask_confirmation
        self.ask_position: AskPosition = ask_retained_position

        self._build(relays)
        self._apply_palette()
        self.set_writable(False)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()

    # -- building -----------------------------------------------------------------------------

    def _build(self, relays: Callable[[], Sequence[RelayStatus]] | None) -> None:
        self._summary = QLabel("reading the projections…", self)
        self._summary.setObjectName("projectionsSummary")
        self._message = QLabel(self)
        self._message.setObjectName("projectionsMessage")
        self._message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._toolbar = QToolBar(self)
        self._toolbar.setObjectName("projectionsActions")
        self._toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._toolbar.setIconSize(QSize(16, 16))
        self._actions: dict[str, QAction] = {}
        for spec in ACTIONS:
            action = QAction(spec.label, self)
            action.setObjectName(f"projection_{spec.name}")
            action.setData(spec.name)
            action.setToolTip(spec.tip)
            action.setStatusTip(spec.tip)
            action.triggered.connect(self._on_action_triggered)
            self._actions[spec.name] = action
            self._toolbar.addAction(action)

        self._progress = QProgressBar(self)
        self._progress.setObjectName("projectionProgress")
        self._progress_label = QLabel(self)
        self._progress_label.setObjectName("projectionProgressText")
        self._cancel = QPushButton("Cancel", self)
        self._cancel.setObjectName("projectionCancel")
        self._cancel.setToolTip("Stop after the batch in flight (what was committed stays)")
        self._cancel.clicked.connect(self._on_cancel_clicked)
        self._progress_row = QWidget(self)
        progress_layout = QHBoxLayout(self._progress_row)
        progress_layout.setContentsMargins(0, 0, 0, 0)
        progress_layout.addWidget(self._progress, 1)
        progress_layout.addWidget(self._progress_label, 2)
        progress_layout.addWidget(self._cancel)
        self._progress_row.hide()

        self._model = StatusesModel(self)
        self._view = record_table(
            self,
            "projectionsTable",
            self._model,
            (
                (COLUMN_PROJECTION, "order_summary:2"),
                (COLUMN_STATE, "catching up"),
                (COLUMN_CHECKPOINT, "1,004,045 / 1,004,045"),
                (COLUMN_LAG, "120,000 ev · 59 min 59 s"),
                (COLUMN_THROUGHPUT, "120,000 ev/s"),
                (COLUMN_WORKER, "console:host:12345:abcd"),
            ),
        )
        self._view.horizontalHeader().setStretchLastSection(True)
        self._view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self._view.addActions(list(self._actions.values()))
        self._view.selectionModel().currentRowChanged.connect(
            self._on_selection_current_row_changed
        )

        self._chart = ProjectionChart(self)
        self._runs_model = RunsModel(self)
        self._runs_view = record_table(
            self,
            "projectionRuns",
            self._runs_model,
            ((0, "00:00:00"), (1, "console:host:1"), (2, "10,000 → 14,045"),
             (3, "14,045"), (4, "59.9 s"), (5, "cancelled")),
        )  # fmt: skip
        self._runs_view.horizontalHeader().setStretchLastSection(True)
        self._details = QPlainTextEdit(self)
        self._details.setObjectName("projectionDetails")
        self._details.setReadOnly(True)
        self._details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._details.setPlaceholderText("Select a projection version.")
        self._show_event = QPushButton("Show event in log", self)
        self._show_event.setObjectName("projectionShowEvent")
        self._show_event.setToolTip("Select the event the projection faulted on in the event log")
        self._show_event.clicked.connect(self._on_show_event_clicked)
        self._show_event.setEnabled(False)
        details = QWidget(self)
        details_layout = QVBoxLayout(details)
        details_layout.setContentsMargins(0, 0, 0, 0)
        details_layout.addWidget(self._details, 1)
        details_layout.addWidget(self._show_event, 0, Qt.AlignmentFlag.AlignLeft)
        self._tabs = QTabWidget(self)
        self._tabs.setObjectName("projectionTabs")
        self._tabs.addTab(self._runs_view, "Runs")
        self._tabs.addTab(details, "Details")

        lower = QSplitter(Qt.Orientation.Horizontal, self)
        lower.addWidget(self._chart)
        lower.addWidget(self._tabs)
        lower.setChildrenCollapsible(False)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 2)
        lower.setSizes([1000, 1000])
        self._splitter = QSplitter(Qt.Orientation.Vertical, self)
        self._splitter.addWidget(self._view)
        self._splitter.addWidget(lower)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.setStretchFactor(0, 2)
        self._splitter.setStretchFactor(1, 3)
        self._stack = EmptyOr(self._splitter, EMPTY_TEXT, "projectionsEmpty", self)
        self._empty = self._stack.label

        top = QHBoxLayout()
        top.addWidget(self._summary)
        top.addSpacing(24)
        top.addWidget(self._message, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self._toolbar)
        layout.addWidget(self._progress_row)
        # Built last: the projections come first in the focus chain.
        self._relays = None if relays is None else RelaysSection(relays, self._runner, self)
        if self._relays is None:
            layout.addWidget(self._stack, 1)
            return
        outer = QSplitter(Qt.Orientation.Vertical, self)
        outer.setObjectName("projectionsAndRelays")
        outer.addWidget(self._stack)
        outer.addWidget(self._relays)
        outer.setChildrenCollapsible(False)
        outer.setStretchFactor(0, 1)
        outer.setStretchFactor(1, 0)
        layout.addWidget(outer, 1)

    # -- state --------------------------------------------------------------------------------

    @property
    def model(self) -> StatusesModel:
        """The versions shown."""
        return self._model

    @property
    def view(self) -> QTableView:
        """The table of versions."""
        return self._view

    @property
    def runs_model(self) -> RunsModel:
        """The selected version's runs of the last hour."""
        return self._runs_model

    @property
    def relays(self) -> RelaysSection | None:
        """The Relays section (None: the panel was given no ``relays``)."""
        return self._relays

    @property
    def chart(self) -> ProjectionChart:
        """The selected version's lag and throughput."""
        return self._chart

    @property
    def details(self) -> QPlainTextEdit:
        """The selected version's figures, and its fault."""
        return self._details

    @property
    def tabs(self) -> QTabWidget:
        """Runs and Details."""
        return self._tabs

    @property
    def show_event_button(self) -> QPushButton:
        """Show the event a faulted version stopped at in the log."""
        return self._show_event

    @property
    def message_label(self) -> QLabel:
        """The last action's outcome, or why it failed, in one line."""
        return self._message

    @property
    def empty_label(self) -> QLabel:
        """Shown instead of the table when no projection is loaded."""
        return self._empty

    @property
    def progress_bar(self) -> QProgressBar:
        """Run now's or Rebuild's progress (positions done of to do)."""
        return self._progress

    @property
    def progress_label(self) -> QLabel:
        """Done/total, rate and time left."""
        return self._progress_label

    @property
    def cancel_button(self) -> QPushButton:
        """Stops a Run now or Rebuild in flight."""
        return self._cancel

    @property
    def selected_reference(self) -> str | None:
        """The selected version, ``name:version``."""
        return self._selected

    def action(self, name: str) -> QAction:
        """The toolbar's (and context menu's) action called ``name`` (see ``ACTIONS``)."""
        return self._actions[name]

    def action_button(self, name: str) -> QWidget:
        """The toolbar button of an action."""
        return self._toolbar.widgetForAction(self._actions[name])

    def select(self, reference: str) -> bool:
        """Select a version shown; returns whether it is shown."""
        row = self._model.row_of(reference)
        if row is None:
            return False
        self._view.setCurrentIndex(self._model.index(row, COLUMN_PROJECTION))
        return True

    # -- slots the window calls ---------------------------------------------------------------

    @Slot()
    @Slot(object)
    def refresh(self, _why: object = None) -> None:
        """Read the statuses again (now, or as soon as the read in flight is back); hidden,
        nothing is read until the panel is shown. The relays are read too."""
        if not self.isVisible():
            return
        if self._relays is not None:
            self._relays.refresh()
        if self._statuses_pending:
            self._statuses_again = True
            return
        self._statuses_pending = True
        projections = self._projections  # not self: a pool thread must not hold the panel
        task = self._loads.add(self._runner.submit(lambda: load_statuses(projections)))
        task.succeeded.connect(self._on_statuses_task_succeeded)
        task.failed.connect(self._on_statuses_task_failed)
        task.cancelled.connect(self._on_statuses_task_cancelled)

    @Slot(bool)
    def set_writable(self, writable: bool) -> None:
        """Enable the actions (as the selected version's state allows) or disable them all."""
        self._writable = writable
        self._update_actions()
        if not writable:
            self._show_message(READ_ONLY_TEXT)
        elif self._message.text() == READ_ONLY_TEXT:
            self._show_message("")

    # -- loading ------------------------------------------------------------------------------

    def _statuses_done(self) -> None:
        self._statuses_pending = False
        if self._statuses_again:
            self._statuses_again = False
            self.refresh()

    @Slot(object, object)
    def _on_statuses_task_succeeded(self, _tag: object, outcome: object) -> None:
        statuses = cast(list[ProjectionStatus], outcome)
        kept = self._selected
        self._model.set_statuses(statuses)
        self._stack.show_content(bool(statuses))
        faulted = sum(s.state == "faulted" for s in statuses)
        behind = sum(s.lag > 0 and s.state != "retired" for s in statuses)
        self._summary.setText(
            f"{len(statuses)} version(s): {behind} behind, {faulted} faulted"
            if statuses
            else "no projections"
        )
        row = None if kept is None else self._model.row_of(kept)
        if row is None and statuses:
            row = 0
        if row is not None and self._view.currentIndex().row() != row:
            self._view.setCurrentIndex(self._model.index(row, COLUMN_PROJECTION))
        else:
            self._show_selected()
        self.statuses_shown.emit(len(statuses))
        self._statuses_done()

    @Slot(object, object)
    def _on_statuses_task_failed(self, _tag: object, error: object) -> None:
        message = _one_line(error)
        self._summary.setText("could not read the projections")
        self._show_message(message, error=True)
        self.load_failed.emit(message)
        self._statuses_done()

    @Slot(object)
    def _on_statuses_task_cancelled(self, _tag: object) -> None:
        self._statuses_done()  # the store was being switched: the next beat reads again

    def _selected_status(self) -> ProjectionStatus | None:
        row = None if self._selected is None else self._model.row_of(self._selected)
        return None if row is None else self._model.status_at(row)

    def _show_selected(self) -> None:
        """Show the selected version's details and actions; load its runs if they moved."""
        status = self._selected_status()
        self._update_actions()
        if status is None:
            self._details.clear()
            self._show_event.setEnabled(False)
            self._runs_model.set_runs([])
            self._chart.clear("Select a projection to chart its last hour of runs.")
            self._history_key = None
            return
        self._details.setPlainText(describe_status(status))
        self._show_event.setEnabled(bool(status.fault_event_id))
        key = (status.reference, status.state, status.checkpoint, status.head)
        if key != self._history_key:
            self._history_key = key
            self._load_history(status.reference)

    def _load_history(self, reference: str) -> None:
        self._history_loads.cancel_all()
        self._history_generation += 1
        projections, events = self._projections, self._events

        def load() -> History:
            return load_history(projections, events, reference)

        task = self._history_loads.add(self._runner.submit(load, tag=self._history_generation))
        task.succeeded.connect(self._on_history_task_succeeded)
        task.failed.connect(self._on_history_task_failed)

    @Slot(object, object)
    def _on_history_task_succeeded(self, generation: object, outcome: object) -> None:
        if generation != self._history_generation:
            return
        history = cast(History, outcome)
        self._runs_model.set_runs(history.runs)
        self._chart.show_history(history)
        self.history_shown.emit(history.reference)

    @Slot(object, object)
    def _on_history_task_failed(self, generation: object, error: object) -> None:
        if generation != self._history_generation:
            return
        self._history_key = None  # try again at the next refresh
        message = _one_line(error)
        self._chart.clear(f"could not read the runs: {message}")
        self.load_failed.emit(message)

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_row_changed(self, current: QModelIndex, _old: QModelIndex) -> None:
        shown = self._model.status_at(current.row()) if current.isValid() else None
        self._selected = None if shown is None else shown.reference
        status = self._selected_status()
        if status is not None and status.state == "faulted":
            self._tabs.setCurrentIndex(1)  # the fault is what matters now
        self._show_selected()

    # -- actions ------------------------------------------------------------------------------

    def _update_actions(self) -> None:
        status = self._selected_status()
        idle = not self._busy
        for spec in ACTIONS:
            allowed = self._writable and idle and status is not None and spec.applies_to(status)
            self._actions[spec.name].setEnabled(allowed)
        tip = "" if self._writable else "The store is read-only: Store → Writable to act on it"
        self._toolbar.setToolTip(tip)

    @Slot()
    def _on_action_triggered(self) -> None:
        action = cast(QAction, self.sender())
        self.trigger(str(action.data()))

    def trigger(self, name: str) -> None:
        """Apply an action to the selected version, asking first if it drops something
        (what the toolbar and the context menu do)."""
        status = self._selected_status()
        spec = action_named(name)
        if status is None or not self._actions[name].isEnabled():
            return
        if name == "retain":
            since = self.ask_position(self, status)
            if since is None:
                self._declined(spec, status.reference)
                return
            question = confirmation_text(name, status, since=since)
            self._confirm_then_start(spec, status, question, since)
        elif name in ("reset", "retire"):
            self._count_then_confirm(spec, status)
        elif spec.destructive:
            self._confirm_then_start(spec, status, confirmation_text(name, status))
        else:
            self._start(spec, status.reference)

    def _count_then_confirm(self, spec: ActionSpec, status: ProjectionStatus) -> None:
        """Count what a reset or retire drops (off the GUI thread), then ask."""
        self._set_busy(True)
        projections, reference = self._projections, status.reference
        task = self._runner.submit(
            lambda: stored_versions(projections, reference), tag=(spec.name, status)
        )
        task.succeeded.connect(self._on_count_task_succeeded)
        task.failed.connect(self._on_count_task_failed)
        task.cancelled.connect(self._on_count_task_cancelled)

    def _ask_then_start(self, tag: object, versions: int | None) -> None:
        name, status = cast(tuple[str, ProjectionStatus], tag)
        self._set_busy(False)
        question = confirmation_text(name, status, versions=versions)
        self._confirm_then_start(action_named(name), status, question)

    @Slot(object, object)
    def _on_count_task_succeeded(self, tag: object, versions: object) -> None:
        self._ask_then_start(tag, cast(int, versions))

    @Slot(object, object)
    def _on_count_task_failed(self, tag: object, _error: object) -> None:
        self._ask_then_start(tag, None)  # it still asks, without the count

    @Slot(object)
    def _on_count_task_cancelled(self, _tag: object) -> None:
        self._set_busy(False)

    def _confirm_then_start(
        self, spec: ActionSpec, status: ProjectionStatus, question: str, since: int | None = None
    ) -> None:
        if not self.confirm(self, f"{spec.label.rstrip('…')} {status.reference}", question):
            self._declined(spec, status.reference)
            return
        self._start(spec, status.reference, since)

    def _declined(self, spec: ActionSpec, reference: str) -> None:
        self._show_message(f"{spec.label.rstrip('…')} {reference}: not done")
        self.action_cancelled.emit(spec.name, reference)

    def _start(self, spec: ActionSpec, reference: str, since: int | None = None) -> None:
        call = self._call(spec.name, reference, since)
        self._show_message(f"{spec.label.rstrip('…')} {reference}…")
        task = self._runner.submit(call, tag=(spec.name, reference))
        self._set_busy(True, task)
        if spec.long:
            self._meter = ProgressMeter()
            self._progress.setRange(0, 0)  # busy until the first report
            self._progress_label.setText(f"{spec.label} {reference}: starting…")
            self._cancel.setEnabled(True)
            self._progress_row.show()
            task.progress.connect(self._on_action_task_progress)
        task.succeeded.connect(self._on_action_task_succeeded)
        task.failed.connect(self._on_action_task_failed)
        task.cancelled.connect(self._on_action_task_cancelled)

    def _call(self, name: str, reference: str, since: int | None) -> Callable[[], object]:
        projections, worker, batch = self._projections, self.worker, self.batch_size
        if name in ("run", "rebuild"):
            rebuild = name == "rebuild"
            return lambda: projections.run_leased(
                reference, worker=worker, rebuild=rebuild, batch_size=batch, audited=True
            )
        if name == "retain":
            return lambda: projections.retain(reference, cast(int, since))
        method = cast(Callable[[str], object], getattr(projections, name))
        return lambda: method(reference)

    def _set_busy(self, busy: bool, task: Task | None = None) -> None:
        self._busy = busy
        self._action_task = task if busy else None
        self._update_actions()

    def _finish_action(self) -> None:
        self._set_busy(False)
        self._meter = None
        self._progress_row.hide()
        self._history_key = None  # the runs and the lag changed
        self.refresh()

    @Slot(object, int, int)
    def _on_action_task_progress(self, _tag: object, done: int, total: int) -> None:
        if self._meter is None:
            return
        progress = self._meter.measure(done, total)
        self._progress_label.setText(progress.describe("events"))
        self._progress.setRange(0, max(total, 1))
        self._progress.setValue(min(done, max(total, 1)))

    @Slot(object, object)
    def _on_action_task_succeeded(self, tag: object, _outcome: object) -> None:
        name, reference = cast(tuple[str, str], tag)
        self._finish_action()
        self._show_message(f"{action_named(name).label.rstrip('…')} {reference}: done")
        self.action_finished.emit(name, reference)

    @Slot(object, object)
    def _on_action_task_failed(self, tag: object, error: object) -> None:
        name, reference = cast(tuple[str, str], tag)
        self._finish_action()
        message = _one_line(error)
        self._show_message(
            f"{action_named(name).label.rstrip('…')} {reference} failed: {message}", error=True
        )
        self.action_failed.emit(name, reference, message)

    @Slot(object)
    def _on_action_task_cancelled(self, tag: object) -> None:
        name, reference = cast(tuple[str, str], tag)
        where = self._progress_label.text()
        self._finish_action()
        self._show_message(f"{action_named(name).label} {reference} cancelled ({where})")
        self.action_cancelled.emit(name, reference)

    @Slot()
    def _on_cancel_clicked(self) -> None:
        task = self._action_task
        if task is not None:
            self._cancel.setEnabled(False)
            self._progress_label.setText(f"{self._progress_label.text()} — cancelling…")
            task.cancel()

    @Slot()
    def _on_show_event_clicked(self) -> None:
        status = self._selected_status()
        if status is not None and status.fault_event_id:
            self.event_requested.emit(status.fault_event_id)

    # -- asking -------------------------------------------------------------------------------

    # -- looks --------------------------------------------------------------------------------

    def _show_message(self, text: str, *, error: bool = False) -> None:
        self._message.setText(text)
        self._message.setToolTip(text)
        palette = self._message.palette()
        colour = (
            error_colour(self.palette())
            if error
            else self.palette().color(QPalette.ColorRole.WindowText)
        )
        palette.setColor(QPalette.ColorRole.WindowText, colour)
        self._message.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        """Recolour faulted versions and failed runs when the palette changes (a theme)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        colour = error_colour(self.palette())
        self._model.set_warning_colour(colour)
        self._runs_model.set_warning_colour(colour)
        # The actions' icons (resources/icons), drawn in the text's colour of the theme.
        ink = self.palette().color(QPalette.ColorRole.WindowText)
        for name, action in self._actions.items():
            action.setIcon(icon(name, ink))
        self._cancel.setIcon(icon("cancel", ink))
        self._show_event.setIcon(icon("show-event", ink))

    def showEvent(self, event: QShowEvent) -> None:
        """Read the statuses at once when shown (hidden, the timer leaves the store alone)."""
        super().showEvent(event)
        self.refresh()

    @Slot()
    def _on_timer_timeout(self) -> None:
        if self.isVisible():
            self.refresh()


def _one_line(error: object) -> str:
    return last_line(str(error)) or type(error).__name__
