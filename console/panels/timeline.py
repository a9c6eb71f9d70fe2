"""The time-travel timeline: event rate over time for a filter, with a cursor to jump to."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import numpy as np
import pyqtgraph as pg
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from console.workers import TaskGroup, TaskRunner
from core.events import from_micros, to_micros
from core.services.events import EventQueries
from core.store import EventFilter

__all__ = [
    "LOAD_DELAY_MS",
    "MAX_BUCKETS",
    "PIXELS_PER_BUCKET",
    "BucketPlan",
    "TimelinePanel",
    "UtcDateAxis",
    "format_width",
    "plan_buckets",
]

LOAD_DELAY_MS = 150
MAX_BUCKETS = 600
PIXELS_PER_BUCKET = 3

_MS = 1_000
_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR = 365 * _DAY
# Bucket widths a reader can say aloud; buckets are aligned to multiples of them (UTC).
_NICE_WIDTHS_US = (
    *(k * _MS for k in (1, 2, 5, 10, 20, 50, 100, 200, 500)),
    *(k * _SECOND for k in (1, 2, 5, 10, 15, 30)),
    *(k * _MINUTE for k in (1, 2, 5, 10, 15, 30)),
    *(k * _HOUR for k in (1, 2, 3, 6, 12)),
    *(k * _DAY for k in (1, 2, 7, 14, 30, 91)),
)
_UNITS = ((_YEAR, "y"), (_DAY, "d"), (_HOUR, "h"), (_MINUTE, "min"), (_SECOND, "s"), (_MS, "ms"))
_MIN_MARGIN_US = _SECOND
_MARGIN_FRACTION = 0.02
# Keep panning inside years datetime and the epoch float can both represent exactly.
_X_LIMITS = (0.0, 4_102_444_800.0)  # 1970-01-01 .. 2100-01-01
_MIN_X_RANGE_S = 0.05


@dataclass(frozen=True, slots=True)
class BucketPlan:
    """Equal, aligned time slices covering a range: ``count`` buckets of ``width_us``."""

    start_us: int
    width_us: int
    count: int

    @property
    def end_us(self) -> int:
        """Where the last bucket ends (inclusive)."""
        return self.start_us + self.width_us * self.count


def plan_buckets(start_us: int, end_us: int, target: int) -> BucketPlan:
    """The narrowest nice bucket width giving at most ``target`` buckets over a range.

    The buckets are aligned to multiples of their width since the epoch, so they cover
    ``[start_us, end_us]`` and may stick out a little on both sides.

    Args:
        start_us: the range's start, microseconds since the epoch.
        end_us: its end (not before the start).
        target: the most buckets wanted (at least 1).
    """
    target = max(1, target)
    for width in _NICE_WIDTHS_US:
        plan = _aligned(start_us, end_us, width)
        if plan.count <= target:
            return plan
    # Longer than the list: a whole number of years, 1, 2 or 5 times a power of ten.
    years = max(1, math.ceil((end_us - start_us) / target / _YEAR))
    magnitude = 10 ** int(math.log10(years))
    step = next(k * magnitude for k in (1, 2, 5, 10) if k * magnitude >= years)
    while True:
        plan = _aligned(start_us, end_us, step * _YEAR)
        if plan.count <= target:
            return plan
        step *= 2


def _aligned(start_us: int, end_us: int, width: int) -> BucketPlan:
    first = (start_us // width) * width
    last = -((-end_us) // width) * width
    return BucketPlan(first, width, max(1, (last - first) // width))


def format_width(width_us: int) -> str:
    """A bucket width as people write it: ``500 ms``, ``15 s``, ``5 min``, ``1 h``, ``7 d``."""
    for unit, name in _UNITS:
        if width_us >= unit and width_us % unit == 0:
            return f"{width_us // unit} {name}"
    return f"{width_us / _MS:g} ms"


@dataclass(frozen=True, slots=True)
class _Loaded:
    """What a load task hands back: the buckets, and the range to show (first loads)."""

    plan: BucketPlan | None  # None: the store is empty
    counts: list[int]
    view_us: tuple[int, int] | None
    last_us: int | None = None  # the last event's time (first loads)


class TimelinePanel(QWidget):
    """A chart of how many events (of the current filter) were recorded per time slice.

    The visible time range decides what is loaded: the first load covers the whole store,
    and after each pan or zoom (once the view has been still for ``LOAD_DELAY_MS``) the
    visible range is counted again in about one bucket per ``PIXELS_PER_BUCKET`` pixels
    (at most ``max_buckets``). Counting runs on the task runner; a new range or filter
    cancels the count still running for the old one.

    The chart takes its colours from the palette, and follows it when it changes.

    A vertical cursor marks a moment: clicking in the chart or dragging the cursor emits
    ``time_selected`` with that moment (aware, UTC); :meth:`set_cursor` moves it quietly.

    Args:
        events: the store's events.
        runner: where the store queries run.
        max_buckets: the most buckets one load asks for.
        parent: the usual QWidget parent.
    """

    time_selected = Signal(object)  # datetime, aware UTC
    timeline_loaded = Signal(int)  # events in the loaded buckets
    load_failed = Signal(str)

    def __init__(
        self,
        events: EventQueries,
        runner: TaskRunner,
        *,
        max_buckets: int = MAX_BUCKETS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("timelinePanel")
        self._events = events
        self._runner = runner
        self._max_buckets = max_buckets
        self._where: EventFilter | None = None
        self._generation = 0
        self._loading = False
        self._fitted = False  # whether the view shows a loaded span (else: load the span)
        self._applying_range = False
        self._requested_target = 0
        self._plan: BucketPlan | None = None
        self._counts: list[int] = []
        self._error: str | None = None
        self._tasks = TaskGroup(self)

        self._axis = UtcDateAxis(orientation="bottom", utcOffset=0)
        self._plot = pg.PlotWidget(self, axisItems={"bottom": self._axis})
        self._plot.setObjectName("timelinePlot")
        item = self._plot.getPlotItem()
        item.setMenuEnabled(False)
        # Room on the right for the last date label, which may stick out past the axis.
        item.setContentsMargins(4, 4, self.fontMetrics().horizontalAdvance("00:00") + 8, 4)
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "time (UTC)")
        item.setLabel("left", "events")
        item.getAxis("left").setWidth(self.fontMetrics().horizontalAdvance("0000000") + 24)

        self._view = item.getViewBox()
        self._view.setMouseEnabled(x=True, y=False)
        self._view.setLimits(xMin=_X_LIMITS[0], xMax=_X_LIMITS[1], minXRange=_MIN_X_RANGE_S, yMin=0)
        self._view.enableAutoRange(axis=pg.ViewBox.YAxis)
        self._view.setAutoVisible(y=True)

        # Step mode "right": count i spans [edge i, edge i+1]; x and y stay the same
        # length (a trailing 0 closes the last bucket), which clip-to-view relies on.
        self._curve = pg.PlotDataItem(stepMode="right", fillLevel=0)
        self._curve.setClipToView(True)
        self._curve.setDownsampling(auto=True, method="peak")
        item.addItem(self._curve)

        self._cursor = pg.InfiniteLine(
            angle=90,
            movable=True,
            pen=pg.mkPen(QColor("#d03b3b"), width=2),
            hoverPen=pg.mkPen(QColor("#ff5a5a"), width=3),
            label="",
            # Beside the line, on the side facing the middle of the view.
            labelOpts={"position": 0.92, "anchors": [(0, 0), (1, 0)]},
        )
        self._cursor.setZValue(10)
        self._cursor.hide()
        item.addItem(self._cursor, ignoreBounds=True)
        self._cursor.sigPositionChanged.connect(self._on_cursor_position_changed)
        self._cursor.sigPositionChangeFinished.connect(self._on_cursor_position_change_finished)

        self._message = pg.TextItem("", anchor=(0.5, 0.5))
        self._message.setParentItem(self._view)
        self._message.setZValue(20)
        self._message.hide()
        self._apply_palette()

        self._load_timer = QTimer(self)
        self._load_timer.setSingleShot(True)
        self._load_timer.timeout.connect(self._on_load_timer_timeout)
        self._view.sigXRangeChanged.connect(self._on_view_x_range_changed)
        self._view.sigResized.connect(self._on_view_resized)
        self._plot.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._plot)

        self.reload()

    # -- state ------------------------------------------------------------------------------

    @property
    def plot_widget(self) -> pg.PlotWidget:
        """The chart."""
        return self._plot

    @property
    def curve(self) -> pg.PlotDataItem:
        """The bucket curve: x = bucket edges (epoch seconds), y = counts and a final 0."""
        return self._curve

    @property
    def cursor_line(self) -> pg.InfiniteLine:
        """The draggable cursor."""
        return self._cursor

    @property
    def where(self) -> EventFilter | None:
        """The filter whose events are counted (None: every event)."""
        return self._where

    @property
    def loading(self) -> bool:
        """Whether a load is scheduled or running."""
        return self._loading

    @property
    def bucket_width_us(self) -> int | None:
        """The width of the loaded buckets in microseconds (None before a load)."""
        return self._plan.width_us if self._plan is not None else None

    @property
    def loaded_range(self) -> tuple[datetime, datetime] | None:
        """Where the loaded buckets start and end (None before a load, or when empty)."""
        if self._plan is None:
            return None
        return from_micros(self._plan.start_us), from_micros(self._plan.end_us)

    @property
    def counts(self) -> list[int]:
        """The loaded bucket counts, oldest first."""
        return list(self._counts)

    @property
    def message(self) -> str:
        """The text shown over the chart ("" when the chart speaks for itself)."""
        return self._message.textItem.toPlainText() if self._message.isVisible() else ""

    @property
    def cursor_time(self) -> datetime | None:
        """Where the cursor stands (None while hidden)."""
        if not self._cursor.isVisible():
            return None
        return _time_at(self._cursor.value())

    def visible_range(self) -> tuple[datetime, datetime]:
        """The time range the chart shows."""
        low, high = self._view.viewRange()[0]
        return _time_at(low), _time_at(high)

    # -- commands ---------------------------------------------------------------------------

    def set_filter(self, where: EventFilter | None) -> None:
        """Count only the events matching ``where`` (None: all) and fit the chart again."""
        self._where = None if where == EventFilter() else where
        self.reload()

    def reload(self) -> None:
        """Load the whole store's time span again and show it."""
        self._fitted = False
        self._schedule_load(0)

    def show_range(self, start: datetime, end: datetime) -> None:
        """Show (and load) the time range from ``start`` to ``end``."""
        self._view.setXRange(start.timestamp(), end.timestamp(), padding=0)

    def set_cursor(self, moment: datetime) -> None:
        """Put the cursor at ``moment`` without emitting ``time_selected``."""
        self._cursor.setValue(to_micros(moment) / _SECOND)
        self._show_cursor()

    # -- colours ----------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        """Recolour the chart when the palette changes (View → Theme)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        base = palette.color(QPalette.ColorRole.Base)
        accent = palette.color(QPalette.ColorRole.Highlight)
        self._plot.setBackground(base)
        item = self._plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(text))  # the axis title takes this colour too
            axis.setTextPen(pg.mkPen(text))
        fill = QColor(accent)
        fill.setAlpha(110)
        self._curve.setPen(pg.mkPen(accent, width=1))
        self._curve.setBrush(pg.mkBrush(fill))
        label = self._cursor.label
        label.setColor(text)
        label.fill = pg.mkBrush(base)
        label.update()
        self._message.setColor(text)

    # -- loading ----------------------------------------------------------------------------

    def _bucket_target(self) -> int:
        width = self._view.width() or self._plot.width() - 80
        return max(10, min(self._max_buckets, int(width) // PIXELS_PER_BUCKET))

    def _schedule_load(self, delay_ms: int) -> None:
        # A new generation now, not when the query starts: a result still in flight for
        # the old view must not be shown (or announced) once the view has moved. Nor
        # should it keep counting on a worker thread.
        self._tasks.cancel_all()
        self._generation += 1
        self._loading = True
        self._load_timer.start(delay_ms)

    def _start_load(self) -> None:
        events = self._events
        where = self._where
        target = self._bucket_target()
        self._requested_target = target
        view: tuple[int, int] | None = None
        if self._fitted:
            low, high = self._view.viewRange()[0]
            view = (_micros_at(low), _micros_at(high))

        def load() -> _Loaded:
            view_us, last = view, None
            if view_us is None:
                span = events.time_span()
                if span is None:
                    return _Loaded(None, [], None)
                first, last = to_micros(span[0]), to_micros(span[1])
                margin = max(_MIN_MARGIN_US, int((last - first) * _MARGIN_FRACTION))
                view_us = (first - margin, last + margin)
            plan = plan_buckets(view_us[0], view_us[1], target)
            counts = events.timeline(
                from_micros(plan.start_us), from_micros(plan.end_us), plan.count, where
            )
            return _Loaded(plan, counts, None if view is not None else view_us, last)

        task = self._tasks.add(self._runner.submit(load, tag=self._generation))
        task.succeeded.connect(self._on_load_task_succeeded)
        task.failed.connect(self._on_load_task_failed)
        task.cancelled.connect(self._on_load_task_cancelled)

    @Slot()
    def _on_load_timer_timeout(self) -> None:
        self._start_load()

    @Slot(object, object)
    def _on_load_task_succeeded(self, generation: object, outcome: object) -> None:
        if generation != self._generation:
            return  # the view or the filter changed while this loaded
        loaded = cast(_Loaded, outcome)
        self._loading = False
        self._error = None
        if loaded.plan is None:
            self._show_empty()
            self.timeline_loaded.emit(0)
            return
        plan = loaded.plan
        self._plan = plan
        self._counts = list(loaded.counts)
        edges = (plan.start_us + plan.width_us * np.arange(plan.count + 1, dtype=np.int64)) / (
            _SECOND
        )
        heights = np.zeros(plan.count + 1, dtype=np.float64)
        heights[:-1] = loaded.counts
        self._curve.setData(edges.astype(np.float64), heights)
        counted = "events" if self._where is None else "matching events"
        self._plot.getPlotItem().setLabel("left", f"{counted} / {format_width(plan.width_us)}")
        if loaded.view_us is not None:
            self._applying_range = True
            try:
                low, high = loaded.view_us
                self._view.setXRange(low / _SECOND, high / _SECOND, padding=0)
            finally:
                self._applying_range = False
            self._fitted = True
            if not self._cursor.isVisible() and loaded.last_us is not None:
                self._cursor.setValue(loaded.last_us / _SECOND)  # the head, quietly
        total = sum(loaded.counts)
        if total == 0:
            self._show_message(
                "no matching events in this range" if self._where else "no events in this range"
            )
        else:
            self._show_message("")
        self._show_cursor()
        self.timeline_loaded.emit(total)

    @Slot(object, object)
    def _on_load_task_failed(self, generation: object, error: object) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self._error = str(error) or type(error).__name__
        self._show_message(f"could not load the timeline: {self._error}")
        self.load_failed.emit(self._error)

    @Slot(object)
    def _on_load_task_cancelled(self, generation: object) -> None:
        if generation == self._generation:
            self._loading = False  # cancelled from outside (the store is reopened): keep the chart

    def _show_empty(self) -> None:
        self._plan = None
        self._counts = []
        self._curve.setData([], [])
        self._cursor.hide()
        self._plot.getPlotItem().setLabel("left", "events")
        self._show_message("no events")

    def _show_message(self, text: str) -> None:
        self._message.setText(text)
        self._message.setVisible(bool(text))
        self._place_message()

    def _place_message(self) -> None:
        rect = self._view.boundingRect()
        self._message.setPos(QPointF(rect.center()))

    # -- interaction ------------------------------------------------------------------------

    @Slot(object, object)
    def _on_view_x_range_changed(self, _view: object, _range: object = None) -> None:
        if self._applying_range or not self._fitted:
            return
        self._schedule_load(LOAD_DELAY_MS)

    @Slot(object)
    def _on_view_resized(self, _view: object) -> None:
        self._place_message()
        target = self._bucket_target()
        if self._requested_target and abs(target - self._requested_target) > max(
            2, self._requested_target // 8
        ):
            self._requested_target = target
            self._schedule_load(LOAD_DELAY_MS)

    @Slot(object)
    def _on_scene_mouse_clicked(self, event: object) -> None:
        click = cast(MouseClickEvent, event)
        if click.button() != Qt.MouseButton.LeftButton or self._plan is None:
            return
        position = click.scenePos()
        if not self._view.sceneBoundingRect().contains(position):
            return
        x = self._view.mapSceneToView(position).x()
        self._cursor.setValue(x)
        self._show_cursor()
        click.accept()
        self.time_selected.emit(_time_at(x))

    @Slot(object)
    def _on_cursor_position_changed(self, _line: object) -> None:
        self._update_cursor_label()

    def _show_cursor(self) -> None:
        self._cursor.show()
        self._update_cursor_label()

    def _update_cursor_label(self) -> None:
        if not self._cursor.isVisible():
            return  # the label ignores updates while hidden; showing the cursor calls again
        moment = _time_at(self._cursor.value())
        fine = self._plan is not None and self._plan.width_us < _SECOND
        text = (
            moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if fine else f"{moment:%Y-%m-%d %H:%M:%S}"
        )
        label = self._cursor.label
        label.setFormat(text)  # no "{value}": the label shows the time, not epoch seconds
        label.setText(text)
        label.updatePosition()

    @Slot(object)
    def _on_cursor_position_change_finished(self, line: object) -> None:
        self.time_selected.emit(_time_at(self._cursor.value()))


class UtcDateAxis(pg.DateAxisItem):
    """A date axis whose finer ticks give way to coarser ones (no "Jan" over "02"), and
    whose sub-second ticks read as times: pyqtgraph labels them ``SS.mmm`` alone, so a
    span of a few seconds showed as ``45.000 … 47.500``. Whole seconds now say the time
    of day (``04:28:46``, ``46.500``, ``04:28:47``, …); when no whole second is among
    them, the first tick does (``04:28:46.250``)."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """pyqtgraph's labels; at sub-second spacing, whole seconds as times of day."""
        strings = list(super().tickStrings(values, scale, spacing))
        if spacing >= 1 or not values or len(strings) != len(values):
            return strings
        try:
            moments = [datetime.fromtimestamp(value, UTC) for value in values]
        except (OverflowError, ValueError, OSError):
            return strings
        whole = [abs(value - round(value)) < 1e-6 for value in values]
        for at, moment in enumerate(moments):
            if whole[at]:
                strings[at] = moment.strftime("%H:%M:%S")
        if not any(whole):
            strings[0] = moments[0].strftime("%H:%M:%S.%f")[:-3]
        return strings

    def tickValues(
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, list[float]]]:
        """The parent's ticks, minus finer ones closer than a label to a coarser one."""
        levels = super().tickValues(minVal, maxVal, size)
        gap = float(getattr(self, "minSpacing", 0.0))
        taken: list[float] = []
        kept: list[tuple[float, list[float]]] = []
        for spacing, values in levels:
            free = [v for v in values if all(abs(v - t) >= gap for t in taken)]
            taken.extend(free)
            kept.append((spacing, free))
        return kept


def _micros_at(seconds: float) -> int:
    low, high = _X_LIMITS
    return round(min(max(seconds, low), high) * _SECOND)


def _time_at(seconds: float) -> datetime:
    return from_micros(_micros_at(seconds)).astimezone(UTC)
