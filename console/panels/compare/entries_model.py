"""The differing documents of a comparison as a table, and the filter over it."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from core.timetravel.diff import DiffEntry

__all__ = [
    "COLUMN_KEY",
    "COLUMN_KIND",
    "COLUMN_PATHS",
    "KINDS",
    "DiffEntriesFilter",
    "DiffEntriesModel",
]

KINDS = ("added", "removed", "changed")
_HEADERS = ("key", "kind", "changed fields")
COLUMN_KEY, COLUMN_KIND, COLUMN_PATHS = range(len(_HEADERS))
KIND_ROLE = Qt.ItemDataRole.UserRole
PATHS_ROLE = Qt.ItemDataRole.UserRole + 1

_ModelIndex = QModelIndex | QPersistentModelIndex


class DiffEntriesModel(QAbstractTableModel):
    """The entries of a diff in key order, as they stream in: key, kind, changed paths.

    It holds what it is given; the panel gives it at most a bounded number of entries.

    Args:
        parent: the usual QObject parent.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[DiffEntry] = []

    def entry_at(self, row: int) -> DiffEntry:
        """The entry shown in a row."""
        return self._rows[row]

    def clear(self) -> None:
        """Forget every entry."""
        self.beginResetModel()
        self._rows = []
        self.endResetModel()

    def append(self, entries: Iterable[DiffEntry]) -> None:
        """Add entries after those held (they come in key order)."""
        added = list(entries)
        if not added:
            return
        start = len(self._rows)
        self.beginInsertRows(QModelIndex(), start, start + len(added) - 1)
        self._rows.extend(added)
        self.endInsertRows()

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Entries held."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Key, kind, changed fields."""
        return 0 if parent.isValid() else len(_HEADERS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text and tooltip; ``KIND_ROLE`` and ``PATHS_ROLE`` for filters."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        entry = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COLUMN_KEY:
                return entry.key
            if column == COLUMN_KIND:
                return entry.kind
            if column == COLUMN_PATHS:
                return ", ".join(entry.paths) if entry.kind == "changed" else "—"
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if entry.kind == "changed":
                return f"{entry.key}: {len(entry.paths)} field(s) changed\n" + "\n".join(
                    entry.paths
                )
            side = "second" if entry.kind == "added" else "first"
            return f"{entry.key}: only in the {side} read model"
        if role == KIND_ROLE:
            return entry.kind
        if role == PATHS_ROLE:
            return entry.paths
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


class DiffEntriesFilter(QSortFilterProxyModel):
    """Keeps the entries of the kinds chosen whose changed paths contain a text.

    Args:
        parent: the usual QObject parent.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._kinds: frozenset[str] = frozenset(KINDS)
        self._path_text = ""

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds shown."""
        return self._kinds

    @property
    def path_text(self) -> str:
        """Entries shown have a changed path containing this ("" shows every entry)."""
        return self._path_text

    def set_kinds(self, kinds: Iterable[str]) -> None:
        """Show only entries of these kinds (added, removed, changed)."""
        self.beginFilterChange()
        self._kinds = frozenset(kinds)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_path_text(self, text: str) -> None:
        """Show only entries with a changed path containing ``text`` ("" for all)."""
        self.beginFilterChange()
        self._path_text = text.strip()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _ModelIndex) -> bool:
        """Whether the entry's kind is shown and, with a path text, a path contains it."""
        source = self.sourceModel()
        index = source.index(source_row, 0, source_parent)
        if source.data(index, KIND_ROLE) not in self._kinds:
            return False
        if not self._path_text:
            return True
        paths: tuple[str, ...] = source.data(index, PATHS_ROLE) or ()
        return any(self._path_text in path for path in paths)
