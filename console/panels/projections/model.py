"""The projections panel's tables: every version's status, and one version's runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from console.panels.projections.loads import Run, format_duration, format_lag, format_rate
from core.events import format_time, from_micros
from core.services.projections import ProjectionStatus

__all__ = [
    "COLUMN_CHECKPOINT",
    "COLUMN_LAG",
    "COLUMN_PROJECTION",
    "COLUMN_STATE",
    "COLUMN_THROUGHPUT",
    "COLUMN_WORKER",
    "RUN_COLUMN_OUTCOME",
    "RUN_COLUMN_STARTED",
    "ReadOnlyTable",
    "RunsModel",
    "StatusesModel",
]

_ModelIndex = QModelIndex | QPersistentModelIndex

_HEADERS = ("projection", "state", "checkpoint / head", "lag", "throughput", "worker")
(
    COLUMN_PROJECTION,
    COLUMN_STATE,
    COLUMN_CHECKPOINT,
    COLUMN_LAG,
    COLUMN_THROUGHPUT,
    COLUMN_WORKER,
) = range(len(_HEADERS))

_RUN_HEADERS = ("started", "worker", "from → to", "events", "duration", "outcome")
(
    RUN_COLUMN_STARTED,
    RUN_COLUMN_WORKER,
    RUN_COLUMN_RANGE,
    RUN_COLUMN_EVENTS,
    RUN_COLUMN_DURATION,
    RUN_COLUMN_OUTCOME,
) = range(len(_RUN_HEADERS))

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren


class ReadOnlyTable(QAbstractTableModel):
    """A read-only table of rows with fixed column titles, failed rows drawn in a warning
    colour (the panel's tables, the relays' among them)."""

    headers: tuple[str, ...] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._warning: QColor | None = None

    def _row_count(self) -> int:
        raise NotImplementedError

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Rows held."""
        return 0 if parent.isValid() else self._row_count()

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """As many as there are titles."""
        return 0 if parent.isValid() else len(self.headers)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> object:
        """Column titles; rows have none."""
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.headers):
            return None
        return self.headers[section] if role == Qt.ItemDataRole.DisplayRole else None

    def flags(self, index: _ModelIndex) -> Qt.ItemFlag:
        """Selectable, never editable, never a parent."""
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def set_warning_colour(self, colour: QColor) -> None:
        """Draw failed rows in ``colour`` from now on."""
        self._warning = QColor(colour)
        if self._row_count():
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(self._row_count() - 1, len(self.headers) - 1),
                [Qt.ItemDataRole.ForegroundRole],
            )

    def _show(self, rows: list[Any], keys: Callable[[Any], object]) -> None:
        """Hold ``rows`` (in ``self._rows``): the same records by ``keys`` are changed in
        place (the view keeps its selection and scroll), others reset the model."""
        held: list[Any] = getattr(self, "_rows", [])
        if rows and [keys(row) for row in rows] == [keys(row) for row in held]:
            self._rows = rows
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(rows) - 1, len(self.headers) - 1)
            )
            return
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()


class StatusesModel(ReadOnlyTable):
    """Every projection version, one row each, in ``name:version`` order; faulted ones in
    the warning colour.

    A refresh with the same versions changes the cells in place (the view keeps its
    selection and scroll); another set of versions resets the model.
    """

    headers = _HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ProjectionStatus] = []

    def _row_count(self) -> int:
        return len(self._rows)

    def set_statuses(self, statuses: Sequence[ProjectionStatus]) -> None:
        """Show these versions."""
        self._show(list(statuses), lambda status: status.reference)

    def status_at(self, row: int) -> ProjectionStatus:
        """The version shown in a row."""
        return self._rows[row]

    def row_of(self, reference: str) -> int | None:
        """The row of ``name:version``, if shown."""
        for row, status in enumerate(self._rows):
            if status.reference == reference:
                return row
        return None

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text, its alignment, its tooltip, and the faulted rows' colour."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        status = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _status_text(status, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (
            COLUMN_CHECKPOINT,
            COLUMN_LAG,
            COLUMN_THROUGHPUT,
        ):
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == COLUMN_STATE and status.fault_error:
                return status.fault_error.strip().splitlines()[-1]
            if column == COLUMN_LAG:
                return (
                    f"{status.lag:,} events not applied yet; the oldest has waited "
                    f"{format_duration(status.lag_seconds)}"
                )
            if column == COLUMN_THROUGHPUT:
                return "Positions per second over its runs of the last minute"
            return None
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and status.state == "faulted"
            and self._warning is not None
        ):
            return self._warning
        return None


def _status_text(status: ProjectionStatus, column: int) -> str | None:
    if column == COLUMN_PROJECTION:
        return status.reference
    if column == COLUMN_STATE:
        return status.state
    if column == COLUMN_CHECKPOINT:
        return f"{status.checkpoint:,} / {status.head:,}"
    if column == COLUMN_LAG:
        return format_lag(status.lag, status.lag_seconds)
    if column == COLUMN_THROUGHPUT:
        return format_rate(status.throughput)
    if column == COLUMN_WORKER:
        return status.worker or "—"
    return None


class RunsModel(ReadOnlyTable):
    """One version's runs, newest first; runs that did not end "ok" in the warning colour."""

    headers = _RUN_HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Run] = []

    def _row_count(self) -> int:
        return len(self._rows)

    def set_runs(self, runs: Sequence[Run]) -> None:
        """Show these runs."""
        self.beginResetModel()
        self._rows = list(runs)
        self.endResetModel()

    def run_at(self, row: int) -> Run:
        """The run shown in a row."""
        return self._rows[row]

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text, its alignment, the error as a tooltip, failed runs' colour."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        run = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _run_text(run, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (
            RUN_COLUMN_RANGE,
            RUN_COLUMN_EVENTS,
            RUN_COLUMN_DURATION,
        ):
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and column == RUN_COLUMN_STARTED:
            return format_time(from_micros(run.started_at))
        if role == Qt.ItemDataRole.ToolTipRole and column == RUN_COLUMN_OUTCOME:
            return run.error
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and run.outcome != "ok"
            and self._warning is not None
        ):
            return self._warning
        return None


def _run_text(run: Run, column: int) -> str | None:
    if column == RUN_COLUMN_STARTED:
        return from_micros(run.started_at).astimezone(UTC).strftime("%H:%M:%S")
    if column == RUN_COLUMN_WORKER:
        return run.worker or "—"
    if column == RUN_COLUMN_RANGE:
        return f"{run.from_position:,} → {run.to_position:,}"
    if column == RUN_COLUMN_EVENTS:
        return f"{run.events:,}"
    if column == RUN_COLUMN_DURATION:
        return format_duration(run.duration_us / 1_000_000)
    if column == RUN_COLUMN_OUTCOME:
        return run.outcome if not run.error else f"{run.outcome}: {run.error}"
    return None
