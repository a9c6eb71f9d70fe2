"""The plugins panel: every plugin found, what it contributes or why it failed, and a
reload from disk."""

from __future__ import annotations

from typing import cast

from PySide6.QtCore import QEvent, QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.colours import error_colour
from console.empty_state import EmptyOr
from console.panels.plugins.model import (
    COLUMN_CONTRIBUTES,
    COLUMN_LOCATION,
    COLUMN_NAME,
    COLUMN_ORIGIN,
    COLUMN_STATUS,
    ORIGIN_WORDS,
    PluginsModel,
)
from console.record_table import record_table
from console.resources import icon
from console.workers import TaskGroup, TaskRunner
from core.errors import last_line
from core.registry import PluginInfo
from core.services.plugins import Plugins

__all__ = ["EMPTY_TEXT", "PluginsPanel", "describe_plugin"]

EMPTY_TEXT = "no plugins loaded: add a plugin folder with --plugins, see docs/plugins.md"
_MARGIN = 4


def describe_plugin(info: PluginInfo) -> str:
    """What the details pane shows: where the plugin came from, then what it contributes
    or, when it failed, its whole error (the traceback, for a failed import)."""
    origin = ORIGIN_WORDS.get(info.origin, info.origin)
    lines = [f"{info.name}: {info.status} ({origin})", info.location, ""]
    if info.status == "failed":
        error = (info.error or "(no reason recorded)").strip()
        lines.append(f"reason: {last_line(error)}")
        if "\n" in error:  # a traceback: the reason first, then where it came from
            lines += ["", error]
        return "\n".join(lines)
    sections = (
        ("projections", [p.reference() for p in info.projections]),
        ("commands", _command_lines(info)),
        ("evolvers", [e.category for e in info.evolvers]),
        ("upcasters", [u.describe() for u in info.upcasters]),
        ("demos", [d.name for d in info.demos]),
    )
    for title, entries in sections:
        if entries:
            lines.append(f"{title} ({len(entries)})")
            lines += [f"  {entry}" for entry in entries]
        else:
            lines.append(f"{title}: none")
    return "\n".join(lines)


def _command_lines(info: PluginInfo) -> list[str]:
    """Each command's name, then the first line of its docstring, in aligned columns."""
    width = max((len(c.name) for c in info.commands), default=0)
    lines = []
    for definition in info.commands:
        summary = definition.description.strip().splitlines()[:1]
        label = f"{definition.name}:"
        lines.append(f"{label:<{width + 1}}  {summary[0]}" if summary else definition.name)
    return lines


