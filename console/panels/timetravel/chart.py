"""The time-travel chart: event rate over the store's span, cursors A and B, run and audit marks."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from console.panels.timeline import BucketPlan, UtcDateAxis, format_width
from core.events import from_micros

__all__ = ["TimeTravelChart"]

_SECOND = 1_000_000
_RUN_COLOUR = QColor("#2e8b57")
_AUDIT_COLOUR = QColor("#8a56c2")


def _seconds(micros: int) -> float:
    return micros / _SECOND


def _time_at(seconds: float) -> datetime:
    return from_micros(round(seconds * _SECOND)).astimezone(UTC)


class TimeTravelChart(QWidget):
    """Event counts per time slice, a draggable cursor A (the point shown), an optional
    cursor B (the other end of "changes between A and B"), and marks along the bottom
    for projection runs (green) and operator actions (purple).

    Moving the cursors in code (:meth:`place_cursor`, :meth:`place_b`) is quiet; a user's
    drag emits ``cursor_dragged`` on each move and ``cursor_released`` when it ends.
    """

    cursor_dragged = Signal(object)  # datetime (aware, UTC) under cursor A while dragged
    cursor_released = Signal(object)  # datetime where the drag of cursor A ended

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._placing = False
        self._axis = UtcDateAxis(orientation="bottom", utcOffset=0)
        self._plot = pg.PlotWidget(self, axisItems={"bottom": self._axis})
        self._plot.setObjectName("timeTravelPlot")
        item = self._plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setContentsMargins(4, 4, self.fontMetrics().horizontalAdvance("00:00") + 8, 4)
        item.setLabel("left", "events")
        item.getAxis("left").setWidth(self.fontMetrics().horizontalAdvance("00000") + 24)
        self._view = item.getViewBox()
        self._view.setMouseEnabled(x=True, y=False)
        self._view.enableAutoRange(axis=pg.ViewBox.YAxis)
        self._view.setAutoVisible(y=True)

        self._curve = pg.PlotDataItem(stepMode="right", fillLevel=0)
        self._curve.setClipToView(True)
        self._curve.setDownsampling(auto=True, method="peak")
        item.addItem(self._curve)
        self._runs = pg.ScatterPlotItem(symbol="t1", size=11, pen=None, brush=_RUN_COLOUR)
        self._audits = pg.ScatterPlotItem(symbol="d", size=9, pen=None, brush=_AUDIT_COLOUR)
        for marks in (self._runs, self._audits):
            marks.setZValue(5)
            item.addItem(marks)

        self._cursor = self._line(QColor("#d03b3b"), "A")
        self._cursor.sigPositionChanged.connect(self._on_cursor_position_changed)
        self._cursor.sigPositionChangeFinished.connect(self._on_cursor_position_change_finished)
        self._b = self._line(QColor("#2f6fd0"), "B")
        item.addItem(self._cursor, ignoreBounds=True)
        item.addItem(self._b, ignoreBounds=True)

        self._message = pg.TextItem("", anchor=(0.5, 0.5))
        self._message.setParentItem(self._view)
        self._view.sigResized.connect(self._on_view_resized)
        self._apply_palette()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._plot)

    @staticmethod
    def _line(colour: QColor, name: str) -> pg.InfiniteLine:
        line = pg.InfiniteLine(
            angle=90,
            movable=name == "A",
            pen=pg.mkPen(colour, width=2),
            hoverPen=pg.mkPen(colour.lighter(130), width=3),
            label=name,
            labelOpts={"position": 0.9, "color": colour, "anchors": [(0, 0), (1, 0)]},
        )
        line.setZValue(10)
        line.hide()
        return line

    # -- state --------------------------------------------------------------------------------

    @property
    def plot_widget(self) -> pg.PlotWidget:
        """The pyqtgraph widget."""
        return self._plot

    @property
    def curve(self) -> pg.PlotDataItem:
        """The event-rate step curve."""
        return self._curve

    @property
    def cursor_line(self) -> pg.InfiniteLine:
        """Cursor A (draggable): the point the panel shows."""
        return self._cursor

    @property
    def b_line(self) -> pg.InfiniteLine:
        """Cursor B: the other end of "changes between A and B" (hidden until set)."""
        return self._b

    @property
    def run_marks(self) -> pg.ScatterPlotItem:
        """Marks at the start of projection runs."""
        return self._runs

    @property
    def audit_marks(self) -> pg.ScatterPlotItem:
        """Marks at operator actions (``$audit`` events)."""
        return self._audits

    @property
    def message(self) -> str:
        """The text shown over the chart (an empty store), or ''."""
        return str(self._message.toPlainText())

    # -- updates ------------------------------------------------------------------------------

    def show_counts(self, plan: BucketPlan, counts: list[int], view_us: tuple[int, int]) -> None:
        """Draw bucket counts and show a time range (microseconds since the epoch)."""
        edges = (plan.start_us + plan.width_us * np.arange(plan.count + 1, dtype=np.int64)) / (
            _SECOND
        )
        heights = np.zeros(plan.count + 1, dtype=np.float64)
        heights[:-1] = counts
        self._curve.setData(edges.astype(np.float64), heights)
        self._plot.getPlotItem().setLabel("left", f"events / {format_width(plan.width_us)}")
        self._view.setXRange(_seconds(view_us[0]), _seconds(view_us[1]), padding=0)
        self.show_message("")

    def show_marks(self, runs_us: list[int], audits_us: list[int]) -> None:
        """Place the run and operator-action marks along the bottom of the chart."""
        self._runs.setData([_seconds(t) for t in runs_us], [0.0] * len(runs_us))
        self._audits.setData([_seconds(t) for t in audits_us], [0.0] * len(audits_us))

    def show_message(self, text: str) -> None:
        """Show ``text`` over the chart ('' hides it)."""
        self._message.setText(text)
        self._message.setVisible(bool(text))
        self._message.setPos(QPointF(self._view.boundingRect().center()))

    def place_cursor(self, micros: int, label: str) -> None:
        """Move cursor A without emitting a drag, with ``label`` beside it."""
        self._placing = True
        try:
            self._cursor.setValue(_seconds(micros))
        finally:
            self._placing = False
        self._set_label(self._cursor, label)

    def place_b(self, micros: int | None, label: str = "") -> None:
        """Show cursor B at a time, or hide it (None)."""
        if micros is None:
            self._b.hide()
            return
        self._b.setValue(_seconds(micros))
        self._set_label(self._b, label)

    @staticmethod
    def _set_label(line: pg.InfiniteLine, text: str) -> None:
        line.show()
        line.label.setFormat(text)
        line.label.setText(text)
        line.label.updatePosition()

    def changeEvent(self, event: QEvent) -> None:
        """Recolour the chart when the palette changes."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        base = palette.color(QPalette.ColorRole.Base)
        accent = palette.color(QPalette.ColorRole.Highlight)
        self._plot.setBackground(base)
        for name in ("left", "bottom"):
            axis = self._plot.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
        fill = QColor(accent)
        fill.setAlpha(110)
        self._curve.setPen(pg.mkPen(accent, width=1))
        self._curve.setBrush(pg.mkBrush(fill))
        for line in (self._cursor, self._b):
            line.label.fill = pg.mkBrush(base)
            line.label.update()
        self._message.setColor(text)

    # -- interaction --------------------------------------------------------------------------

    @Slot(object)
    def _on_view_resized(self, _view: object) -> None:
        self._message.setPos(QPointF(self._view.boundingRect().center()))

    @Slot(object)
    def _on_cursor_position_changed(self, _line: object) -> None:
        if not self._placing:
            self.cursor_dragged.emit(_time_at(self._cursor.value()))

    @Slot(object)
    def _on_cursor_position_change_finished(self, _line: object) -> None:
        self.cursor_released.emit(_time_at(self._cursor.value()))
