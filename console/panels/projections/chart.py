"""The projections panel's charts: one version's lag and throughput over its last hour of runs."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from console.panels.projections.loads import History
from console.panels.timeline import UtcDateAxis

__all__ = ["ProjectionChart"]

_RATE_COLOUR = QColor("#2e8b57")
_MIN_SPAN_S = 2.0  # a single run still gets a readable axis around it


class ProjectionChart(QWidget):
    """Two plots over one time axis (UTC): the events behind (lag) at each run's start and
    end and now, and each run's throughput (positions per second). Both curves are built
    once and updated with ``setData`` (see :class:`~console.panels.projections.loads.History`
    for how the lag is derived)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = pg.GraphicsLayoutWidget(self)
        self._layout.setObjectName("projectionChart")
        self._layout.ci.setContentsMargins(2, 2, 12, 2)
        label_width = self.fontMetrics().horizontalAdvance("000,000") + 24
        self._lag_plot = self._plot(0, "lag (events)", label_width)
        self._rate_plot = self._plot(1, "events/s", label_width)
        self._rate_plot.setXLink(self._lag_plot)
        self._lag_plot.getAxis("bottom").setStyle(showValues=False)

        self._lag = pg.PlotDataItem(stepMode=None, symbol="o", symbolSize=4)
        self._lag.setClipToView(True)
        self._lag.setDownsampling(auto=True, method="peak")
        self._lag_plot.addItem(self._lag)
        self._rate = pg.ScatterPlotItem(symbol="o", size=6, pen=None, brush=_RATE_COLOUR)
        self._rate_plot.addItem(self._rate)

        self._message = pg.TextItem("", anchor=(0.5, 0.5))
        self._message.setParentItem(self._lag_plot.getViewBox())
        self._lag_plot.getViewBox().sigResized.connect(self._on_view_resized)
        self._apply_palette()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._layout)
        self.show_message("Select a projection to chart its last hour of runs.")

    def _plot(self, row: int, label: str, label_width: int) -> pg.PlotItem:
        axis = UtcDateAxis(orientation="bottom", utcOffset=0)
        plot = self._layout.addPlot(row=row, col=0, axisItems={"bottom": axis})
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("left", label)
        plot.getAxis("left").setWidth(label_width)
        box = plot.getViewBox()
        box.setMouseEnabled(x=True, y=False)
        box.enableAutoRange(axis=pg.ViewBox.YAxis)
        box.setLimits(yMin=0)
        return plot

    @property
    def lag_curve(self) -> pg.PlotDataItem:
        """Events behind over time."""
        return self._lag

    @property
    def rate_points(self) -> pg.ScatterPlotItem:
        """Each run's positions per second, at its end."""
        return self._rate

    @property
    def message(self) -> str:
        """The text shown over the chart, or ''."""
        return str(self._message.toPlainText())

    def show_history(self, history: History) -> None:
        """Draw a version's runs (an empty history says so)."""
        self._lag.setData(history.lag_times, history.lag_events)
        self._rate.setData(history.rate_times, history.rate_values)
        times = history.lag_times + history.rate_times
        first, last = min(times), max(times)
        if last - first < _MIN_SPAN_S:
            middle = (first + last) / 2
            first, last = middle - _MIN_SPAN_S / 2, middle + _MIN_SPAN_S / 2
        self._lag_plot.setXRange(first, last, padding=0.04)
        self._lag_plot.setYRange(0, max([1, *history.lag_events]), padding=0.08)
        self._rate_plot.setYRange(0, max([1.0, *history.rate_values]), padding=0.08)
        self.show_message("" if history.runs else f"{history.reference}: no runs in the last hour")

    def clear(self, message: str = "") -> None:
        """Empty both plots, with ``message`` over them."""
        self._lag.setData([], [])
        self._rate.setData([], [])
        self.show_message(message)

    def show_message(self, text: str) -> None:
        """Show ``text`` over the lag plot ('' hides it)."""
        self._message.setText(text)
        self._message.setVisible(bool(text))
        self._message.setPos(QPointF(self._lag_plot.getViewBox().boundingRect().center()))

    def changeEvent(self, event: QEvent) -> None:
        """Recolour the chart when the palette changes."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        accent = palette.color(QPalette.ColorRole.Highlight)
        self._layout.setBackground(palette.color(QPalette.ColorRole.Base))
        for plot in (self._lag_plot, self._rate_plot):
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(text))
                axis.setTextPen(pg.mkPen(text))
        fill = QColor(accent)
        fill.setAlpha(70)
        self._lag.setPen(pg.mkPen(accent, width=2))
        self._lag.setFillLevel(0)
        self._lag.setBrush(pg.mkBrush(fill))
        self._lag.setSymbolBrush(pg.mkBrush(accent))
        self._lag.setSymbolPen(None)
        self._message.setColor(text)

    @Slot(object)
    def _on_view_resized(self, _view: object) -> None:
        self._message.setPos(QPointF(self._lag_plot.getViewBox().boundingRect().center()))
