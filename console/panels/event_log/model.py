"""The event log's table model: events in position order, windowed by keyset pages."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple, cast

import orjson
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor

from console.workers import Task, TaskGroup, TaskRunner
from core.events import RecordedEvent, format_time
from core.services.events import EventQueries
from core.store.port import EventFilter

__all__ = [
    "COLUMN_POSITION",
    "COLUMN_SIZE",
    "COLUMN_STREAM",
    "COLUMN_TIME",
    "COLUMN_TYPE",
    "COLUMN_VERSION",
    "EVENT_ROLE",
    "MAX_PAGES",
    "PAGE_SIZE",
    "PLACEHOLDER",
    "EventLogModel",
]

PAGE_SIZE = 200
MAX_PAGES = 8  # pages held in a window (filtered or not): a screen never spans more than two
MAX_IN_FLIGHT = 2  # page queries running at once; newer wants wait rather than pile up
MAX_WANTED = 4  # pages remembered for loading; older wants (a scrollbar drag) are forgotten
EDGE_ROWS = 50  # filtered: a view painting this close to the top loads the page before
PLACEHOLDER = "…"
EVENT_ROLE = Qt.ItemDataRole.UserRole

_ModelIndex = QModelIndex | QPersistentModelIndex
_HEADERS = ("position", "time (UTC)", "stream", "type", "ver.", "size")
(
    COLUMN_POSITION,
    COLUMN_TIME,
    COLUMN_STREAM,
    COLUMN_TYPE,
    COLUMN_VERSION,
    COLUMN_SIZE,
) = range(len(_HEADERS))
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_NUMERIC = (COLUMN_POSITION, COLUMN_VERSION, COLUMN_SIZE)
_PLACEHOLDER_COLOR = QColor("#9ca3af")


class _Row(NamedTuple):
    """An event and the size of its data as JSON, measured once, off the GUI thread."""

    event: RecordedEvent
    size: int


def _rows_of(events: list[RecordedEvent]) -> list[_Row]:
    return [_Row(event, len(orjson.dumps(event.data))) for event in events]


def _format_size(size: int) -> str:
    if size < 10_000:
        return f"{size:,} B"
    return f"{size / 1024:,.1f} KiB"


class EventLogModel(QAbstractTableModel):
    """Events in position order, holding only the pages a view is looking at.

    Unfiltered on a store whose positions are gapless from 1 (Eventscope's own), the
    model is a window over the whole log: row ``r`` is position ``r + 1``, ``rowCount``
    is the head position, and a cell whose page is not loaded shows :data:`PLACEHOLDER`
    while that page (``PAGE_SIZE`` positions) loads on the task runner; then
    ``dataChanged``. At most ``MAX_PAGES`` pages are held: the ones farthest from the
    last one painted are dropped.

    Filtered, or where positions have gaps (another tool's store), rows cannot be
    computed from positions, so the model holds a window of consecutive matches, paged
    by keyset on position: ``canFetchMore`` and ``fetchMore`` read forwards after the
    last row held, a view painting near the first row makes it read backwards before it
    (rows inserted at the top, then ``rows_shifted``), and
    :meth:`load_around` replaces the window by the pages just before and from a position
    (a jump). At most ``MAX_PAGES`` pages are held: the end farther from the last row
    painted is dropped. Rows are therefore not ranks among the matches; how many match
    is counted on the task runner (``matches_counted``), except for a payload search,
    whose count is a full scan of what the index does not cover.

    :meth:`poll_head` is the live tail: when the head has moved, new rows are inserted
    at the end (``tail_about_to_grow`` and ``tail_grew`` bracket it).

    A filtered page can take long (a payload search scans what the index does not
    cover): ``search_started``, ``search_progressed`` and then ``page_loaded``,
    ``load_failed`` or ``search_cancelled`` tell its course. :meth:`cancel_search` stops it,
    keeping the rows loaded so far, and :meth:`resume_search` goes on from there. A new
    filter cancels every query of the previous one.

    Args:
        events: the store's events.
        runner: where the queries run.
        page_size: events per query.
        parent: the usual QObject parent.
    """

    page_loaded = Signal(int, int)  # first row, rows
    first_page_loaded = Signal()  # the first rows of the current filter are known
    load_failed = Signal(str)
    tail_about_to_grow = Signal()
    tail_grew = Signal(int)  # rows added
    search_started = Signal()  # a filtered page the view waits for is being looked for
    search_progressed = Signal(int, int)  # positions scanned, positions to scan
    search_cancelled = Signal()
    rows_shifted = Signal(int)  # rows added (+) or dropped (-) above the rows kept
    rows_about_to_be_dropped = Signal(int, int)  # first, last: far rows of a full window
    matches_counted = Signal(int)  # how many events match the filter, counted

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
        self._filter = EventFilter()
        # Asked on every data() call: comparing filters there cost a jump a third of its time.
        self._windowed = True
        self._generation = 0
        self._error: str | None = None
        self._first_page_seen = False
        self._head_pending = False
        self._tasks = TaskGroup(self)
        # Unfiltered window.
        self._head = 0
        self._pages: dict[int, list[_Row]] = {}
        self._in_flight: set[int] = set()
        self._wanted: OrderedDict[int, None] = OrderedDict()
        self._focus_page = 0
        self._want_timer = QTimer(self)
        self._want_timer.setSingleShot(True)
        self._want_timer.setInterval(0)
        self._want_timer.timeout.connect(self._on_want_timer_timeout)
        # Filtered window: consecutive matches, keyset-paged both ways.
        self._rows: list[_Row] = []
        self._positions: list[int] = []
        self._window = 0  # replaced by a jump: loads for an older window are dropped
        self._at_start = True  # no match before the first row held
        self._focus_row = 0
        self._loading = False  # forwards: the next page, the tail or a jump's pages
        self._loading_previous = False
        self._around: int | None = None  # the position a jump's pages are loading around
        self._previous_timer = QTimer(self)
        self._previous_timer.setSingleShot(True)
        self._previous_timer.setInterval(0)
        self._previous_timer.timeout.connect(self._on_previous_timer_timeout)
        self._match_count: int | None = None
        self._counted_to = 0  # the count covers positions up to here
        self._count_tasks = TaskGroup(self)
        self._searching = False
        self._search_cancelled = False
        self._exhausted = False
        self._scanned_to = 0  # filtered and exhausted: every event up to here was looked at
        self._head_known = False

    # -- state ------------------------------------------------------------------------------

    @property
    def event_filter(self) -> EventFilter:
        """The filter shown (``EventFilter()`` for the whole log)."""
        return self._filter

    @property
    def windowed(self) -> bool:
        """Whether rows map to positions directly (no filter)."""
        return self._windowed

    @property
    def held_pages(self) -> int:
        """Pages held in memory — bounded by ``MAX_PAGES``."""
        if self.windowed:
            return len(self._pages)
        return -(-len(self._rows) // self._page_size)

    @property
    def at_start(self) -> bool:
        """Filtered: whether no event before the first row held matches."""
        return self._at_start

    @property
    def match_count(self) -> int | None:
        """Filtered: how many events match, once counted (payload searches are not)."""
        return self._match_count

    @property
    def loading_around(self) -> int | None:
        """Filtered: the position a jump's pages are loading around, if any."""
        return self._around

    @property
    def held_rows(self) -> int:
        """Events held in memory."""
        return sum(len(page) for page in self._pages.values()) + len(self._rows)

    @property
    def exhausted(self) -> bool:
        """Filtered: whether no event after the last row held matches (up to the head)."""
        return self._exhausted

    @property
    def error(self) -> str | None:
        """The last load error of this filter, if any."""
        return self._error

    @property
    def searching(self) -> bool:
        """Filtered: whether a page the view waits for is being looked for."""
        return self._searching

    @property
    def search_was_cancelled(self) -> bool:
        """Filtered: whether the search was cancelled (until resumed or the filter changes)."""
        return self._search_cancelled

    def event_at(self, row: int) -> RecordedEvent | None:
        """The event shown in a row, or None while its page loads."""
        if self.windowed:
            page = self._pages.get(row // self._page_size)
            offset = row % self._page_size
            if page is None or offset >= len(page):
                return None
            return page[offset].event
        return self._rows[row].event if 0 <= row < len(self._rows) else None

    def row_of_position(self, position: int) -> int | None:
        """The row of the first loaded event at or after ``position`` (None if none).

        Unfiltered every position has a row; filtered only loaded rows count.
        """
        if self.windowed:
            return position - 1 if 1 <= position <= self._head else None
        index = bisect.bisect_left(self._positions, position)
        return index if index < len(self._positions) else None

    def looked_at(self, position: int) -> bool:
        """Whether every event up to ``position`` is known: in the log (unfiltered), or
        looked at with nothing past the last row held matching (filtered)."""
        if self.windowed:
            return position <= self._head
        return self._exhausted and position <= self._scanned_to

    def covers(self, position: int) -> bool:
        """Whether the rows held tell where ``position`` is shown, with no page to load."""
        if self.windowed:
            return True
        if not self._positions:
            return self._at_start and self._exhausted
        return (self._at_start or position >= self._positions[0]) and (
            self._exhausted or position <= self._positions[-1]
        )

    def set_filter(self, where: EventFilter) -> None:
        """Show the events matching ``where`` from the start of the log."""
        self._filter = where
        self.reload()

    def reload(self) -> None:
        """Forget everything held and load the current filter again.

        Queries still running for what was shown are cancelled: they would only hold a
        worker thread for a result nobody will see.
        """
        self._tasks.cancel_all()
        self._generation += 1
        self.beginResetModel()
        # Rows are positions only where positions have no gaps (another tool's store may
        # have them): there, the whole log is a window of consecutive events, as a filter's.
        self._windowed = self._filter == EventFilter() and self._events.gapless
        self._pages.clear()
        self._in_flight.clear()
        self._wanted.clear()
        self._count_tasks.cancel_all()
        self._rows = []
        self._positions = []
        self._at_start = True
        self._focus_row = 0
        self._loading_previous = False
        self._around = None
        self._match_count = None
        self._counted_to = 0
        self._head = 0
        self._head_known = False
        self._error = None
        self._first_page_seen = False
        self._exhausted = False
        self._scanned_to = 0
        self._searching = False
        self._search_cancelled = False
        # Loading already: a view's fetchMore during the reset must not start a twin query.
        self._loading = True
        self._head_pending = False
        self.endResetModel()
        if self.windowed:
            self._load_head()
        else:
            self._fetch_filtered_page()

    def poll_head(self) -> None:
        """Live tail: ask for the head position, and show the events past the last one."""
        if self._head_pending or self._error is not None:
            return
        if self.windowed:
            if self._head_known:
                self._load_head()
        elif self._exhausted and not self._loading:
            self._fetch_filtered_page(tail=True)

    def prefetch_row(self, row: int) -> None:
        """Unfiltered: load the page holding ``row`` even if no view has painted it yet."""
        if self.windowed and 0 <= row < self._head:
            self._row_at(row, want=True)

    def cancel_search(self) -> None:
        """Filtered: stop looking for the page being searched for; rows loaded stay."""
        if self._searching:
            self._tasks.cancel_all()

    def resume_search(self) -> None:
        """Filtered: after a cancelled search, look for the next page again."""
        if self._search_cancelled and not self._loading:
            self._search_cancelled = False
            self._fetch_filtered_page()

    def load_around(self, position: int) -> None:
        """Filtered: replace the rows held by the page of matches before ``position`` and
        the page from it; then ``page_loaded``. Nothing between is read: a jump to the end
        of a filtered log of millions costs two pages."""
        if self.windowed:
            return
        self._tasks.cancel_all()  # their outcomes belong to the window being replaced
        self._window += 1
        self._around = position
        self._head_pending = False
        self._search_cancelled = False
        queries = self._events
        base = self._filter
        size = self._page_size

        def load() -> tuple[list[_Row], bool, bool, int]:
            head = queries.head_position()
            before: list[RecordedEvent] = []
            if position > 1:
                earlier = replace(base, from_position=position - 1)
                before = list(queries.read(earlier, backwards=True, limit=size))
            after = list(queries.read(replace(base, from_position=position), limit=size))
            short_before, short_after = len(before) < size, len(after) < size
            before.reverse()
            return _rows_of(before + after), short_before, short_after, head

        self._loading = True
        self._loading_previous = True
        task = self._submit(load, (self._generation, self._window, "around"))
        task.succeeded.connect(self._on_around_task_succeeded)
        task.failed.connect(self._on_load_task_failed)
        task.cancelled.connect(self._on_filtered_task_cancelled)
        task.progress.connect(self._on_filtered_task_progress)
        self._searching = True
        self.search_started.emit()

    # -- QAbstractTableModel ----------------------------------------------------------------

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """The head position (unfiltered) or the rows loaded so far (filtered)."""
        if parent.isValid():
            return 0
        return self._head if self.windowed else len(self._rows)

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Position, time, stream, type, version, size."""
        return 0 if parent.isValid() else len(_HEADERS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text, alignment and tooltip, the event itself under ``EVENT_ROLE``."""
        if not index.isValid() or not 0 <= index.row() < self.rowCount():
            return None
        row, column = index.row(), index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column in _NUMERIC else None
        item = self._row_at(row, want=role == Qt.ItemDataRole.DisplayRole)
        if item is None:
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{row + 1:,}" if column == COLUMN_POSITION else PLACEHOLDER
            if role == Qt.ItemDataRole.ForegroundRole:
                return _PLACEHOLDER_COLOR
            return None
        event = item.event
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COLUMN_POSITION:
                return f"{event.position:,}"
            if column == COLUMN_TIME:
                return event.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
            if column == COLUMN_STREAM:
                return event.stream_id
            if column == COLUMN_TYPE:
                return event.type
            if column == COLUMN_VERSION:
                return str(event.version)
            if column == COLUMN_SIZE:
                return _format_size(item.size)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == COLUMN_TIME:
                return format_time(event.recorded_at)  # the cell hides the microseconds
            if column == COLUMN_SIZE:
                return f"{item.size:,} bytes of data JSON"
            return f"{event.stream_id}@{event.version} {event.type}\n{event.event_id}"
        if role == EVENT_ROLE:
            return event
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
        if role == Qt.ItemDataRole.TextAlignmentRole and section in _NUMERIC:
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
        """Filtered: whether more events may match than are loaded."""
        return (
            not parent.isValid()
            and not self.windowed
            and not self._exhausted
            and not self._search_cancelled
            and self._error is None
        )

    def fetchMore(self, parent: _ModelIndex = QModelIndex()) -> None:  # noqa: B008
        """Filtered: start loading the next page; its rows arrive with ``page_loaded``."""
        if parent.isValid() or self._loading or not self.canFetchMore():
            return
        self._fetch_filtered_page()

    # -- the unfiltered window --------------------------------------------------------------

    def _row_at(self, row: int, *, want: bool) -> _Row | None:
        if not self.windowed:
            if want:
                self._focus_row = row
                if row < EDGE_ROWS and not self._at_start and not self._loading_previous:
                    self._previous_timer.start()  # not from inside a paint
            return self._rows[row]
        number = row // self._page_size
        page = self._pages.get(number)
        offset = row % self._page_size
        if page is not None and offset < len(page):
            return page[offset]
        # Missing, or loaded before the tail grew past it: (re)load it.
        if want:
            self._want(number)
        return None

    def _want(self, number: int) -> None:
        self._focus_page = number
        self._wanted.pop(number, None)
        self._wanted[number] = None
        while len(self._wanted) > MAX_WANTED:
            self._wanted.popitem(last=False)
        self._want_timer.start()

    @Slot()
    def _on_want_timer_timeout(self) -> None:
        # The newest wants first: while the scrollbar is dragged, only where it is now counts.
        for number in reversed(list(self._wanted)):
            if len(self._in_flight) >= MAX_IN_FLIGHT:
                break
            del self._wanted[number]
            if number not in self._in_flight:
                self._load_page(number)

    def _load_page(self, number: int) -> None:
        events = self._events
        size = self._page_size
        where = EventFilter(from_position=number * size + 1, to_position=(number + 1) * size)

        def load() -> list[_Row]:
            return _rows_of(list(events.read(where, limit=size)))

        self._in_flight.add(number)
        task = self._submit(load, (self._generation, number))
        task.succeeded.connect(self._on_page_task_succeeded)
        task.failed.connect(self._on_load_task_failed)
        task.cancelled.connect(self._on_page_task_cancelled)

    @Slot(object, object)
    def _on_page_task_succeeded(self, tag: object, page: object) -> None:
        generation, number = cast(tuple[int, int], tag)
        if generation != self._generation:
            return
        self._in_flight.discard(number)
        rows = cast(list[_Row], page)
        self._pages[number] = rows
        self._evict()
        first = number * self._page_size
        last = min(first + self._page_size, self._head) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(_HEADERS) - 1))
        if self._wanted:
            self._want_timer.start()
        self._announce_page(first, len(rows))

    @Slot(object)
    def _on_page_task_cancelled(self, tag: object) -> None:
        generation, number = cast(tuple[int, int], tag)
        if generation != self._generation:
            return
        self._in_flight.discard(number)  # wanted again when a view paints its rows

    def _evict(self) -> None:
        while len(self._pages) > MAX_PAGES:
            farthest = max(self._pages, key=lambda number: abs(number - self._focus_page))
            del self._pages[farthest]

    def _load_head(self) -> None:
        self._head_pending = True
        task = self._submit(self._events.head_position, self._generation)
        task.succeeded.connect(self._on_head_task_succeeded)
        task.failed.connect(self._on_head_task_failed)
        task.cancelled.connect(self._on_head_task_cancelled)

    @Slot(object, object)
    def _on_head_task_succeeded(self, generation: object, head: object) -> None:
        if generation != self._generation:
            return
        self._head_pending = False
        position = cast(int, head)
        first_time = not self._head_known
        self._head_known = True
        self._loading = False
        if position > self._head:
            if not first_time:
                self.tail_about_to_grow.emit()
            added = position - self._head
            self.beginInsertRows(QModelIndex(), self._head, position - 1)
            self._head = position
            self.endInsertRows()
            if not first_time:
                self.tail_grew.emit(added)
        if first_time and position == 0:
            self._announce_page(0, 0)

    @Slot(object, object)
    def _on_head_task_failed(self, generation: object, error: object) -> None:
        if generation != self._generation:
            return
        self._head_pending = False
        self._fail(error)

    @Slot(object)
    def _on_head_task_cancelled(self, generation: object) -> None:
        if generation == self._generation:
            self._head_pending = False

    # -- the filtered window ----------------------------------------------------------------

    def _fetch_filtered_page(self, *, tail: bool = False) -> None:
        queries = self._events
        base = self._filter
        after = self._positions[-1] if self._positions else None
        if self._exhausted and self._scanned_to:
            after = max(after or 0, self._scanned_to)  # the tail: only what is new
        size = self._page_size
        where = base if after is None else replace(base, from_position=after + 1)

        def load() -> tuple[list[_Row], bool, int]:
            # A short last page means every event up to this head has been looked at.
            head = queries.head_position()
            page = list(queries.read(where, limit=size))
            return _rows_of(page), len(page) < size, head

        self._loading = True
        if tail:
            self._head_pending = True
        task = self._submit(load, (self._generation, self._window, "tail" if tail else "next"))
        task.succeeded.connect(self._on_filtered_task_succeeded)
        task.failed.connect(self._on_load_task_failed)
        task.cancelled.connect(self._on_filtered_task_cancelled)
        if not tail:  # a tail poll is background work: nobody waits for it
            task.progress.connect(self._on_filtered_task_progress)
            self._searching = True
            self.search_started.emit()

    def _current(self, tag: object) -> bool:
        generation, window, _kind = cast(tuple[int, int, str], tag)
        return generation == self._generation and window == self._window

    @Slot(object, object)
    def _on_filtered_task_succeeded(self, tag: object, outcome: object) -> None:
        if not self._current(tag):
            return
        tail = cast(tuple[int, int, str], tag)[2] == "tail"
        rows, exhausted, head = cast(tuple[list[_Row], bool, int], outcome)
        if tail:
            self._head_pending = False
        else:
            self._searching = False
        self._exhausted = exhausted
        if exhausted:
            self._scanned_to = max(self._scanned_to, head)
        start = len(self._rows)
        if rows:
            if tail:
                self.tail_about_to_grow.emit()
                self._count_tail(rows)
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self._rows.extend(rows)
            self._positions.extend(row.event.position for row in rows)
            self.endInsertRows()
        # Still "loading" until here: views and testers may call fetchMore from inside
        # the insert notifications, and must not ask for this page a second time.
        self._loading = False
        if rows and tail:
            self.tail_grew.emit(len(rows))
        start -= self._trim()
        if tail and not rows and self._first_page_seen:
            return  # nothing new: no news
        first_page = not self._first_page_seen
        self._announce_page(start, len(rows))
        if first_page and not exhausted:
            self._count_matches()

    @Slot(object, object)
    def _on_around_task_succeeded(self, tag: object, outcome: object) -> None:
        if not self._current(tag):
            return
        rows, at_start, exhausted, head = cast(tuple[list[_Row], bool, bool, int], outcome)
        self._searching = False
        target = self._around or 0
        self._around = None
        if self._rows:
            self.beginRemoveRows(QModelIndex(), 0, len(self._rows) - 1)
            self._rows = []
            self._positions = []
            self.endRemoveRows()
        self._at_start = at_start
        self._exhausted = exhausted
        if exhausted:
            self._scanned_to = max(self._scanned_to, head)
        if rows:
            self.beginInsertRows(QModelIndex(), 0, len(rows) - 1)
            self._rows = rows
            self._positions = [row.event.position for row in rows]
            self.endInsertRows()
        self._focus_row = bisect.bisect_left(self._positions, target)  # until a view paints
        self._loading = False
        self._loading_previous = False
        self._announce_page(0, len(rows))

    @Slot()
    def _on_previous_timer_timeout(self) -> None:
        if (
            self.windowed
            or self._at_start
            or self._loading_previous
            or self._around is not None
            or self._error is not None
            or not self._positions
        ):
            return
        first = self._positions[0]
        if first <= 1:
            self._at_start = True
            return
        queries = self._events
        where = replace(self._filter, from_position=first - 1)
        size = self._page_size

        def load() -> tuple[list[_Row], bool]:
            page = list(queries.read(where, backwards=True, limit=size))
            page.reverse()
            return _rows_of(page), len(page) < size

        self._loading_previous = True
        task = self._submit(load, (self._generation, self._window, "previous"))
        task.succeeded.connect(self._on_previous_task_succeeded)
        task.failed.connect(self._on_load_task_failed)
        task.cancelled.connect(self._on_previous_task_cancelled)

    @Slot(object, object)
    def _on_previous_task_succeeded(self, tag: object, outcome: object) -> None:
        if not self._current(tag):
            return
        rows, at_start = cast(tuple[list[_Row], bool], outcome)
        self._at_start = at_start
        if rows:
            self.beginInsertRows(QModelIndex(), 0, len(rows) - 1)
            self._rows[:0] = rows
            self._positions[:0] = [row.event.position for row in rows]
            self.endInsertRows()
            self._focus_row += len(rows)
            self.rows_shifted.emit(len(rows))
        self._loading_previous = False
        self._trim()
        self._announce_page(0, len(rows))

    @Slot(object)
    def _on_previous_task_cancelled(self, tag: object) -> None:
        if self._current(tag):
            self._loading_previous = False  # asked again when a view paints the top

    def _trim(self) -> int:
        """Drop the rows past ``MAX_PAGES`` pages at the end farther from the focus;
        return how many were dropped above the rows kept."""
        excess = len(self._rows) - MAX_PAGES * self._page_size
        if excess <= 0:
            return 0
        if self._focus_row >= len(self._rows) // 2:
            self.rows_about_to_be_dropped.emit(0, excess - 1)
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            del self._rows[:excess]
            del self._positions[:excess]
            self.endRemoveRows()
            self._at_start = False
            self._focus_row = max(0, self._focus_row - excess)
            self.rows_shifted.emit(-excess)
            return excess
        keep = len(self._rows) - excess
        self.rows_about_to_be_dropped.emit(keep, len(self._rows) - 1)
        self.beginRemoveRows(QModelIndex(), keep, len(self._rows) - 1)
        del self._rows[keep:]
        del self._positions[keep:]
        self.endRemoveRows()
        self._exhausted = False  # the rows dropped are read again when scrolled to
        return 0

    def _count_matches(self) -> None:
        """Count the matches on the task runner (not a payload search: a full scan)."""
        where = self._filter
        if where.text is not None:
            return
        queries = self._events

        def count() -> tuple[int, int]:
            head = queries.head_position()
            upto = head if where.to_position is None else min(head, where.to_position)
            return queries.count(replace(where, to_position=upto)), upto

        task = self._count_tasks.add(self._runner.submit(count, tag=self._generation))
        task.succeeded.connect(self._on_count_task_succeeded)

    @Slot(object, object)
    def _on_count_task_succeeded(self, generation: object, outcome: object) -> None:
        if generation != self._generation:
            return
        self._match_count, self._counted_to = cast(tuple[int, int], outcome)
        self.matches_counted.emit(self._match_count)

    def _count_tail(self, rows: list[_Row]) -> None:
        if self._match_count is None:
            return
        new = [row.event.position for row in rows if row.event.position > self._counted_to]
        if new:
            self._match_count += len(new)
            self._counted_to = new[-1]

    @Slot(object, int, int)
    def _on_filtered_task_progress(self, tag: object, done: int, total: int) -> None:
        if self._current(tag) and self._searching:
            self.search_progressed.emit(done, total)

    @Slot(object)
    def _on_filtered_task_cancelled(self, tag: object) -> None:
        if not self._current(tag):
            return  # a filter or window replaced since: cancelled on purpose
        kind = cast(tuple[int, int, str], tag)[2]
        self._loading = False
        if kind == "tail":
            self._head_pending = False
            return
        if kind == "around":
            self._around = None
            self._loading_previous = False
        self._searching = False
        self._search_cancelled = True
        self.search_cancelled.emit()

    @Slot(object, object)
    def _on_load_task_failed(self, tag: object, error: object) -> None:
        generation = cast(tuple[int, object], tag)[0]
        if generation != self._generation:
            return
        self._loading = False
        self._loading_previous = False
        self._around = None
        self._searching = False
        self._head_pending = False
        self._in_flight.clear()
        self._fail(error)

    def _fail(self, error: object) -> None:
        self._error = str(error) or type(error).__name__
        self.load_failed.emit(self._error)

    def _submit(self, load: Callable[[], object], tag: object) -> Task:
        return self._tasks.add(self._runner.submit(load, tag=tag))

    def _announce_page(self, first_row: int, rows: int) -> None:
        self.page_loaded.emit(first_row, rows)
        if not self._first_page_seen:
            self._first_page_seen = True
            self.first_page_loaded.emit()