class PluginsPanel(QWidget):
    """The plugins found (shipped, in a folder, or by entry point), loaded or failed.

    Selecting a plugin lists its projections (``name:version``), commands, evolvers,
    upcasters and demos, or the full error of a failed one. "Reload from disk" loads
    every plugin again on the task runner and shows the new catalog.

    Args:
        plugins: the catalog, and the reload.
        runner: where the reload runs (it imports files: never on the GUI thread).
        parent: the usual QWidget parent.
    """

    plugins_reloaded = Signal(object)  # the new catalog, a list of PluginInfo
    reload_failed = Signal(str)  # the one-line reason shown
    catalog_shown = Signal(int)  # plugins shown

    def __init__(
        self, plugins: Plugins, runner: TaskRunner, *, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("pluginsPanel")
        self._plugins = plugins
        self._runner = runner
        self._tasks = TaskGroup(self)

        self._summary = QLabel(self)
        self._summary.setObjectName("pluginsSummary")
        self._error = QLabel(self)
        self._error.setObjectName("pluginsReloadError")
        self._error.hide()
        self._reload = QPushButton("Reload from disk", self)
        self._reload.setObjectName("pluginsReload")
        self._reload.setToolTip("Import every plugin again (a changed file shows its new code)")
        self._reload.clicked.connect(self._on_reload_clicked)

        self._model = PluginsModel(self)
        self._view = record_table(
            self,
            "pluginsTable",
            self._model,
            (
                (COLUMN_NAME, "order_management"),
                (COLUMN_ORIGIN, "entry point"),
                (COLUMN_STATUS, "loaded"),
                (COLUMN_CONTRIBUTES, "4 projections, 8 commands, 2 evolvers, 1 upcaster, 1 demo"),
                (COLUMN_LOCATION, "/home/someone/plugins/orders.py"),
            ),
        )
        self._view.horizontalHeader().setStretchLastSection(True)
        self._view.selectionModel().currentRowChanged.connect(
            self._on_selection_current_row_changed
        )
        self._details = QPlainTextEdit(self)
        self._details.setObjectName("pluginDetails")
        self._details.setReadOnly(True)
        self._details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._details.setPlaceholderText("Select a plugin to see what it contributes.")

        self._splitter = QSplitter(Qt.Orientation.Vertical, self)
        self._splitter.addWidget(self._view)
        self._splitter.addWidget(self._details)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.setStretchFactor(0, 2)
        self._splitter.setStretchFactor(1, 3)
        self._stack = EmptyOr(self._splitter, EMPTY_TEXT, "pluginsEmpty", self)
        self._empty = self._stack.label

        top = QHBoxLayout()
        top.addWidget(self._summary)
        top.addStretch(1)
        top.addWidget(self._error)
        top.addWidget(self._reload)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self._stack, 1)

        self._apply_palette()
        self._show_catalog(plugins.catalog())

    @property
    def model(self) -> PluginsModel:
        """The plugins shown."""
        return self._model

    @property
    def view(self) -> QTableView:
        """The table of plugins."""
        return self._view

    @property
    def details(self) -> QPlainTextEdit:
        """The selected plugin's contributions, or its error."""
        return self._details

    @property
    def reload_button(self) -> QPushButton:
        """Reload from disk."""
        return self._reload

    @property
    def error_label(self) -> QLabel:
        """Why the last reload failed (hidden when it did not)."""
        return self._error

    @property
    def summary_label(self) -> QLabel:
        """``N plugins: L loaded, F failed``."""
        return self._summary

    @property
    def empty_label(self) -> QLabel:
        """Shown instead of the table when no plugin was found."""
        return self._empty

    def changeEvent(self, event: QEvent) -> None:
        """Recolour failed plugins and the error when the palette changes (a theme switch)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        colour = error_colour(self.palette())
        self._model.set_warning_colour(colour)
        palette = self._error.palette()
        palette.setColor(QPalette.ColorRole.WindowText, colour)
        self._error.setPalette(palette)
        self._reload.setIcon(icon("reload", self.palette().color(QPalette.ColorRole.WindowText)))

    def _show_catalog(self, catalog: list[PluginInfo]) -> None:
        """Show ``catalog``, keeping the selected plugin selected when it is still there."""
        current = self._view.currentIndex()
        kept = self._model.plugin_at(current.row()) if current.isValid() else None
        self._model.set_catalog(catalog)
        failed = sum(info.status == "failed" for info in catalog)
        self._summary.setText(
            f"{len(catalog)} plugin(s): {len(catalog) - failed} loaded, {failed} failed"
        )
        self._stack.show_content(bool(catalog))
        row = None if kept is None else self._model.row_of(kept.name, kept.origin, kept.location)
        if row is not None:
            self._view.setCurrentIndex(self._model.index(row, COLUMN_NAME))
        else:
            self._details.clear()
        self.catalog_shown.emit(len(catalog))

    @Slot()
    def _on_reload_clicked(self) -> None:
        self._reload.setEnabled(False)
        self._error.hide()
        self._error.clear()
        self._summary.setText("reloading plugins from disk…")
        task = self._tasks.add(self._runner.submit(self._plugins.reload))
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)
        task.cancelled.connect(self._on_task_cancelled)

    @Slot(object, object)
    def _on_task_succeeded(self, _tag: object, outcome: object) -> None:
        self._reload.setEnabled(True)
        catalog = cast(list[PluginInfo], outcome)
        self._show_catalog(catalog)
        self.plugins_reloaded.emit(catalog)

    @Slot(object, object)
    def _on_task_failed(self, _tag: object, error: object) -> None:
        self._reload.setEnabled(True)
        self._show_catalog(self._plugins.catalog())  # unchanged: the summary comes back
        message = last_line(str(error)) or type(error).__name__
        self._error.setText(f"reload failed: {message}")
        self._error.setToolTip(str(error))
        self._error.show()
        self.reload_failed.emit(message)

    @Slot(object)
    def _on_task_cancelled(self, _tag: object) -> None:
        self._reload.setEnabled(True)
        self._show_catalog(self._plugins.catalog())

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_row_changed(self, current: QModelIndex, _old: QModelIndex) -> None:
        if current.isValid():
            self._details.setPlainText(describe_plugin(self._model.plugin_at(current.row())))
        else:
            self._details.clear()
