"""The table model of the time-travel panel: a read model's documents, loaded page by page."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor

__all__ = ["KEY_COLUMN_TIP", "DocumentsModel", "compact"]

_Index = QModelIndex | QPersistentModelIndex
_MAX_CELL = 80

KEY_COLUMN_TIP = (
    "Rows load in key order, a page at a time as you scroll. Sorting by another column "
    "sorts the rows loaded so far."
)


def compact(value: Any) -> str:
    """A JSON value in one short line: text as is, ``null``, numbers, compact JSON."""
    if isinstance(value, str):
        text = value
    elif value is None:
        text = "null"
    else:
        text = orjson.dumps(value).decode()
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (2, 0.0, "")
    if isinstance(value, bool | int | float):
        return (0, float(value), "")
    return (1, 0.0, compact(value))


class DocumentsModel(QAbstractTableModel):
    """Documents of one read model at one point: the key, then their top-level fields.

    Rows arrive in pages (:meth:`append_page`) in key order; the model asks for the next
    page through ``more_requested`` when a view scrolls to its end (``fetchMore``). Rows
    changed by the event at the cursor are tinted (:meth:`set_changed`).
    """

    more_requested = Signal()  # a view wants the next page (fetchMore)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, dict[str, Any]]] = []
        self._fields: list[str] = []
        self._has_more = False
        self._fetching = False
        self._last_key: str | None = None
        self._changed: dict[str, tuple[str, ...]] = {}
        self._sort_column = 0
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._tint = QColor(255, 196, 0, 90)

    # -- state --------------------------------------------------------------------------------

    @property
    def fields(self) -> list[str]:
        """The documents' top-level fields shown as columns (after the key)."""
        return list(self._fields)

    @property
    def last_key(self) -> str | None:
        """The greatest key loaded: where the next page starts (keyset)."""
        return self._last_key

    @property
    def has_more(self) -> bool:
        """Whether the read model has documents after the last page loaded."""
        return self._has_more

    def keys(self) -> list[str]:
        """The keys of the loaded rows, in the order shown."""
        return [key for key, _doc in self._rows]

    def documents(self) -> dict[str, dict[str, Any]]:
        """The loaded documents by key."""
        return dict(self._rows)

    def changed_keys(self) -> list[str]:
        """The keys tinted as changed by the event at the cursor, sorted."""
        return sorted(self._changed)

    def set_tint(self, colour: QColor) -> None:
        """The background of changed rows."""
        self._tint = QColor(colour)
        if self._rows:
            self._emit_all_changed()

    # -- loading ------------------------------------------------------------------------------

    def reset_rows(self) -> None:
        """Forget every row and column (a new read model or a new point)."""
        self.beginResetModel()
        self._rows, self._fields, self._changed = [], [], {}
        self._has_more = self._fetching = False
        self._last_key = None
        self.endResetModel()

    def append_page(self, rows: Sequence[tuple[str, dict[str, Any]]], *, has_more: bool) -> None:
        """Add a page of (key, document) in key order; new fields become columns."""
        self._fetching = False
        self._has_more = has_more
        known = set(self._fields)
        new_fields = sorted({f for _key, doc in rows for f in doc} - known)
        if new_fields:
            first = len(self._fields) + 1
            self.beginInsertColumns(QModelIndex(), first, first + len(new_fields) - 1)
            self._fields.extend(new_fields)
            self.endInsertColumns()
        if rows:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
            self._last_key = rows[-1][0]
            if self._sort_column != 0 or self._sort_order != Qt.SortOrder.AscendingOrder:
                self.sort(self._sort_column, self._sort_order)

    def page_failed(self) -> None:
        """The page asked for did not arrive: a later scroll may ask again."""
        self._fetching = False

    def set_changed(self, changes: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        """Tint the rows of these keys (with the paths each changed, for the tooltip)."""
        self._changed = dict(changes)
        self._emit_all_changed()

    def _emit_all_changed(self) -> None:
        if self._rows:
            bottom_right = self.index(len(self._rows) - 1, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0), bottom_right)

    # -- QAbstractTableModel --------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """Loaded rows (none under a valid parent: a table)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """The key and the fields seen so far."""
        return 0 if parent.isValid() else 1 + len(self._fields)

    def canFetchMore(self, parent: _Index) -> bool:
        """Whether another page can be asked for now."""
        return not parent.isValid() and self._has_more and not self._fetching

    def fetchMore(self, parent: _Index) -> None:
        """Ask the owner for the next page (it arrives later, through :meth:`append_page`)."""
        if self.canFetchMore(parent):
            self._fetching = True
            self.more_requested.emit()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cells: the key or a field shown compactly; changed rows tinted."""
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        key, doc = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == 0:
                if role == Qt.ItemDataRole.ToolTipRole and key in self._changed:
                    return f"{key}: changed here ({', '.join(self._changed[key]) or 'added'})"
                return key
            name = self._fields[column - 1]
            if name not in doc:
                return "" if role == Qt.ItemDataRole.DisplayRole else None
            return compact(doc[name])
        if role == Qt.ItemDataRole.BackgroundRole and key in self._changed:
            return self._tint
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """``key`` then the field names; the tooltip says how sorting works."""
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < self.columnCount():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "key" if section == 0 else self._fields[section - 1]
        if role == Qt.ItemDataRole.ToolTipRole:
            return KEY_COLUMN_TIP
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        """Selectable, read-only cells."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the loaded rows (by key: the keyset order, the default)."""
        if not 0 <= column < self.columnCount():
            return
        self._sort_column, self._sort_order = column, order
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        moved = [(index, self._rows[index.row()][0]) for index in before]
        reverse = order == Qt.SortOrder.DescendingOrder
        if column == 0:
            self._rows.sort(key=lambda row: row[0], reverse=reverse)
        else:
            name = self._fields[column - 1]
            self._rows.sort(key=lambda row: (_sort_key(row[1].get(name)), row[0]), reverse=reverse)
        where = {key: row for row, (key, _doc) in enumerate(self._rows)}
        for index, key in moved:
            self.changePersistentIndex(index, self.index(where[key], index.column()))
        self.layoutChanged.emit()
