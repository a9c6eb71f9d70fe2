"""The event log panel: the filter bar, the table over :class:`EventLogModel`, search
progress, jumps and the live tail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from console.panels.event_log.model import (
    COLUMN_POSITION,
    COLUMN_SIZE,
    COLUMN_STREAM,
    COLUMN_TIME,
    COLUMN_TYPE,
    COLUMN_VERSION,
    PAGE_SIZE,
    EventLogModel,
)
from console.record_table import record_table
from console.workers import TaskRunner
from core.events import RecordedEvent, parse_time
from core.services.events import EventQueries
from core.store.port import EventFilter

__all__ = ["PROGRESS_DELAY_MS", "EventLogPanel", "FilterInput", "parse_filter"]

FILTER_DELAY_MS = 250
TAIL_INTERVAL_MS = 500
PROGRESS_DELAY_MS = 200  # a search shows its progress bar only once it is this slow
_ERROR_STYLE = "QLineEdit { border: 1px solid #c62828; background: #fdecea; }"


@dataclass(frozen=True, slots=True)
class FilterInput:
    """The filter bar's texts, as typed."""

    stream_prefix: str = ""
    category: str = ""
    types: str = ""
    since: str = ""
    until: str = ""
    correlation_id: str = ""
    text: str = ""


def parse_filter(
    typed: FilterInput, *, stream_id: str | None = None, to_position: int | None = None
) -> EventFilter:
    """Turn the filter bar's texts into an :class:`EventFilter`.

    Args:
        typed: what the bar holds; empty fields do not filter.
        stream_id: one exact stream (set by a link, not typed).
        to_position: the last position to show (set by a link, not typed).

    Raises:
        ValueError: a time does not parse or has no zone, or since is after until;
            the message names the field.
    """

    def time_of(name: str, text: str) -> datetime | None:
        if not text.strip():
            return None
        try:
            return parse_time(text)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None

    since = time_of("since", typed.since)
    until = time_of("until", typed.until)
    if since is not None and until is not None and since > until:
        raise ValueError("since is after until")
    types = tuple(part.strip() for part in typed.types.split(",") if part.strip())
    return EventFilter(
        stream_id=stream_id,
        stream_prefix=typed.stream_prefix.strip() or None,
        category=typed.category.strip() or None,
        types=types,
        since=since,
        until=until,
        to_position=to_position,
        correlation_id=typed.correlation_id.strip() or None,
        text=typed.text or None,
    )


