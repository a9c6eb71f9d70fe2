"""A document's lineage as a table: every event that changed it, oldest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from core.timetravel.diff import split_path
from core.timetravel.lineage import DocumentChange

__all__ = ["COLUMN_POSITION", "LineageModel"]

_HEADERS = ("position", "time (UTC)", "stream@version", "type", "kind", "changed fields")
(
    COLUMN_POSITION,
    COLUMN_TIME,
    COLUMN_STREAM,
    COLUMN_TYPE,
    COLUMN_KIND,
    COLUMN_PATHS,
) = range(len(_HEADERS))
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_TOOLTIP_PATHS = 6
_TOOLTIP_VALUE = 60

_ModelIndex = QModelIndex | QPersistentModelIndex


def _value_at(doc: Any, path: str) -> str:
    """The JSON of the field at ``path`` (``absent`` where there is none), shortened."""
    value = doc
    for key in split_path(path):
        if not isinstance(value, dict) or key not in value:
            return "absent"
        value = value[key]
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= _TOOLTIP_VALUE else text[: _TOOLTIP_VALUE - 1] + "…"


class LineageModel(QAbstractTableModel):
    """The changes of one document, one row per event, oldest first.

    Args:
        parent: the usual QObject parent.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[DocumentChange] = []

    def set_changes(self, changes: Sequence[DocumentChange]) -> None:
        """Show these changes (replacing the rows held)."""
        self.beginResetModel()
        self._rows = list(changes)
        self.endResetModel()

    def change_at(self, row: int) -> DocumentChange:
        """The change shown in a row."""
        return self._rows[row]

    def positions(self) -> list[int]:
        """The log position of each row, top to bottom."""
        return [change.position for change in self._rows]

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Changes held."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Position, time, stream@version, type, kind, changed fields."""
        return 0 if parent.isValid() else len(_HEADERS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text, alignment and tooltip (before → after of the changed fields)."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        change = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(change, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == COLUMN_POSITION:
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(change)
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
        if role == Qt.ItemDataRole.TextAlignmentRole and section == COLUMN_POSITION:
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

    @staticmethod
    def _text(change: DocumentChange, column: int) -> str | None:
        event = change.event
        if column == COLUMN_POSITION:
            return f"{change.position:,}"
        if column == COLUMN_KIND:
            return change.kind
        if column == COLUMN_PATHS:
            if change.kind != "changed":
                return "(whole document)"
            return ", ".join(change.paths)
        if event is None:
            return "—"
        if column == COLUMN_TIME:
            return event.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
        if column == COLUMN_STREAM:
            return f"{event.stream_id}@{event.version}"
        if column == COLUMN_TYPE:
            return event.type
        return None

    @staticmethod
    def _tooltip(change: DocumentChange) -> str:
        if change.kind == "added":
            return f"position {change.position:,}: the document was created"
        if change.kind == "removed":
            return f"position {change.position:,}: the document was deleted"
        lines = [
            f"{path}: {_value_at(change.before, path)} → {_value_at(change.after, path)}"
            for path in change.paths[:_TOOLTIP_PATHS]
        ]
        if len(change.paths) > _TOOLTIP_PATHS:
            lines.append(f"… and {len(change.paths) - _TOOLTIP_PATHS} more")
        return "\n".join(lines)
