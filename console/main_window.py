"""The console's main window: dockable panels, the File menu and a status bar."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QSizePolicy, QWidget

from console.panels.event_log import EventLogPanel
from console.panels.inspector import InspectorPanel
from console.panels.streams import StreamsPanel
from console.panels.timeline import TimelinePanel
from console.workers import TaskRunner
from core.events import RecordedEvent
from core.workspace import Workspace

__all__ = ["SETTINGS_VERSION", "MainWindow"]

# Bump when saved geometry or dock state can no longer be restored as is, and say in
# _restore_layout what becomes of older settings.
# 2: the event log became the central widget and the inspector a right dock.
SETTINGS_VERSION = 2
DEFAULT_SIZE = (1280, 800)

_READ_ONLY_STYLE = (
    "QLabel { background: #dbeafe; color: #1e3a8a; font-weight: bold;"
    " border: 1px solid #60a5fa; border-radius: 3px; padding: 1px 8px; }"
)
_WRITABLE_STYLE = (
    "QLabel { background: #c62828; color: white; font-weight: bold;"
    " border-radius: 3px; padding: 1px 8px; }"
)


class MainWindow(QMainWindow):
    """The console window over one open workspace.

    Args:
        workspace: the open store; the window never closes it.
        runner: where store queries run.
        settings: where layout and geometry persist; None to neither restore nor save
            them (screenshots use the default layout).
        parent: the usual QWidget parent.
    """

    head_position_loaded = Signal(int)

    def __init__(
        self,
        workspace: Workspace,
        runner: TaskRunner,
        *,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._runner = runner
        self._settings = settings
        self._head_generation = 0
        location = workspace.display_location
        self.setWindowTitle(f"Eventscope — {location}")
        self.resize(*DEFAULT_SIZE)

        self._streams_panel = StreamsPanel(workspace, runner, parent=self)
        self._streams_dock = QDockWidget("Streams", self)
        self._streams_dock.setObjectName("streamsDock")
        self._streams_dock.setWidget(self._streams_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self._streams_dock)
        self._streams_panel.stream_selected.connect(self._on_streams_panel_stream_selected)

        self._event_log = EventLogPanel(workspace, runner, parent=self)
        self.setCentralWidget(self._event_log)

        self._inspector = InspectorPanel(workspace, runner, parent=self)
        self._inspector_dock = QDockWidget("Inspector", self)
        self._inspector_dock.setObjectName("inspectorDock")
        self._inspector_dock.setWidget(self._inspector)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self._inspector_dock)

        self._timeline = TimelinePanel(workspace, runner, parent=self)
        self._timeline_dock = QDockWidget("Timeline", self)
        self._timeline_dock.setObjectName("timelineDock")
        self._timeline_dock.setWidget(self._timeline)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self._timeline_dock)
        self._timeline.time_selected.connect(self._on_timeline_time_selected)

        self._event_log.event_selected.connect(self._on_event_log_event_selected)
        self._inspector.correlation_requested.connect(self._on_inspector_correlation_requested)
        self._inspector.event_requested.connect(self._on_inspector_event_requested)
        self._inspector.stream_requested.connect(self._on_inspector_stream_requested)

        self._build_menus()
        self._build_status_bar(location)

        self.resizeDocks(
            [self._streams_dock, self._inspector_dock], [320, 350], Qt.Orientation.Horizontal
        )
        self.resizeDocks([self._timeline_dock], [170], Qt.Orientation.Vertical)
        self._restore_layout()
        self._load_head_position()

    @property
    def timeline(self) -> TimelinePanel:
        """The event-rate timeline."""
        return self._timeline

    @property
    def streams_panel(self) -> StreamsPanel:
        """The streams browser."""
        return self._streams_panel

    @property
    def streams_dock(self) -> QDockWidget:
        """The dock holding the streams browser."""
        return self._streams_dock

    @property
    def workspace(self) -> Workspace:
        """The open store the window shows."""
        return self._workspace

    @property
    def event_log(self) -> EventLogPanel:
        """The event log (the central widget)."""
        return self._event_log

    @property
    def inspector(self) -> InspectorPanel:
        """The event inspector."""
        return self._inspector

    @property
    def inspector_dock(self) -> QDockWidget:
        """The dock holding the inspector."""
        return self._inspector_dock

    @property
    def quit_action(self) -> QAction:
        """File → Quit (Ctrl+Q)."""
        return self._quit_action

    @property
    def reload_action(self) -> QAction:
        """File → Reload (F5)."""
        return self._reload_action

    @property
    def head_label(self) -> QLabel:
        """The status bar's head position."""
        return self._head_label

    @property
    def mode_label(self) -> QLabel:
        """The status bar's read-only / WRITABLE indicator."""
        return self._mode_label

    # -- building ---------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._reload_action = QAction("&Reload", self)
        self._reload_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self._reload_action.setStatusTip("Read the store again")
        self._reload_action.triggered.connect(self._on_reload_action_triggered)
        file_menu.addAction(self._reload_action)
        file_menu.addSeparator()
        self._quit_action = QAction("&Quit", self)
        self._quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self._quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self._quit_action.triggered.connect(self.close)
        file_menu.addAction(self._quit_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self._streams_dock.toggleViewAction())
        view_menu.addAction(self._inspector_dock.toggleViewAction())
        view_menu.addAction(self._timeline_dock.toggleViewAction())

    def _build_status_bar(self, location: str) -> None:
        bar = self.statusBar()
        self._location_label = QLabel(location, self)
        self._location_label.setObjectName("storeLocation")
        self._location_label.setToolTip(location)
        # Ignored: a long path must not set the window's minimum width.
        self._location_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        bar.addWidget(self._location_label, 1)
        self._head_label = QLabel("head …", self)
        self._head_label.setObjectName("headPosition")
        self._head_label.setToolTip("The position of the store's last event")
        bar.addPermanentWidget(self._head_label)
        self._mode_label = QLabel(self)
        self._mode_label.setObjectName("modeIndicator")
        if self._workspace.read_only:
            self._mode_label.setText("read-only")
            self._mode_label.setStyleSheet(_READ_ONLY_STYLE)
            self._mode_label.setToolTip(
                "Opened read-only: nothing here can change the store.\n"
                "Start with --writable to run commands or append events."
            )
        else:
            self._mode_label.setText("WRITABLE")
            self._mode_label.setStyleSheet(_WRITABLE_STYLE)
            self._mode_label.setToolTip("Opened writable: commands and appends change the store.")
        bar.addPermanentWidget(self._mode_label)

    # -- settings ---------------------------------------------------------------------------

    def _restore_layout(self) -> None:
        settings = self._settings
        if settings is None:
            return
        version = settings.value("main_window/settings_version", 0, type=int)
        if version != SETTINGS_VERSION:
            # Version 1 had no event log nor inspector: its streams dock filled the
            # window, so it starts from the default. A newer file keeps its layout for
            # the newer Eventscope, and this one starts from the default too.
            return
        geometry = settings.value("main_window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = settings.value("main_window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state, SETTINGS_VERSION)

    def _save_layout(self) -> None:
        settings = self._settings
        if settings is None:
            return
        settings.setValue("main_window/settings_version", SETTINGS_VERSION)
        settings.setValue("main_window/geometry", self.saveGeometry())
        settings.setValue("main_window/state", self.saveState(SETTINGS_VERSION))
        settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the layout, then close."""
        self._save_layout()
        super().closeEvent(event)

    # -- loading ----------------------------------------------------------------------------

    def _load_head_position(self) -> None:
        self._head_generation += 1
        workspace = self._workspace
        task = self._runner.submit(workspace.head_position, tag=self._head_generation)
        task.succeeded.connect(self._on_head_task_succeeded)
        task.failed.connect(self._on_head_task_failed)

    @Slot(object, object)
    def _on_head_task_succeeded(self, generation: object, head: object) -> None:
        if generation != self._head_generation:
            return
        position = cast(int, head)
        self._head_label.setText(f"head {position:,}")
        self.head_position_loaded.emit(position)

    @Slot(object, object)
    def _on_head_task_failed(self, generation: object, error: object) -> None:
        if generation != self._head_generation:
            return
        self._head_label.setText("head ?")
        self._head_label.setToolTip(f"could not read the head position: {error}")

    def reload(self) -> None:
        """Read the store again: the streams and events (keeping filters) and the head."""
        self._streams_panel.reload()
        self._event_log.reload()
        self._timeline.reload()
        self._load_head_position()

    @Slot()
    def _on_reload_action_triggered(self) -> None:
        self.reload()

    @Slot(str)
    def _on_streams_panel_stream_selected(self, stream_id: str) -> None:
        self._event_log.show_stream(stream_id)

    @Slot(object)
    def _on_event_log_event_selected(self, event: object) -> None:
        recorded = cast(RecordedEvent, event)
        self._inspector.show_event(recorded)
        self._timeline.set_cursor(recorded.recorded_at)

    @Slot(object)
    def _on_timeline_time_selected(self, moment: object) -> None:
        self._event_log.jump_to_time(cast(datetime, moment))

    @Slot(str)
    def _on_inspector_correlation_requested(self, correlation_id: str) -> None:
        shown = self._inspector.event
        self._event_log.set_correlation(correlation_id)
        if shown is not None:
            self._event_log.jump_to_position(shown.position)  # keep the event in view

    @Slot(str)
    def _on_inspector_event_requested(self, event_id: str) -> None:
        self._event_log.jump_to_event_id(event_id)

    @Slot(str, int)
    def _on_inspector_stream_requested(self, stream_id: str, position: int) -> None:
        self._event_log.show_stream(stream_id, position)
