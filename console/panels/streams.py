"""The streams browser: every stream in the store, filtered by id prefix, paged in lazily."""

from __future__ import annotations

from typing import Literal, cast

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.record_table import record_table
from console.workers import TaskGroup, TaskRunner
from core.events import StreamInfo, format_time
from core.services.events import EventQueries

__all__ = ["PAGE_SIZE", "STREAM_ID_ROLE", "StreamsModel", "StreamsPanel"]

PAGE_SIZE = 500
FILTER_DELAY_MS = 150
STREAM_ID_ROLE = Qt.ItemDataRole.UserRole

_ModelIndex = QModelIndex | QPersistentModelIndex
StreamOrder = Literal["name", "activity"]
_HEADERS = ("stream", "category", "events", "last event (UTC)")
_COLUMN_STREAM, _COLUMN_CATEGORY, _COLUMN_EVENTS, _COLUMN_LAST = range(len(_HEADERS))
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_MARGIN = 4


class StreamsModel(QAbstractTableModel):
    """Streams sorted by id, loaded a page at a time as the view asks for more.

    Only the pages a view has scrolled to are held; each one is a keyset query
    (``after`` the last stream id loaded) run on the task runner, never on the GUI
    thread. A new prefix or order starts a new generation: the page still loading for
    the old one is cancelled, and dropped if it arrives all the same.

    Args:
        events: the store's events.
        runner: where the queries run.
        page_size: streams per query.
        parent: the usual QObject parent.
    """

    page_loaded = Signal(int, bool)  # rows added, whether it was the first page of the prefix
    load_failed = Signal(str)

    def __init__(
        self,
        events: EventQueries,
        runner: TaskRunner,
        *,
        page_size: int = PAGE_SIZE,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._events = events
        self._runner = runner
        self._page_size = page_size
        self._rows: list[StreamInfo] = []
        self._prefix = ""
        self._order: StreamOrder = "name"
        self._generation = 0
        self._loading = False
        self._exhausted = False
        self._error: str | None = None
        self._tasks = TaskGroup(self)

    # -- state ------------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """The stream-id prefix shown ("" for every stream)."""
        return self._prefix

    @property
    def loading(self) -> bool:
        """Whether a page is being fetched."""
        return self._loading

    @property
    def exhausted(self) -> bool:
        """Whether every stream matching the prefix is loaded."""
        return self._exhausted

    @property
    def error(self) -> str | None:
        """The last load error of this prefix, if any."""
        return self._error

    def stream_at(self, row: int) -> StreamInfo:
        """The stream shown in a row."""
        return self._rows[row]

    def set_prefix(self, prefix: str) -> None:
        """Show the streams whose id starts with ``prefix``, from their first page."""
        self._prefix = prefix
        self.reload()

    @property
    def order(self) -> StreamOrder:
        """``name`` (byte-wise by id) or ``activity`` (most recent event first)."""
        return self._order

    def set_order(self, order: StreamOrder) -> None:
        """Sort by stream id or by last activity, from the first page."""
        if order not in ("name", "activity"):
            raise ValueError(f"unknown stream order {order!r}")
        self._order = order
        self.reload()

    def reload(self) -> None:
        """Forget every loaded page and fetch the first one again."""
        self._tasks.cancel_all()
        self._generation += 1
        self.beginResetModel()
        self._rows = []
        # Loading already: a view's fetchMore during the reset must not start a twin query.
        self._loading = True
        self._exhausted = False
        self._error = None
        self.endResetModel()
        self._fetch_page()

    # -- QAbstractTableModel ----------------------------------------------------------------

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Rows loaded so far."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Stream, category, events, last event time."""
        return 0 if parent.isValid() else len(_HEADERS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """Text, alignment, tooltips and the stream id (``STREAM_ID_ROLE``) of a cell."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        info = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == _COLUMN_STREAM:
                return info.stream_id
            if column == _COLUMN_CATEGORY:
                return info.category
            if column == _COLUMN_EVENTS:
                return f"{info.event_count:,}"
            if column == _COLUMN_LAST:
                return info.last_recorded_at.strftime("%Y-%m-%d %H:%M:%S")
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == _COLUMN_EVENTS:
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == _COLUMN_LAST:
                return (
                    f"first event {format_time(info.first_recorded_at)}\n"
                    f"last event {format_time(info.last_recorded_at)}"
                )
            if column == _COLUMN_EVENTS:
                return (
                    f"version {info.version}; positions "
                    f"{info.first_position:,}–{info.last_position:,}"
                )
            return info.stream_id
        if role == STREAM_ID_ROLE:
            return info.stream_id
        return None

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> object:
        """Column titles; rows have none."""
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(_HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and section == _COLUMN_EVENTS:
            return _RIGHT
        return None

    def flags(self, index: _ModelIndex) -> Qt.ItemFlag:
        """Selectable, never editable, never a parent."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def canFetchMore(self, parent: _ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        """Whether more streams match than are loaded (unknown until a short page)."""
        return not parent.isValid() and not self._exhausted and self._error is None

    def fetchMore(self, parent: _ModelIndex = QModelIndex()) -> None:  # noqa: B008
        """Start loading the next page; the rows arrive later, with ``page_loaded``."""
        if parent.isValid() or self._loading or not self.canFetchMore():
            return
        self._fetch_page()

    # -- loading ----------------------------------------------------------------------------

    def _fetch_page(self) -> None:
        events = self._events
        prefix = self._prefix or None
        last = self._rows[-1] if self._rows else None
        limit = self._page_size
        by_activity = self._order == "activity"

        def load_page() -> list[StreamInfo]:
            if by_activity:
                before = last.last_position if last is not None else None
                return list(
                    events.recent_streams(prefix=prefix, before_position=before, limit=limit)
                )
            after = last.stream_id if last is not None else None
            return list(events.streams(prefix=prefix, after=after, limit=limit))

        self._loading = True
        task = self._tasks.add(self._runner.submit(load_page, tag=self._generation))
        task.succeeded.connect(self._on_page_task_succeeded)
        task.failed.connect(self._on_page_task_failed)
        task.cancelled.connect(self._on_page_task_cancelled)

    @Slot(object, object)
    def _on_page_task_succeeded(self, generation: object, page: object) -> None:
        if generation != self._generation:
            return  # the prefix changed while this page loaded
        rows = cast(list[StreamInfo], page)
        first = not self._rows
        if len(rows) < self._page_size:
            self._exhausted = True
        if rows:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
        # Still "loading" until here: views and testers may call fetchMore from inside
        # the insert notifications, and must not ask for this page a second time.
        self._loading = False
        self.page_loaded.emit(len(rows), first)

    @Slot(object, object)
    def _on_page_task_failed(self, generation: object, error: object) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self._error = str(error) or type(error).__name__
        self.load_failed.emit(self._error)

    @Slot(object)
    def _on_page_task_cancelled(self, generation: object) -> None:
        if generation == self._generation:
            self._loading = False  # cancelled from outside: a view's fetchMore asks again


class StreamsPanel(QWidget):
    """A filter box over a lazily paged table of streams.

    Typing filters by stream-id prefix (after a short pause); double-click or Enter on a
    row emits ``stream_selected`` with its id.

    Args:
        events: the store's events.
        runner: where the store queries run.
        page_size: streams per query.
        parent: the usual QWidget parent.
    """

    stream_selected = Signal(str)
    page_loaded = Signal(int)  # rows added
    first_page_loaded = Signal()  # the first page of the current filter is shown
    load_failed = Signal(str)

    def __init__(
        self,
        events: EventQueries,
        runner: TaskRunner,
        *,
        page_size: int = PAGE_SIZE,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("streamsPanel")
        self._first_page_ready = False

        self._model = StreamsModel(events, runner, page_size=page_size, parent=self)
        self._model.page_loaded.connect(self._on_model_page_loaded)
        self._model.load_failed.connect(self._on_model_load_failed)

        self._filter = QLineEdit(self)
        self._filter.setObjectName("streamsFilter")
        self._filter.setPlaceholderText("prefix or category…")
        self._filter.setClearButtonEnabled(True)
        self._filter.setToolTip(
            "Show the streams whose id starts with this text;\n"
            "a category name shows its streams (order → order-1, order-2, …)."
        )
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter.textChanged.connect(self._on_filter_text_changed)
        self._filter.returnPressed.connect(self._on_filter_return_pressed)
        self._filter_timer.timeout.connect(self._on_filter_timer_timeout)

        self._order = QComboBox(self)
        self._order.setObjectName("streamsOrder")
        self._order.addItem("by name", "name")
        self._order.addItem("by recent activity", "activity")
        self._order.setToolTip("Sort streams by id, or by their latest event (newest first)")
        self._order.currentIndexChanged.connect(self._on_order_current_index_changed)

        self._view = record_table(
            self,
            "streamsView",
            self._model,
            (
                (_COLUMN_STREAM, "customer-00000"),
                (_COLUMN_CATEGORY, "customer"),
                (_COLUMN_EVENTS, "000,000"),
                (_COLUMN_LAST, "2026-03-01 10:15:00"),
            ),
        )
        columns = self._view.horizontalHeader()
        # The category shows last: the stream id says it already, and a narrow dock
        # should show each stream's count and last time first.
        columns.moveSection(columns.visualIndex(_COLUMN_CATEGORY), len(_HEADERS) - 1)
        columns.setStretchLastSection(True)
        self._view.activated.connect(self._on_view_activated)

        self._status = QLabel("loading…", self)
        self._status.setObjectName("streamsStatus")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.setSpacing(4)
        controls = QHBoxLayout()
        controls.setSpacing(4)
        controls.addWidget(self._filter, 1)
        controls.addWidget(self._order)
        layout.addLayout(controls)
        layout.addWidget(self._view, 1)
        layout.addWidget(self._status)
        self.setFocusProxy(self._filter)

        self._model.reload()

    def sizeHint(self) -> QSize:
        """Wide enough for a stream id, its event count and its last time side by side."""
        view = self._view
        columns = sum(
            view.columnWidth(column) for column in (_COLUMN_STREAM, _COLUMN_EVENTS, _COLUMN_LAST)
        )
        scrollbar = view.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        width = columns + scrollbar + 2 * view.frameWidth() + 2 * _MARGIN
        return QSize(width, super().sizeHint().height())

    @property
    def model(self) -> StreamsModel:
        """The panel's model."""
        return self._model

    @property
    def view(self) -> QTableView:
        """The table."""
        return self._view

    @property
    def filter_edit(self) -> QLineEdit:
        """The filter box."""
        return self._filter

    @property
    def first_page_ready(self) -> bool:
        """Whether the first page of the current filter is shown."""
        return self._first_page_ready

    def reload(self) -> None:
        """Load the current filter's streams again from the first page."""
        self._first_page_ready = False
        self._status.setText("loading…")
        self._model.reload()

    def _apply_filter(self) -> None:
        self._filter_timer.stop()
        prefix = self._filter.text().strip()
        if prefix == self._model.prefix:
            return
        self._first_page_ready = False
        self._status.setText("loading…")
        self._model.set_prefix(prefix)

    @property
    def order_box(self) -> QComboBox:
        """The sort order chooser."""
        return self._order

    @Slot(int)
    def _on_order_current_index_changed(self, _index: int) -> None:
        self._first_page_ready = False
        self._status.setText("loading…")
        self._model.set_order(cast(StreamOrder, self._order.currentData()))

    @Slot(str)
    def _on_filter_text_changed(self, _text: str) -> None:
        self._filter_timer.start()

    @Slot()
    def _on_filter_return_pressed(self) -> None:
        self._apply_filter()

    @Slot()
    def _on_filter_timer_timeout(self) -> None:
        self._apply_filter()

    @Slot(int, bool)
    def _on_model_page_loaded(self, added: int, first: bool) -> None:
        self._show_count()
        self.page_loaded.emit(added)
        if first:
            self._first_page_ready = True
            self.first_page_loaded.emit()

    @Slot(str)
    def _on_model_load_failed(self, message: str) -> None:
        self._status.setText(f"could not load streams: {message}")
        self.load_failed.emit(message)

    @Slot(QModelIndex)
    def _on_view_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.stream_selected.emit(self._model.stream_at(index.row()).stream_id)

    def _show_count(self) -> None:
        count = self._model.rowCount()
        prefix = self._model.prefix
        if count == 0:
            text = f"no stream starts with “{prefix}”" if prefix else "the store has no streams"
        elif self._model.exhausted:
            text = f"{count:,} stream{'s' if count != 1 else ''}"
            text += f" starting with “{prefix}”" if prefix else ""
        else:
            text = f"first {count:,} streams loaded; scroll for more"
        self._status.setText(text)
