"""The plugins found, one row each: name, origin, status, what it contributes, location."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from core.registry import PluginInfo

__all__ = [
    "COLUMN_CONTRIBUTES",
    "COLUMN_LOCATION",
    "COLUMN_NAME",
    "COLUMN_ORIGIN",
    "COLUMN_STATUS",
    "ORIGIN_WORDS",
    "PluginsModel",
    "contributions_summary",
]

_HEADERS = ("plugin", "origin", "status", "contributes", "location")
(
    COLUMN_NAME,
    COLUMN_ORIGIN,
    COLUMN_STATUS,
    COLUMN_CONTRIBUTES,
    COLUMN_LOCATION,
) = range(len(_HEADERS))

#: The registry's origins in the words the console shows. A folder named by
#: ``EVENTSCOPE_PLUGINS`` is recorded as ``path`` like one given with ``--plugins``,
#: so both read "folder".
ORIGIN_WORDS = {"builtin": "shipped", "path": "folder", "entry_point": "entry point"}

_ModelIndex = QModelIndex | QPersistentModelIndex


def contributions_summary(info: PluginInfo) -> str:
    """``2 projections, 3 commands, 1 evolver`` (``nothing`` when it contributes none)."""
    counts = (
        (len(info.projections), "projection"),
        (len(info.commands), "command"),
        (len(info.evolvers), "evolver"),
        (len(info.upcasters), "upcaster"),
        (len(info.demos), "demo"),
    )
    parts = [f"{count} {noun}{'' if count == 1 else 's'}" for count, noun in counts if count]
    return ", ".join(parts) or "nothing"


class PluginsModel(QAbstractTableModel):
    """Every plugin of a catalog, loaded or failed, in load order.

    Failed plugins are drawn in the warning colour the panel sets from its palette
    (:meth:`set_warning_colour`).

    Args:
        parent: the usual QObject parent.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[PluginInfo] = []
        self._warning: QColor | None = None

    def set_catalog(self, catalog: Sequence[PluginInfo]) -> None:
        """Show these plugins (replacing the rows held)."""
        self.beginResetModel()
        self._rows = list(catalog)
        self.endResetModel()

    def set_warning_colour(self, colour: QColor) -> None:
        """Draw failed plugins in ``colour`` from now on."""
        self._warning = QColor(colour)
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(len(self._rows) - 1, len(_HEADERS) - 1),
                [Qt.ItemDataRole.ForegroundRole],
            )

    def plugin_at(self, row: int) -> PluginInfo:
        """The plugin shown in a row."""
        return self._rows[row]

    def row_of(self, name: str, origin: str, location: str) -> int | None:
        """The row of the plugin with that identity, if shown."""
        for row, info in enumerate(self._rows):
            if (info.name, info.origin, info.location) == (name, origin, location):
                return row
        return None

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Plugins held."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Plugin, origin, status, contributes, location."""
        return 0 if parent.isValid() else len(_HEADERS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text, its tooltip (the whole location) and the failed rows' colour."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        info = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(info, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == COLUMN_LOCATION:
                return info.location
            if column == COLUMN_STATUS and info.error:
                return info.error.strip().splitlines()[-1]
            return None
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and info.status == "failed"
            and self._warning is not None
        ):
            return self._warning
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

    @staticmethod
    def _text(info: PluginInfo, column: int) -> str | None:
        if column == COLUMN_NAME:
            return info.name
        if column == COLUMN_ORIGIN:
            return ORIGIN_WORDS.get(info.origin, info.origin)
        if column == COLUMN_STATUS:
            return info.status
        if column == COLUMN_CONTRIBUTES:
            return contributions_summary(info) if info.status == "loaded" else "—"
        if column == COLUMN_LOCATION:
            return info.location
        return None
