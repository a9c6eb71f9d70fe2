"""What a command did: the events it proposed (dry run) or appended, or why it failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.colours import error_colour
from core.commands.bus import CommandResult

__all__ = ["DUPLICATE_TEXT", "HEADERS", "CommandResults"]

HEADERS: Final = ("position", "stream", "type", "data", "")
COLUMN_POSITION, COLUMN_STREAM, COLUMN_TYPE, COLUMN_DATA, COLUMN_LINK = range(len(HEADERS))
DUPLICATE_TEXT: Final = "already executed with this key: these are the events of the first run"


def _compact(data: Mapping[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def _pretty(data: Mapping[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


class CommandResults(QWidget):
    """A one-line outcome above a table of events and the selected event's data.

    Appended events have a "Show in log" button that emits ``event_requested``.

    Args:
        parent: the usual QWidget parent.
    """

    event_requested = Signal(str)  # the event id of an appended event

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("commandResults")
        self._outcome = QLabel(self)
        self._outcome.setObjectName("commandOutcome")
        self._outcome.setWordWrap(True)
        self._outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._failed = False
        self._table = QTableWidget(0, len(HEADERS), self)
        self._table.setObjectName("commandEvents")
        self._table.setHorizontalHeaderLabels(list(HEADERS))
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.verticalHeader().hide()
        self._table.setWordWrap(False)
        header = self._table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMN_DATA, QHeaderView.ResizeMode.Stretch)
        self._table.currentCellChanged.connect(self._on_table_current_cell_changed)
        self._details = QPlainTextEdit(self)
        self._details.setObjectName("commandEventData")
        self._details.setReadOnly(True)
        self._details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._details.setPlaceholderText("The selected event's data.")
        self._pretty: list[str] = []
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self._table)
        splitter.addWidget(self._details)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self._outcome)
        layout.addWidget(splitter, 1)
        self.show_message("Dry run shows the events a command would append; Execute appends them.")

    @property
    def outcome_label(self) -> QLabel:
        """The one-line outcome (red when the command failed)."""
        return self._outcome

    @property
    def table(self) -> QTableWidget:
        """The proposed or appended events."""
        return self._table

    @property
    def details(self) -> QPlainTextEdit:
        """The selected event's data, as indented JSON."""
        return self._details

    def show_message(self, text: str, *, failed: bool = False) -> None:
        """Show ``text`` as the outcome and clear the events."""
        self._set_outcome(text, failed=failed)
        self._fill([])

    def show_result(self, result: CommandResult) -> None:
        """Show a dry run's proposed events, or the events a run appended."""
        if result.dry_run:
            count = len(result.proposed)
            self._set_outcome(
                f"dry run of {result.command}: {count} event(s) would be appended to "
                f"{result.stream_id} (expected version {result.expected_version}); "
                "nothing was written"
            )
            self._fill([(None, result.stream_id, e.type, e.data, None) for e in result.proposed])
            return
        if result.duplicate:
            self._set_outcome(DUPLICATE_TEXT)
        elif result.events:
            first, last = result.events[0].position, result.events[-1].position
            where = f"position {first}" if first == last else f"positions {first}–{last}"
            self._set_outcome(
                f"{result.command} appended {len(result.events)} event(s) to "
                f"{result.stream_id} at {where}"
            )
        else:
            self._set_outcome(f"{result.command} decided nothing: no event was appended")
        self._fill([(e.position, e.stream_id, e.type, e.data, e.event_id) for e in result.events])

    def _set_outcome(self, text: str, *, failed: bool = False) -> None:
        self._failed = failed
        self._outcome.setText(text)
        self._apply_palette()

    def _fill(self, rows: list[tuple[int | None, str, str, Mapping[str, Any], str | None]]) -> None:
        table = self._table
        table.setRowCount(0)
        self._pretty = [_pretty(data) for _, _, _, data, _ in rows]
        table.setColumnHidden(COLUMN_POSITION, all(row[0] is None for row in rows))
        table.setColumnHidden(COLUMN_LINK, all(row[4] is None for row in rows))
        table.setRowCount(len(rows))
        for row, (position, stream_id, event_type, data, event_id) in enumerate(rows):
            cells = ("" if position is None else str(position), stream_id, event_type)
            for column, text in enumerate(cells):
                table.setItem(row, column, QTableWidgetItem(text))
            shown = QTableWidgetItem(_compact(data))
            shown.setToolTip(self._pretty[row])
            table.setItem(row, COLUMN_DATA, shown)
            if event_id is not None:
                link = QPushButton("Show in log", table)
                link.setObjectName(f"showInLog_{row}")
                link.setToolTip(f"Select event {event_id} in the event log")
                link.setFlat(True)
                link.clicked.connect(
                    lambda _checked=False, e=event_id: self.event_requested.emit(e)
                )
                table.setCellWidget(row, COLUMN_LINK, link)
        if rows:
            table.setCurrentCell(0, COLUMN_TYPE)
        else:
            self._details.clear()

    def changeEvent(self, event: QEvent) -> None:
        """Recolour a failure when the palette changes (a theme switch)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        palette = self.palette()
        if self._failed:
            palette.setColor(QPalette.ColorRole.WindowText, error_colour(palette))
        self._outcome.setPalette(palette)

    @Slot(int, int, int, int)
    def _on_table_current_cell_changed(
        self, row: int, _column: int, _old: int, _old_c: int
    ) -> None:
        self._details.setPlainText(self._pretty[row] if 0 <= row < len(self._pretty) else "")
