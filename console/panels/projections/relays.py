"""The projections panel's Relays section: every relay that ever ran on the store, its state,
checkpoint, lag, rate, worker and last broker error, read on the task runner."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Final, cast

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.colours import error_colour, hint_colour
from console.panels.projections.loads import format_duration, format_rate
from console.panels.projections.model import ReadOnlyTable
from console.record_table import record_table
from console.workers import TaskGroup, TaskRunner
from core.errors import last_line
from core.events import format_time, from_micros
from core.relay.relay import RelayStatus

__all__ = [
    "EMPTY_TEXT",
    "RELAY_COLUMN_CHECKPOINT",
    "RELAY_COLUMN_ERROR",
    "RELAY_COLUMN_LAG",
    "RELAY_COLUMN_LAG_TIME",
    "RELAY_COLUMN_NAME",
    "RELAY_COLUMN_RATE",
    "RELAY_COLUMN_STATE",
    "RELAY_COLUMN_WORKER",
    "RelaysModel",
    "RelaysSection",
]

EMPTY_TEXT: Final = (
    "no relay has run on this store: start one with eventscope relay nats://host:port"
)
#: Rows the section grows to show before it scrolls.
_ROWS_SHOWN: Final = 5
_QWIDGETSIZE_MAX: Final = 16_777_215
_GAP: Final = 4
#: The summary counts relays in this order (the one that needs an operator first).
_STATES: Final = ("faulted", "broker unavailable", "publishing", "caught up", "stopped")
#: States that need an operator (or the broker back): drawn in the warning colour.
_WARNING_STATES: Final = frozenset({"faulted", "broker unavailable"})

_HEADERS = (
    "relay",
    "state",
    "checkpoint / head",
    "lag (events)",
    "lag (time)",
    "rate",
    "worker",
    "last error",
)
(
    RELAY_COLUMN_NAME,
    RELAY_COLUMN_STATE,
    RELAY_COLUMN_CHECKPOINT,
    RELAY_COLUMN_LAG,
    RELAY_COLUMN_LAG_TIME,
    RELAY_COLUMN_RATE,
    RELAY_COLUMN_WORKER,
    RELAY_COLUMN_ERROR,
) = range(len(_HEADERS))

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_NUMBERS = (RELAY_COLUMN_CHECKPOINT, RELAY_COLUMN_LAG, RELAY_COLUMN_LAG_TIME, RELAY_COLUMN_RATE)
_ModelIndex = QModelIndex | QPersistentModelIndex


class RelaysModel(ReadOnlyTable):
    """Every relay, one row each, by name; faulted ones and those whose broker is unavailable
    in the warning colour, stopped ones dimmed."""

    headers = _HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[RelayStatus] = []
        self._dimmed: QColor | None = None

    def _row_count(self) -> int:
        return len(self._rows)

    def set_relays(self, relays: Sequence[RelayStatus]) -> None:
        """Show these relays (the same names: changed in place, keeping the selection)."""
        self._show(list(relays), lambda relay: relay.name)

    def relay_at(self, row: int) -> RelayStatus:
        """The relay shown in a row."""
        return self._rows[row]

    def row_of(self, name: str) -> int | None:
        """The row of the relay called ``name``, if shown."""
        return next((row for row, r in enumerate(self._rows) if r.name == name), None)

    def set_dimmed_colour(self, colour: QColor) -> None:
        """Draw stopped relays in ``colour`` from now on."""
        self._dimmed = QColor(colour)
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(len(self._rows) - 1, len(self.headers) - 1),
                [Qt.ItemDataRole.ForegroundRole],
            )

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text, its alignment, its tooltip, and the row's colour by state."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        relay = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _relay_text(relay, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in _NUMBERS:
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            return _relay_tip(relay, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if relay.state in _WARNING_STATES:
                return self._warning
            if relay.state == "stopped":
                return self._dimmed
        return None


def _relay_text(relay: RelayStatus, column: int) -> str | None:
    if column == RELAY_COLUMN_NAME:
        return relay.name
    if column == RELAY_COLUMN_STATE:
        return relay.state
    if column == RELAY_COLUMN_CHECKPOINT:
        return f"{relay.checkpoint:,} / {relay.head:,}"
    if column == RELAY_COLUMN_LAG:
        return f"{relay.lag:,}"
    if column == RELAY_COLUMN_LAG_TIME:
        return format_duration(relay.lag_seconds) if relay.lag > 0 else "0"
    if column == RELAY_COLUMN_RATE:
        return format_rate(relay.rate)
    if column == RELAY_COLUMN_WORKER:
        return relay.worker or "—"
    if column == RELAY_COLUMN_ERROR:
        if relay.last_error is None:
            return "—"
        when = "" if relay.last_error_at is None else f"{_clock(relay.last_error_at)} "
        return f"{when}{last_line(relay.last_error)}"
    return None


def _relay_tip(relay: RelayStatus, column: int) -> str | None:
    if column == RELAY_COLUMN_ERROR and relay.last_error is not None:
        when = (
            ""
            if relay.last_error_at is None
            else f"{format_time(from_micros(relay.last_error_at))}\n"
        )
        return f"{when}{relay.last_error.strip()}"
    if column == RELAY_COLUMN_STATE and relay.state == "stopped":
        return "No relay of this name runs now (none holds its lease)"
    if column == RELAY_COLUMN_STATE and relay.state == "faulted":
        return (
            "Stopped at an event the broker can never take (the last error says which "
            "and why): start it with --skip-fault to go on without that event"
        )
    if column == RELAY_COLUMN_STATE and relay.state == "broker unavailable" and relay.last_error:
        return last_line(relay.last_error)
    if column in (RELAY_COLUMN_LAG, RELAY_COLUMN_LAG_TIME):
        return (
            f"{relay.lag:,} events not published yet; the oldest has waited "
            f"{format_duration(relay.lag_seconds)}"
        )
    if column == RELAY_COLUMN_RATE:
        return "Events per second while publishing, over the last minute"
    return None


def _clock(micros: int) -> str:
    """``12:03:04`` (UTC, as the runs table shows times)."""
    return from_micros(micros).astimezone(UTC).strftime("%H:%M:%S")


class RelaysSection(QWidget):
    """A titled table of the relays, or one muted line saying how to start one when none
    ever ran; a load that fails shows one line in the error colour (the rows shown stay).

    :meth:`refresh` reads ``relays`` on the task runner, never on the GUI thread, one read
    at a time (a refresh asked meanwhile reads again once it is back). In a vertical
    splitter the section takes the height its rows need whenever their number changes,
    and one line when there are none.

    Args:
        relays: reads every relay's status (called on a pool thread).
        runner: where it runs.
        parent: the usual QWidget parent.
    """

    relays_shown = Signal(int)  # relays shown
    load_failed = Signal(str)  # one line

    def __init__(
        self,
        relays: Callable[[], Sequence[RelayStatus]],
        runner: TaskRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("relaysSection")
        self._relays = relays
        self._runner = runner
        self._loads = TaskGroup(self)
        self._pending = False
        self._again = False
        self._failed = False
        self._shown_rows = -1  # none read yet

        title = QLabel("Relays", self)
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        self._line = QLabel("reading the relays…", self)
        self._line.setObjectName("relaysSummary")
        self._line.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._model = RelaysModel(self)
        self._view = record_table(
            self,
            "relaysTable",
            self._model,
            (
                (RELAY_COLUMN_NAME, "orders-to-backup-2"),
                (RELAY_COLUMN_STATE, "broker unavailable"),
                (RELAY_COLUMN_CHECKPOINT, "1,004,045 / 1,004,045"),
                (RELAY_COLUMN_LAG, "1,004,045"),
                (RELAY_COLUMN_LAG_TIME, "59 min 59 s"),
                (RELAY_COLUMN_RATE, "120,000 ev/s"),
                (RELAY_COLUMN_WORKER, "relay:host:12345:abcd"),
            ),
        )
        self._view.horizontalHeader().setStretchLastSection(True)
        self._view.setTextElideMode(Qt.TextElideMode.ElideRight)  # the error's start matters
        self._view.hide()

        self._top = QHBoxLayout()
        self._top.addWidget(title)
        self._top.addSpacing(12)
        self._top.addWidget(self._line, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, _GAP, 0, 0)
        layout.setSpacing(_GAP)
        layout.addLayout(self._top)
        layout.addWidget(self._view, 1)
        self._apply_palette()
        self._fit()

    @property
    def model(self) -> RelaysModel:
        """The relays shown."""
        return self._model

    @property
    def view(self) -> QTableView:
        """The table of relays."""
        return self._view

    @property
    def summary_label(self) -> QLabel:
        """How many relays in which states; while none ever ran, how to start one; or why
        they could not be read (one line)."""
        return self._line

    def refresh(self) -> None:
        """Read the relays again (now, or once the read in flight is back)."""
        if self._pending:
            self._again = True
            return
        self._pending = True
        relays = self._relays  # not self: a pool thread must not hold the widget
        task = self._loads.add(self._runner.submit(lambda: list(relays())))
        task.succeeded.connect(self._on_load_task_succeeded)
        task.failed.connect(self._on_load_task_failed)
        task.cancelled.connect(self._on_load_task_cancelled)

    def sizeHint(self) -> QSize:
        """The title line, then the table's header and up to five rows (no rows: the line)."""
        hint = super().sizeHint()
        if self._view.isHidden():
            return hint
        view = self._view
        rows = min(max(self._model.rowCount(), 1), _ROWS_SHOWN)
        table = (
            view.horizontalHeader().sizeHint().height()
            + rows * view.verticalHeader().defaultSectionSize()
            + 2 * view.frameWidth()
        )
        return QSize(hint.width(), self._top.sizeHint().height() + 2 * _GAP + table)

    def _done(self) -> None:
        self._pending = False
        if self._again:
            self._again = False
            self.refresh()

    @Slot(object, object)
    def _on_load_task_succeeded(self, _tag: object, outcome: object) -> None:
        relays = cast(list[RelayStatus], outcome)
        self._failed = False
        self._model.set_relays(relays)
        self._line.setText(_summary(relays) if relays else EMPTY_TEXT)
        self._line.setToolTip("")
        self._apply_palette()
        if len(relays) != self._shown_rows:
            self._shown_rows = len(relays)
            self._view.setVisible(bool(relays))
            self._fit()
        self.relays_shown.emit(len(relays))
        self._done()

    @Slot(object, object)
    def _on_load_task_failed(self, _tag: object, error: object) -> None:
        message = last_line(str(error)) or type(error).__name__
        self._failed = True
        self._line.setText(f"could not read the relays: {message}")
        self._line.setToolTip(str(error))
        self._apply_palette()
        self.load_failed.emit(message)
        self._done()

    @Slot(object)
    def _on_load_task_cancelled(self, _tag: object) -> None:
        self._done()  # the store was being switched: the next refresh reads again

    def _fit(self) -> None:
        """Take one line while empty, else the rows' height, in the splitter it is in."""
        wanted = self.sizeHint().height()
        self.setMaximumHeight(wanted if self._view.isHidden() else _QWIDGETSIZE_MAX)
        splitter = self.parentWidget()
        if isinstance(splitter, QSplitter) and splitter.orientation() == Qt.Orientation.Vertical:
            sizes = splitter.sizes()
            at = splitter.indexOf(self)
            total = sum(sizes)
            if at >= 0 and total > 0 and len(sizes) == 2:
                sizes[at] = wanted
                sizes[1 - at] = max(total - wanted, 0)
                splitter.setSizes(sizes)

    def changeEvent(self, event: QEvent) -> None:
        """Recolour the rows and the lines when the palette changes (a theme)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        grey = hint_colour(self.palette())
        red = error_colour(self.palette())
        self._model.set_warning_colour(red)
        self._model.set_dimmed_colour(grey)
        palette = self._line.palette()
        palette.setColor(QPalette.ColorRole.WindowText, red if self._failed else grey)
        self._line.setPalette(palette)


def _summary(relays: Sequence[RelayStatus]) -> str:
    """``3 relay(s): 1 broker unavailable, 1 publishing, 1 stopped`` (failures first)."""
    states = Counter(relay.state for relay in relays)
    order = {state: at for at, state in enumerate(_STATES)}
    counts = sorted(states.items(), key=lambda item: order.get(item[0], len(order)))
    return f"{len(relays)} relay(s): " + ", ".join(f"{n} {state}" for state, n in counts)