class EventLogPanel(QWidget):
    """A filter bar over a windowed table of events, with a live tail.

    Typing in the bar filters (after a short pause); a bad time shows an error under the
    bar and queries nothing. Selecting a row emits ``event_selected`` with its event.

    A search slower than ``PROGRESS_DELAY_MS`` shows a progress bar with a Cancel button;
    Cancel or Esc in the filter bar stops it (the rows found so far stay), and Return
    in the bar goes on searching.

    Args:
        events: the store's events.
        runner: where the store queries run.
        page_size: events per query.
        live_tail: whether the live tail starts on.
        parent: the usual QWidget parent.
    """

    event_selected = Signal(object)  # RecordedEvent
    time_travel_requested = Signal(int)  # a position, from the row's context menu
    first_page_loaded = Signal()
    page_loaded = Signal(int, int)  # first row, rows
    filter_rejected = Signal(str)
    filter_applied = Signal(object)  # the EventFilter now shown (EventFilter() for all)
    tail_grew = Signal(int)
    position_jumped = Signal(int)  # the row selected by a jump
    load_failed = Signal(str)

    def __init__(
        self,
        events: EventQueries,
        runner: TaskRunner,
        *,
        page_size: int = PAGE_SIZE,
        live_tail: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("eventLogPanel")
        self._events = events
        self._runner = runner
        self._scope_stream: str | None = None
        self._scope_to: int | None = None
        self._pending_select_row: int | None = None
        self._pending_jump: int | None = None
        self._tail_polled_for: int | None = None  # a jump past the rows shown, once
        self._jump_generation = 0
        self._was_at_bottom = False
        self._start_at_bottom = True  # the newest events are where an operator looks first
        self._first_page_ready = False

        self._model = EventLogModel(events, runner, page_size=page_size, parent=self)
        self._build_filter_bar()
        self._build_view()
        # After the view's own connections: it must lay out new rows before we scroll.
        self._model.page_loaded.connect(self._on_model_page_loaded)
        self._model.first_page_loaded.connect(self._on_model_first_page_loaded)
        self._model.load_failed.connect(self._on_model_load_failed)
        self._model.tail_about_to_grow.connect(self._on_model_tail_about_to_grow)
        self._model.tail_grew.connect(self._on_model_tail_grew)
        self._model.modelReset.connect(self._on_model_model_reset)
        self._model.rowsInserted.connect(self._on_model_rows_inserted)
        self._model.search_started.connect(self._on_model_search_started)
        self._model.search_progressed.connect(self._on_model_search_progressed)
        self._model.search_cancelled.connect(self._on_model_search_cancelled)
        self._model.rows_shifted.connect(self._on_model_rows_shifted)
        self._model.rows_about_to_be_dropped.connect(self._on_model_rows_about_to_be_dropped)
        self._model.matches_counted.connect(self._on_model_matches_counted)

        self._build_search_progress()
        self._status = QLabel("loading…", self)
        self._status.setObjectName("eventLogStatus")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(self._bar)
        layout.addWidget(self._error_label)
        layout.addWidget(self._view, 1)
        layout.addWidget(self._search_row)
        layout.addWidget(self._status)

        self._tail_timer = QTimer(self)
        self._tail_timer.setInterval(TAIL_INTERVAL_MS)
        self._tail_timer.timeout.connect(self._on_tail_timer_timeout)
        self._tail_button.setChecked(live_tail)
        if live_tail:
            self._tail_timer.start()

        self._model.reload()

    # -- building ---------------------------------------------------------------------------

    def _build_filter_bar(self) -> None:
        self._edits: dict[str, QLineEdit] = {}
        specs = (
            ("stream_prefix", "stream prefix", "Events of streams whose id starts with this"),
            ("category", "category", "Events of one category (order-17 → order)"),
            ("types", "types: A, B", "Event types, comma-separated: OrderPlaced, OrderPaid"),
            ("correlation_id", "correlation id", "metadata.correlation_id equals this"),
            ("since", "since …Z", "From this time: ISO-8601 with a zone, e.g. 2026-03-01T10:00Z"),
            ("until", "until …Z", "Up to this time: ISO-8601 with a zone, e.g. …T11:00+01:00"),
            (
                "text",
                "payload words…",
                "Events whose data has these words (any case); end a word with * for the\n"
                "words it starts: glass, sku-42* (unindexed events are scanned: slower)",
            ),
        )
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._on_filter_timer_timeout)
        bar = QGridLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setHorizontalSpacing(4)
        bar.setVerticalSpacing(4)
        for number, (name, placeholder, tip) in enumerate(specs):
            edit = QLineEdit(self)
            edit.setObjectName(f"eventLogFilter_{name}")
            edit.setPlaceholderText(placeholder)
            edit.setToolTip(tip)
            edit.setClearButtonEnabled(True)
            edit.textChanged.connect(self._on_filter_text_changed)
            edit.returnPressed.connect(self._on_filter_return_pressed)
            edit.installEventFilter(self)  # Esc cancels a running search
            self._edits[name] = edit
            bar.addWidget(edit, number // 4, number % 4)

        self._scope_button = QToolButton(self)
        self._scope_button.setObjectName("eventLogScope")
        self._scope_button.setToolTip("Shown by a link; click to show every stream again")
        self._scope_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._scope_button.hide()
        self._scope_button.clicked.connect(self._on_scope_button_clicked)
        self._tail_button = QToolButton(self)
        self._tail_button.setObjectName("eventLogLiveTail")
        self._tail_button.setText("● live tail")
        self._tail_button.setCheckable(True)
        self._tail_button.setToolTip(
            "Poll for new events every half second; when the view is at the bottom it follows"
        )
        self._tail_button.toggled.connect(self._on_tail_button_toggled)
        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        tools.addWidget(self._scope_button)
        tools.addStretch(1)
        tools.addWidget(self._tail_button)
        bar.addLayout(tools, 1, 3)
        self._bar = bar

        self._error_label = QLabel(self)
        self._error_label.setObjectName("eventLogFilterError")
        self._error_label.setStyleSheet("QLabel { color: #c62828; }")
        self._error_label.hide()

    def _build_search_progress(self) -> None:
        self._search_row = QWidget(self)
        self._search_row.setObjectName("eventLogSearch")
        self._search_label = QLabel("searching…", self._search_row)
        self._search_label.setObjectName("eventLogSearchText")
        self._search_bar = QProgressBar(self._search_row)
        self._search_bar.setObjectName("eventLogSearchProgress")
        self._search_bar.setTextVisible(False)
        self._search_bar.setFixedHeight(max(6, self.fontMetrics().height() // 2))
        self._search_bar.setRange(0, 0)
        self._cancel_button = QToolButton(self._search_row)
        self._cancel_button.setObjectName("eventLogCancelSearch")
        self._cancel_button.setText("Cancel")
        self._cancel_button.setToolTip("Stop this search (Esc in the filter bar)")
        self._cancel_button.clicked.connect(self._on_cancel_button_clicked)
        row = QHBoxLayout(self._search_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self._search_label)
        row.addWidget(self._search_bar, 1)
        row.addWidget(self._cancel_button)
        self._search_row.hide()
        self._progress_delay = QTimer(self)
        self._progress_delay.setSingleShot(True)
        self._progress_delay.setInterval(PROGRESS_DELAY_MS)
        self._progress_delay.timeout.connect(self._on_progress_delay_timeout)

    def _build_view(self) -> None:
        self._view = record_table(
            self,
            "eventLogView",
            self._model,
            (
                (COLUMN_POSITION, "0,000,000"),
                (COLUMN_TIME, "2026-03-01 10:15:00"),
                (COLUMN_STREAM, "customer-00000"),
                (COLUMN_TYPE, "CustomerRegistered"),
                (COLUMN_VERSION, "000"),
                (COLUMN_SIZE, "00.0 KiB"),
            ),
            padding=12,
        )
        self._view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self._view.installEventFilter(self)  # Ctrl+Home in a filtered window
        columns = self._view.horizontalHeader()
        columns.setStretchLastSection(False)
        # The stream gets what is left: a long id elides in the middle (its tooltip has it
        # whole), while the type column fits typical types in full.
        columns.setSectionResizeMode(COLUMN_STREAM, QHeaderView.ResizeMode.Stretch)
        self._view.selectionModel().currentRowChanged.connect(self._on_selection_current_changed)
        self._open_in_time_travel = QAction("Open in time travel", self._view)
        self._open_in_time_travel.setObjectName("openInTimeTravel")
        self._open_in_time_travel.setStatusTip(
            "Show the store at this event in the time-travel panel"
        )
        self._open_in_time_travel.triggered.connect(self._on_open_in_time_travel_triggered)
        self._view.addAction(self._open_in_time_travel)
        self._view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    # -- public API -------------------------------------------------------------------------

    @property
    def model(self) -> EventLogModel:
        """The panel's model."""
        return self._model

    @property
    def view(self) -> QTableView:
        """The table."""
        return self._view

    @property
    def open_in_time_travel_action(self) -> QAction:
        """The rows' context menu action: the store at the selected event, in time travel."""
        return self._open_in_time_travel

    @Slot()
    def _on_open_in_time_travel_triggered(self) -> None:
        event = self.current_event()
        if event is not None:
            self.time_travel_requested.emit(event.position)

    @property
    def live_tail_button(self) -> QToolButton:
        """The live-tail toggle."""
        return self._tail_button

    @property
    def error_label(self) -> QLabel:
        """Where a bad filter is explained."""
        return self._error_label

    @property
    def status_label(self) -> QLabel:
        """The row count and load state under the table."""
        return self._status

    @property
    def search_progress(self) -> QProgressBar:
        """The progress of a slow search (shown while one runs)."""
        return self._search_bar

    @property
    def cancel_search_button(self) -> QToolButton:
        """Stops a slow search (shown with its progress)."""
        return self._cancel_button

    def cancel_search(self) -> None:
        """Stop the running search; the rows found so far stay."""
        self._model.cancel_search()

    def filter_edit(self, name: str) -> QLineEdit:
        """One field of the filter bar, by :class:`FilterInput` field name."""
        return self._edits[name]

    def current_event(self) -> RecordedEvent | None:
        """The selected event, if its page is loaded."""
        index = self._view.currentIndex()
        return self._model.event_at(index.row()) if index.isValid() else None

    def reload(self) -> None:
        """Load the current filter again."""
        self._model.reload()

    def set_live_tail(self, on: bool) -> None:
        """Turn the live tail on or off."""
        self._tail_button.setChecked(on)

    def set_correlation(self, correlation_id: str) -> None:
        """Show the whole chain of events with this correlation id (at once, no typing
        pause): the other filters are cleared, since they would hide part of it."""
        self._clear_edits()
        self._clear_scope()
        self._set_edit_silently("correlation_id", correlation_id)
        self._apply_filter()

    def show_stream(self, stream_id: str, up_to_position: int | None = None) -> None:
        """Show one stream's events (up to a position), clearing the typed filters."""
        self._clear_edits()
        self._scope_stream = stream_id
        self._scope_to = up_to_position
        label = stream_id if up_to_position is None else f"{stream_id} ≤ #{up_to_position:,}"
        self._scope_button.setText(f"stream {label} ✕")
        self._scope_button.show()
        self._apply_filter()
        if up_to_position is not None:
            self.jump_to_position(up_to_position)

    def clear_filters(self) -> None:
        """Show the whole log."""
        self._clear_edits()
        self._clear_scope()
        self._apply_filter()

    def jump_to_position(self, position: int) -> None:
        """Select and scroll to the event at ``position`` (filtered: the first at or after it)."""
        self._jump_generation += 1
        self._pending_jump = position
        self._try_jump()

    def jump_to_time(self, moment: datetime) -> None:
        """Select and scroll to the last event recorded at or before ``moment``."""
        self._jump_generation += 1
        generation = self._jump_generation
        events = self._events
        task = self._runner.submit(lambda: events.position_at(moment), tag=generation)
        task.succeeded.connect(self._on_time_task_succeeded)
        task.failed.connect(self._on_jump_task_failed)

    def jump_to_event_id(self, event_id: str) -> None:
        """Select the event with this id; filters that hide it are cleared first."""
        self._jump_generation += 1
        generation = self._jump_generation
        events = self._events
        task = self._runner.submit(lambda: events.event_by_id(event_id), tag=generation)
        task.succeeded.connect(self._on_event_id_task_succeeded)
        task.failed.connect(self._on_jump_task_failed)

    # -- filtering --------------------------------------------------------------------------

    def _typed(self) -> FilterInput:
        return FilterInput(**{name: edit.text() for name, edit in self._edits.items()})

    def _clear_edits(self) -> None:
        """Empty every filter field without starting a filter per field."""
        for name in self._edits:
            self._set_edit_silently(name, "")

    def _set_edit_silently(self, name: str, text: str) -> None:
        edit = self._edits[name]
        edit.blockSignals(True)
        edit.setText(text)
        edit.blockSignals(False)

    def _clear_scope(self) -> None:
        self._scope_stream = None
        self._scope_to = None
        self._scope_button.hide()

    def _apply_filter(self, *, resume: bool = False) -> None:
        self._filter_timer.stop()
        try:
            where = parse_filter(
                self._typed(), stream_id=self._scope_stream, to_position=self._scope_to
            )
        except ValueError as error:
            message = str(error)
            self._error_label.setText(message)
            self._error_label.show()
            field = message.split(":", 1)[0]
            for name in ("since", "until"):
                bad = name == field or message.startswith("since is after")
                self._edits[name].setStyleSheet(_ERROR_STYLE if bad else "")
            self.filter_rejected.emit(message)
            return
        self._error_label.hide()
        self._error_label.clear()
        for name in ("since", "until"):
            self._edits[name].setStyleSheet("")
        if where == self._model.event_filter:
            if resume and self._model.search_was_cancelled:
                self._model.resume_search()
            return
        self._pending_select_row = None
        self._status.setText("loading…")
        self._start_at_bottom = where == EventFilter()
        self._model.set_filter(where)
        self.filter_applied.emit(where)

    @Slot(str)
    def _on_filter_text_changed(self, _text: str) -> None:
        self._filter_timer.start()

    @Slot()
    def _on_filter_return_pressed(self) -> None:
        self._apply_filter(resume=True)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc in a filter field cancels a running search; Ctrl+Home (Ctrl+End) in a
        filtered table whose rows held start after the first match (end before the last)
        jumps to that match."""
        if event.type() != QEvent.Type.KeyPress:
            return super().eventFilter(watched, event)
        key = cast(QKeyEvent, event)
        model = self._model
        if watched is self._view:
            if (
                key.key() == Qt.Key.Key_Home
                and key.modifiers() & Qt.KeyboardModifier.ControlModifier
                and not model.at_start
                and not model.windowed
            ):
                self.jump_to_position(1)
                return True
            if (
                key.key() == Qt.Key.Key_End
                and key.modifiers() & Qt.KeyboardModifier.ControlModifier
                and not model.exhausted
                and not model.windowed
            ):
                self.jump_to_time(datetime.max.replace(tzinfo=UTC))  # the last match
                return True
        elif key.key() == Qt.Key.Key_Escape and model.searching:
            model.cancel_search()
            return True
        return super().eventFilter(watched, event)

    @Slot()
    def _on_filter_timer_timeout(self) -> None:
        self._apply_filter()

    @Slot()
    def _on_scope_button_clicked(self) -> None:
        self._clear_scope()
        self._apply_filter()

    # -- jumping ----------------------------------------------------------------------------

    def _try_jump(self) -> None:
        position = self._pending_jump
        if position is None or not self._model_ready():
            return
        model = self._model
        if not model.covers(position):
            if model.loading_around != position:
                model.load_around(position)
            return  # again when its pages arrive
        row = model.row_of_position(position)
        if row is None and self._tail_polled_for != position and not model.looked_at(position):
            # Newer than the rows shown (an event just appended): the tail brings it.
            self._tail_polled_for = position
            model.poll_head()
            return
        if row is None:
            row = model.rowCount() - 1
        self._pending_jump = None
        if row < 0:
            return
        self._select_row(row)
        self.position_jumped.emit(row)

    def _model_ready(self) -> bool:
        return self._first_page_ready

    def _select_row(self, row: int) -> None:
        index = self._model.index(row, 0)
        self._view.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self._view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    @Slot(object, object)
    def _on_time_task_succeeded(self, generation: object, position: object) -> None:
        if generation != self._jump_generation:
            return
        self._pending_jump = max(1, cast(int, position))
        self._try_jump()

    @Slot(object, object)
    def _on_event_id_task_succeeded(self, generation: object, found: object) -> None:
        if generation != self._jump_generation or found is None:
            return
        event = cast(RecordedEvent, found)
        where = self._model.event_filter
        hidden = (
            not where.matches(event)
            or (where.to_position is not None and event.position > where.to_position)
            or (where.since is not None and event.recorded_at < where.since)
            or (where.until is not None and event.recorded_at > where.until)
        )
        if hidden:
            self.clear_filters()
        self._pending_jump = event.position
        self._try_jump()

    @Slot(object, object)
    def _on_jump_task_failed(self, generation: object, error: object) -> None:
        if generation == self._jump_generation:
            self._status.setText(f"could not jump: {error}")

    # -- the model's news -------------------------------------------------------------------

    @Slot()
    def _on_model_model_reset(self) -> None:
        self._first_page_ready = False
        self._show_search_progress()

    @Slot()
    def _on_model_search_started(self) -> None:
        self._search_bar.setRange(0, 0)  # busy until the store says how far it has to go
        self._search_label.setText("searching…")
        if self._search_row.isHidden():
            self._progress_delay.start()
        self._show_count()  # not "search cancelled" any more, when a search goes on

    @Slot(int, int)
    def _on_model_search_progressed(self, done: int, total: int) -> None:
        if total > 0:
            self._search_bar.setRange(0, total)
            self._search_bar.setValue(min(done, total))
            self._search_label.setText(f"searching… {done:,} of {total:,} events looked at")

    @Slot()
    def _on_model_search_cancelled(self) -> None:
        self._show_search_progress()
        self._show_count()

    @Slot()
    def _on_progress_delay_timeout(self) -> None:
        self._show_search_progress()

    @Slot()
    def _on_cancel_button_clicked(self) -> None:
        self._model.cancel_search()

    def _show_search_progress(self) -> None:
        """Show the search row while a search runs (once it has run a moment), else hide it."""
        searching = self._model.searching
        if not searching:
            self._progress_delay.stop()
        self._search_row.setVisible(searching and not self._progress_delay.isActive())

    @Slot(QModelIndex, int, int)
    def _on_model_rows_inserted(self, _parent: QModelIndex, _first: int, _last: int) -> None:
        self._show_count()
        model = self._model
        if model.windowed and not self._first_page_ready:
            if self._start_at_bottom:
                self._view.scrollToBottom()  # with the live tail on, the view then follows
                model.prefetch_row(model.rowCount() - 1)
            else:
                model.prefetch_row(0)

    @Slot()
    def _on_model_first_page_loaded(self) -> None:
        self._first_page_ready = True
        self._show_count()
        self.first_page_loaded.emit()
        self._try_jump()

    @Slot(int, int)
    def _on_model_page_loaded(self, first_row: int, rows: int) -> None:
        self._show_search_progress()
        self._show_count()
        self.page_loaded.emit(first_row, rows)
        if self._pending_select_row is not None:
            event = self._model.event_at(self._pending_select_row)
            if event is not None:
                self._pending_select_row = None
                self.event_selected.emit(event)
        if self._pending_jump is not None:
            self._try_jump()

    @Slot(str)
    def _on_model_load_failed(self, message: str) -> None:
        self._show_search_progress()
        self._status.setText(f"could not load events: {message}")
        self.load_failed.emit(message)

    @Slot(int, int)
    def _on_model_rows_about_to_be_dropped(self, first: int, last: int) -> None:
        # Left to Qt, the selection would move to a neighbour of a dropped selected row
        # and the view scroll there, away from the rows being looked at: it goes instead.
        if first <= self._view.currentIndex().row() <= last:
            self._view.selectionModel().clear()

    @Slot(int)
    def _on_model_rows_shifted(self, rows: int) -> None:
        # Rows came or went above the ones shown: scroll by as much, so they stay put.
        view = self._view
        view.updateGeometries()  # the scroll range must know the rows before the value moves
        bar = view.verticalScrollBar()
        bar.setValue(bar.value() + rows * view.verticalHeader().defaultSectionSize())

    @Slot(int)
    def _on_model_matches_counted(self, _count: int) -> None:
        self._show_count()

    @Slot()
    def _on_model_tail_about_to_grow(self) -> None:
        bar = self._view.verticalScrollBar()
        self._was_at_bottom = bar.value() >= bar.maximum()

    @Slot(int)
    def _on_model_tail_grew(self, added: int) -> None:
        if self._was_at_bottom:
            self._view.scrollToBottom()
        self.tail_grew.emit(added)
        if self._pending_jump is not None:
            self._try_jump()

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        event = self._model.event_at(current.row())
        if event is None:
            self._pending_select_row = current.row()  # emitted when its page arrives
            return
        self._pending_select_row = None
        self.event_selected.emit(event)

    @Slot()
    def _on_tail_timer_timeout(self) -> None:
        self._model.poll_head()

    @Slot(bool)
    def _on_tail_button_toggled(self, on: bool) -> None:
        if on:
            self._tail_timer.start()
            self._model.poll_head()
        else:
            self._tail_timer.stop()

    def _show_count(self) -> None:
        model = self._model
        count = model.rowCount()
        if model.windowed:
            text = f"{count:,} event{'s' if count != 1 else ''}" if count else "the log is empty"
        elif count == 0:
            text = "loading…" if not model.exhausted else "no event matches"
        elif model.exhausted and model.at_start:
            text = f"{count:,} matching event{'s' if count != 1 else ''}"
        else:
            first, last = model.event_at(0), model.event_at(count - 1)
            held = f"positions {first.position:,}–{last.position:,}" if first and last else ""
            total = model.match_count
            if total is not None:
                text = f"{total:,} matching events; {held} loaded, scroll for more"
            elif model.at_start:
                text = f"first {count:,} matching events loaded; scroll for more"
            else:
                text = f"{count:,} matching events loaded ({held}); scroll for more"
        if model.search_was_cancelled:
            found = f"{count:,} matching event{'s' if count != 1 else ''} so far"
            text = f"search cancelled ({found}); press Return in the filter bar to go on"
        if model.error is not None:
            text = f"could not load events: {model.error}"
        self._status.setText(text)
