"""The time-travel panel: a read model or a stream at any point of the log, one event at a time."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any, cast

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.colours import error_colour
from console.panels.timetravel.chart import TimeTravelChart
from console.panels.timetravel.describe import describe_change, describe_diff, describe_event
from console.panels.timetravel.documents_model import DocumentsModel
from console.panels.timetravel.loads import (
    Overview,
    Page,
    View,
    load_overview,
    load_page,
    load_view,
)
from console.workers import Task, TaskGroup, TaskRunner
from core.events import to_micros
from core.services.events import EventQueries
from core.services.projections import ProjectionService
from core.services.timetravel import ReadModelAt, TimeTravel
from core.timetravel.diff import DiffSummary
from core.timetravel.lineage import EventEffect
from core.timetravel.reference import InvalidReference, Point

__all__ = ["DRAG_DELAY_MS", "TimeTravelPanel"]

DRAG_DELAY_MS = 60
_EMPTY, _DOCUMENTS, _STREAM = 0, 1, 2
_NO_PROJECTIONS = "No projections loaded: add a plugin (see docs/plugins.md), or pick a stream."
_PICK = "Pick a read model or type a stream id to see it at the cursor."


class TimeTravelPanel(QWidget):
    """A read model (or a stream) as it was at a cursor on the log's timeline.

    Drag cursor A on the chart, type a position or a time into the jump field, or step
    one event back or forward (buttons, or Left/Right in the table). The read model's
    documents load a page at a time as the table scrolls; the documents the event at the
    cursor changed are tinted and their changes listed below the table. "Set B here"
    keeps the current point as B and summarises the changes between A and B.

    Every store call runs on the task runner; a new point cancels the loads still
    running for the old one, and their results are dropped.

    Args:
        timetravel: read models and streams at a point.
        events: the log (timeline, positions, events).
        projections: the loaded projections and their runs.
        runner: where the store calls run.
        parent: the usual QWidget parent.
    """

    cursor_moved = Signal(int)  # the position now shown
    lineage_requested = Signal(str, str)  # reference with its point, document key
    documents_loaded = Signal(int)  # rows in the table after a page arrived
    step_shown = Signal(int)  # the position whose event's effect is now shown
    load_failed = Signal(str)

    def __init__(
        self,
        timetravel: TimeTravel,
        events: EventQueries,
        projections: ProjectionService,
        runner: TaskRunner,
        *,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("timeTravelPanel")
        self._timetravel = timetravel
        self._events = events
        self._projections = projections
        self._runner = runner
        self._tasks = TaskGroup(self)
        self._generation = 0
        self._view_task: Task | None = None
        self._overview: Overview | None = None
        self._position: int | None = None
        self._cursor_us: int | None = None
        self._b: tuple[int, int | None] | None = None  # position, time (µs)
        self._at: ReadModelAt | None = None
        self._stream: str | None = None
        self._drag_time: datetime | None = None
        self._build()
        self._drag_timer = QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.timeout.connect(self._on_drag_timer_timeout)
        self.reload()

    def _build(self) -> None:
        self._combo = QComboBox(self)
        self._combo.setObjectName("timeTravelModel")
        self._combo.setMinimumContentsLength(16)
        self._combo.addItems(self._projections.references())
        self._combo.setCurrentIndex(-1)
        self._combo.setPlaceholderText("read model…")
        self._combo.setToolTip("A loaded projection version (name:version)")
        self._combo.currentIndexChanged.connect(self._on_combo_current_index_changed)
        self._stream_edit = QLineEdit(self)
        self._stream_edit.setPlaceholderText("or a stream id, Enter")
        self._stream_edit.returnPressed.connect(self._on_stream_edit_return_pressed)
        self._jump = QLineEdit(self)
        self._jump.setPlaceholderText("jump: position or ISO time with zone, Enter")
        self._jump.setToolTip("A position (1500), an ISO-8601 time with a zone, or head")
        self._jump.returnPressed.connect(self._on_jump_return_pressed)
        self._jump_error = QLabel(self)
        self._jump_error.setObjectName("timeTravelJumpError")
        jump_palette = self._jump_error.palette()
        jump_palette.setColor(QPalette.ColorRole.WindowText, error_colour(self.palette()))
        self._jump_error.setPalette(jump_palette)
        top = QHBoxLayout()
        top.addWidget(QLabel("Read model", self))
        top.addWidget(self._combo)
        top.addWidget(self._stream_edit, 1)
        top.addWidget(self._jump, 2)
        top.addWidget(self._jump_error)

        self._chart = TimeTravelChart(self)
        self._chart.setMinimumHeight(150)
        self._chart.cursor_dragged.connect(self._on_chart_cursor_dragged)
        self._chart.cursor_released.connect(self._on_chart_cursor_released)

        self._back = QPushButton("◀ Back", self)
        self._back.setToolTip("Step one event back (Left in the table)")
        self._back.clicked.connect(self._on_back_clicked)
        self._forward = QPushButton("Forward ▶", self)
        self._forward.setToolTip("Step one event forward (Right in the table)")
        self._forward.clicked.connect(self._on_forward_clicked)
        self._event_label = QLabel("", self)
        self._event_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._set_b = QPushButton("Set B here", self)
        self._set_b.setToolTip("Keep this point as B and show the changes between A and B")
        self._set_b.clicked.connect(self._on_set_b_clicked)
        self._clear_b = QPushButton("Clear B", self)
        self._clear_b.setEnabled(False)
        self._clear_b.clicked.connect(self._on_clear_b_clicked)
        steps = QHBoxLayout()
        for widget in (self._back, self._forward):
            steps.addWidget(widget)
        steps.addWidget(self._event_label, 1)
        steps.addWidget(self._set_b)
        steps.addWidget(self._clear_b)

        self._diff_label = QLabel("", self)
        self._diff_label.setWordWrap(True)
        self._diff_label.hide()
        self._progress = QProgressBar(self)
        self._progress.setTextVisible(True)
        self._cancel = QPushButton("Cancel", self)
        self._cancel.clicked.connect(self._on_cancel_clicked)
        self._progress_row = QWidget(self)
        row = QHBoxLayout(self._progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._progress, 1)
        row.addWidget(self._cancel)
        self._progress_row.hide()

        self._model = DocumentsModel(self)
        self._model.more_requested.connect(self._on_documents_model_more_requested)
        self._table = QTableView(self)
        self._table.setObjectName("timeTravelDocuments")
        self._table.setModel(self._model)
        self._table.setSortingEnabled(True)
        self._table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self._table.horizontalHeader().setDefaultSectionSize(110)
        self._table.verticalHeader().hide()
        self._table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._table.customContextMenuRequested.connect(self._on_table_context_menu_requested)
        self._table.doubleClicked.connect(self._on_table_double_clicked)
        self._table.installEventFilter(self)
        self._effect = QPlainTextEdit(self)
        self._effect.setReadOnly(True)
        self._effect.setPlaceholderText("what the event at the cursor changed")
        documents = QSplitter(Qt.Orientation.Vertical, self)
        documents.addWidget(self._table)
        documents.addWidget(self._effect)
        documents.setStretchFactor(0, 4)
        documents.setStretchFactor(1, 1)

        self._stream_events = QListWidget(self)
        self._stream_events.installEventFilter(self)
        self._stream_state = QPlainTextEdit(self)
        self._stream_state.setReadOnly(True)
        stream = QSplitter(Qt.Orientation.Horizontal, self)
        stream.addWidget(self._stream_events)
        stream.addWidget(self._stream_state)

        self._empty = QLabel(_PICK if self._combo.count() else _NO_PROJECTIONS, self)
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._stack = QStackedWidget(self)
        for page in (self._empty, documents, stream):
            self._stack.addWidget(page)

        self._status = QLabel("", self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self._chart, 2)
        layout.addLayout(steps)
        layout.addWidget(self._diff_label)
        layout.addWidget(self._progress_row)
        layout.addWidget(self._stack, 5)
        layout.addWidget(self._status)
        self._update_buttons()

    # -- state --------------------------------------------------------------------------------

    @property
    def documents_model(self) -> DocumentsModel:
        """The table model of the documents at the cursor."""
        return self._model

    @property
    def table(self) -> QTableView:
        """The documents table (Left/Right step while it has focus)."""
        return self._table

    @property
    def chart(self) -> TimeTravelChart:
        """The timeline chart with the cursors."""
        return self._chart

    @property
    def cursor_line(self) -> Any:
        """Cursor A on the chart (a ``pg.InfiniteLine``)."""
        return self._chart.cursor_line

    @property
    def cursor_position(self) -> int | None:
        """The position shown (None until the first point has loaded)."""
        return self._position

    @property
    def b_position(self) -> int | None:
        """Cursor B's position, if set."""
        return None if self._b is None else self._b[0]

    @property
    def model_combo(self) -> QComboBox:
        """The read-model picker."""
        return self._combo

    @property
    def stream_edit(self) -> QLineEdit:
        """The stream id field (Enter shows the stream)."""
        return self._stream_edit

    @property
    def step_back_button(self) -> QPushButton:
        """Steps one event back."""
        return self._back

    @property
    def step_forward_button(self) -> QPushButton:
        """Steps one event forward."""
        return self._forward

    @property
    def set_b_button(self) -> QPushButton:
        """Keeps the current point as B."""
        return self._set_b

    @property
    def jump_edit(self) -> QLineEdit:
        """The jump field: a position or an ISO-8601 time, then Enter."""
        return self._jump

    @property
    def jump_error(self) -> str:
        """The jump field's error, or ''."""
        return self._jump_error.text()

    @property
    def event_label(self) -> QLabel:
        """The event at the cursor (the one last applied)."""
        return self._event_label

    @property
    def effect_view(self) -> QPlainTextEdit:
        """What the event at the cursor changed, one ``key  path: before → after`` a line."""
        return self._effect

    @property
    def diff_label(self) -> QLabel:
        """The summary of changes between A and B."""
        return self._diff_label

    @property
    def stream_events_view(self) -> QListWidget:
        """The stream's events up to the cursor."""
        return self._stream_events

    @property
    def stream_state_view(self) -> QPlainTextEdit:
        """The stream's folded state (JSON)."""
        return self._stream_state

    @property
    def progress_bar(self) -> QProgressBar:
        """The progress of a fold (shown while one runs)."""
        return self._progress

    @property
    def cancel_button(self) -> QPushButton:
        """Cancels the fold running."""
        return self._cancel

    @property
    def status_label(self) -> QLabel:
        """What is shown, from where, or what went wrong."""
        return self._status

    @property
    def empty_label(self) -> QLabel:
        """What to do when there is nothing to show."""
        return self._empty

    @property
    def loading(self) -> bool:
        """Whether a point is being loaded."""
        return self._view_task is not None

    # -- public slots -------------------------------------------------------------------------

    @Slot(int)
    def show_position(self, position: int) -> None:
        """Move the cursor to a log position and show the read model or stream there."""
        self._request(position)

    @Slot()
    def reload_references(self) -> None:
        """Offer the projection versions loaded now (the plugins were reloaded): the one
        shown stays chosen if it is still loaded, and is shown again from its new code."""
        current = self._combo.currentText() if self._combo.currentIndex() >= 0 else None
        self._combo.blockSignals(True)
        self._combo.clear()
        self._combo.addItems(self._projections.references())
        index = self._combo.findText(current) if current else -1
        self._combo.setCurrentIndex(index)
        self._combo.blockSignals(False)
        if current is not None:
            self._request(self._position)
        elif self._stream is None:
            self._empty.setText(_PICK if self._combo.count() else _NO_PROJECTIONS)

    @Slot()
    def reload(self) -> None:
        """Load the chart again (the store has grown) and show the current point again."""
        width = self._chart.width() if self._chart.isVisible() else 0
        target = max(100, min(600, width // 3))
        events, projections = self._events, self._projections
        task = self._runner.submit(lambda: load_overview(events, projections, target))
        task.succeeded.connect(self._on_overview_task_succeeded)
        task.failed.connect(self._on_overview_task_failed)

    # -- loading ------------------------------------------------------------------------------

    def _request(self, point: int | datetime | None, *, forward: bool = False) -> None:
        self._tasks.cancel_all()
        self._generation += 1
        model = self._combo.currentText() if self._combo.currentIndex() >= 0 else None
        stream, timetravel, events = self._stream, self._timetravel, self._events
        b = None if self._b is None else self._b[0]
        connected = threading.Event()

        def load() -> View:
            connected.wait()  # a progress report emitted before its connection would be lost
            return load_view(
                timetravel,
                events,
                point,
                model=model,
                stream_id=stream,
                b_position=b,
                forward=forward,
            )

        task = self._tasks.add(self._runner.submit(load, tag=self._generation))
        task.succeeded.connect(self._on_view_task_succeeded)
        task.failed.connect(self._on_view_task_failed)
        task.cancelled.connect(self._on_view_task_cancelled)
        task.progress.connect(self._on_view_task_progress)
        connected.set()
        self._view_task = task
        self._update_buttons()

    def _show_view(self, view: View) -> None:
        self._position = view.position
        if view.event is not None:
            self._cursor_us = to_micros(view.event.recorded_at)
            self._event_label.setText(describe_event(view.event))
        else:
            start = self._overview.view_us[0] if self._overview is not None else None
            self._cursor_us = start
            self._event_label.setText("#0 · before the first event")
        if self._cursor_us is not None and not self._chart.cursor_line.moving:
            self._chart.place_cursor(self._cursor_us, f"A #{view.position}")
        self._at = view.at
        if view.stream_events is not None:
            self._show_stream(view)
        elif view.at is not None and view.page is not None:
            self._show_documents(view.at, view.page, view.effect, view.diff)
        else:
            self._stack.setCurrentIndex(_EMPTY)
            self._status.setText(f"at #{view.position}")
        self._update_buttons()
        self.cursor_moved.emit(view.position)
        if view.at is not None:
            self.documents_loaded.emit(self._model.rowCount())
            self.step_shown.emit(view.position)

    def _show_documents(
        self, at: ReadModelAt, page: Page, effect: EventEffect | None, diff: DiffSummary | None
    ) -> None:
        self._stack.setCurrentIndex(_DOCUMENTS)
        self._model.reset_rows()
        self._model.append_page(page.rows, has_more=page.has_more)
        changes = effect.changes if effect is not None else ()
        self._model.set_changed((change.key, change.paths) for change in changes)
        QTimer.singleShot(0, self, self._scroll_to_changed)  # once the table has laid out
        if effect is None:
            self._effect.setPlainText("")
        elif not effect.handled:
            self._effect.setPlainText(f"{at.model} has no handler for {effect.event.type}.")
        elif not changes:
            self._effect.setPlainText(f"{effect.event.type} changed no document of {at.model}.")
        else:
            event = effect.event
            count = f"{len(changes)} document{'s' if len(changes) > 1 else ''}"
            lines = [f"#{event.position} {event.type} changed {count}:"]
            lines += [line for change in changes for line in describe_change(change)]
            self._effect.setPlainText("\n".join(lines))
        source = "from history" if at.from_history else "folded from the log (no history here)"
        more = "+" if page.has_more else ""
        self._status.setText(
            f"{at.model} at #{at.position}, {source}: {self._model.rowCount()}{more} documents"
        )
        self._show_diff(at.position, diff)

    def _scroll_to_changed(self) -> None:
        changed = set(self._model.changed_keys())
        for row, key in enumerate(self._model.keys()):
            if key in changed:
                self._table.scrollTo(
                    self._model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter
                )
                return

    def _show_diff(self, position: int, diff: DiffSummary | None) -> None:
        if self._b is None or diff is None:
            self._diff_label.hide()
            return
        low, high = sorted((self._b[0], position))
        self._diff_label.setText("Changes A/B " + describe_diff(low, high, diff))
        self._diff_label.show()

    def _show_stream(self, view: View) -> None:
        self._stack.setCurrentIndex(_STREAM)
        shown = view.stream_events or []
        self._stream_events.clear()
        self._stream_events.addItems([describe_event(event) for event in shown])
        self._stream_events.scrollToBottom()
        state = view.stream_state
        text = json.dumps(state, indent=2, default=str) if state is not None else ""
        self._stream_state.setPlainText(text or f"{self._stream} has no events up to here")
        self._status.setText(f"{self._stream} at #{view.position}: {len(shown)} events")
        self._diff_label.hide()

    def _update_buttons(self) -> None:
        head = self._overview.head if self._overview is not None else 0
        known = self._position is not None
        self._back.setEnabled(known and (self._position or 0) > 0)
        self._forward.setEnabled(known and (self._position or 0) < head)
        self._set_b.setEnabled(known)

    def _finish_task(self) -> None:
        self._view_task = None
        self._progress_row.hide()

    # -- task outcomes ------------------------------------------------------------------------

    @Slot(object, object)
    def _on_overview_task_succeeded(self, _tag: object, outcome: object) -> None:
        overview = cast(Overview, outcome)
        self._overview = overview
        if overview.plan is None:
            self._chart.show_message("no events yet: nothing to travel through")
        else:
            self._chart.show_counts(overview.plan, overview.counts, overview.view_us)
            self._chart.show_marks(overview.runs_us, overview.audits_us)
        self._chart.setToolTip(
            f"{len(overview.runs_us)} projection runs (green) and {len(overview.audits_us)}"
            " operator actions (purple) are marked along the bottom"
        )
        if self._position is None and self._view_task is None:
            self._request(None)
        elif self._position is not None and self._cursor_us is not None:
            self._chart.place_cursor(self._cursor_us, f"A #{self._position}")
        self._update_buttons()

    @Slot(object, object)
    def _on_overview_task_failed(self, _tag: object, error: object) -> None:
        self._chart.show_message(f"could not load the timeline: {error}")

    @Slot(object, object)
    def _on_view_task_succeeded(self, generation: object, outcome: object) -> None:
        if generation != self._generation:
            return
        self._finish_task()
        self._show_view(cast(View, outcome))

    @Slot(object, object)
    def _on_view_task_failed(self, generation: object, error: object) -> None:
        if generation != self._generation:
            return
        self._finish_task()
        text = str(error) or type(error).__name__
        self._status.setText(f"could not load this point: {text}")
        self._update_buttons()
        self.load_failed.emit(text)

    @Slot(object)
    def _on_view_task_cancelled(self, generation: object) -> None:
        if generation != self._generation:
            return
        self._finish_task()
        shown = "" if self._position is None else f"; still showing #{self._position}"
        self._status.setText(f"cancelled{shown}")
        self._update_buttons()

    @Slot(object, int, int)
    def _on_view_task_progress(self, generation: object, done: int, total: int) -> None:
        if generation != self._generation:
            return
        model = self._combo.currentText()
        self._progress.setFormat(f"folding {model} from the log (no history here): %p%")
        self._progress.setRange(0, max(1, total))
        self._progress.setValue(min(done, max(1, total)))
        self._progress_row.show()

    @Slot(object, object)
    def _on_page_task_succeeded(self, generation: object, outcome: object) -> None:
        if generation != self._generation:
            return
        page = cast(Page, outcome)
        self._model.append_page(page.rows, has_more=page.has_more)
        self.documents_loaded.emit(self._model.rowCount())

    @Slot(object, object)
    def _on_page_task_failed(self, generation: object, error: object) -> None:
        if generation == self._generation:
            self._model.page_failed()
            self._status.setText(f"could not load more documents: {error}")

    # -- user actions -------------------------------------------------------------------------

    @Slot()
    def _on_documents_model_more_requested(self) -> None:
        if self._at is None:
            self._model.page_failed()
            return
        at, after, timetravel = self._at, self._model.last_key, self._timetravel
        task = self._tasks.add(
            self._runner.submit(lambda: load_page(timetravel, at, after), tag=self._generation)
        )
        task.succeeded.connect(self._on_page_task_succeeded)
        task.failed.connect(self._on_page_task_failed)

    @Slot(int)
    def _on_combo_current_index_changed(self, index: int) -> None:
        if index < 0:
            return
        self._stream = None
        self._stream_edit.clear()
        self._request(self._position)

    @Slot()
    def _on_stream_edit_return_pressed(self) -> None:
        stream = self._stream_edit.text().strip()
        if not stream:
            return
        self._stream = stream
        self._combo.blockSignals(True)
        self._combo.setCurrentIndex(-1)
        self._combo.blockSignals(False)
        self._request(self._position)

    @Slot()
    def _on_jump_return_pressed(self) -> None:
        try:
            point = Point.parse(self._jump.text())
        except InvalidReference as error:
            self._jump_error.setText(str(error).split(" (")[0])
            return
        head = self._overview.head if self._overview is not None else None
        if point.kind == "position" and head is not None and (point.position or 0) > head:
            self._jump_error.setText(f"position {point.position} is past the head (#{head})")
            return
        self._jump_error.clear()
        self._request(point.position if point.kind == "position" else point.time)

    @Slot()
    def _on_back_clicked(self) -> None:
        if self._position is not None and self._position > 0:
            self._request(self._position - 1)

    @Slot()
    def _on_forward_clicked(self) -> None:
        if self._position is not None:
            self._request(self._position + 1, forward=True)  # over a gap, to the next event

    @Slot()
    def _on_set_b_clicked(self) -> None:
        if self._position is None:
            return
        self._b = (self._position, self._cursor_us)
        self._chart.place_b(self._cursor_us, f"B #{self._position}")
        self._clear_b.setEnabled(True)
        self._request(self._position)

    @Slot()
    def _on_clear_b_clicked(self) -> None:
        self._b = None
        self._chart.place_b(None)
        self._clear_b.setEnabled(False)
        self._diff_label.hide()

    @Slot()
    def _on_cancel_clicked(self) -> None:
        if self._view_task is not None:
            self._view_task.cancel()

    @Slot(object)
    def _on_chart_cursor_dragged(self, moment: object) -> None:
        self._drag_time = cast(datetime, moment)
        self._drag_timer.start(DRAG_DELAY_MS)

    @Slot(object)
    def _on_chart_cursor_released(self, moment: object) -> None:
        self._drag_timer.stop()
        self._request(cast(datetime, moment))

    @Slot()
    def _on_drag_timer_timeout(self) -> None:
        if self._drag_time is not None:
            self._request(self._drag_time)

    def _document_key(self, index: QModelIndex) -> str | None:
        keys = self._model.keys()
        return keys[index.row()] if index.isValid() and index.row() < len(keys) else None

    def _ask_lineage(self, key: str) -> None:
        if self._at is not None:
            self.lineage_requested.emit(f"{self._at.model}@{self._at.position}", key)

    @Slot(QModelIndex)
    def _on_table_double_clicked(self, index: QModelIndex) -> None:
        key = self._document_key(index)
        if key is not None:
            self._ask_lineage(key)

    @Slot(QPoint)
    def _on_table_context_menu_requested(self, where: QPoint) -> None:
        key = self._document_key(self._table.indexAt(where))
        if key is None:
            return
        menu = QMenu(self)
        action = menu.addAction(f"Lineage of {key}")
        action.triggered.connect(lambda: self._ask_lineage(key))
        menu.popup(self._table.viewport().mapToGlobal(where))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Left/Right in the documents table (or the stream's events) step one event."""
        stepping = watched is self._table or watched is self._stream_events
        if stepping and event.type() == QEvent.Type.KeyPress:
            key = cast(QKeyEvent, event).key()
            if key == Qt.Key.Key_Left:
                self._on_back_clicked()
                return True
            if key == Qt.Key.Key_Right:
                self._on_forward_clicked()
                return True
        return super().eventFilter(watched, event)
