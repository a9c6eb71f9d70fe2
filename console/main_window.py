"""The console's main window: dockable panels, menus, a writable banner and a status bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import cast

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QKeySequence,
    QMouseEvent,
    QPaintEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from console.in_app_projections import InAppProjections
from console.open_store_dialog import OpenStoreDialog
from console.panels.commands import CommandsPanel
from console.panels.compare import ComparePanel
from console.panels.event_log import EventLogPanel
from console.panels.inspector import InspectorPanel
from console.panels.lineage import LineageView
from console.panels.plugins import PluginsPanel
from console.panels.projections import ProjectionsPanel
from console.panels.streams import StreamsPanel
from console.panels.timeline import TimelinePanel
from console.panels.timetravel import TimeTravelPanel
from console.resources import THEMES, Theme, ThemeError, load_theme
from console.time_travel_docks import TimeTravelDocks
from console.workers import TaskRunner
from core.errors import last_line
from core.events import RecordedEvent
from core.relay.relay import relay_statuses
from core.scheduler import TickOutcome
from core.services.writing import AUDIT_STREAM, operator_name
from core.workspace import Workspace

__all__ = [
    "AUDIT_STREAM",
    "INDEX_BATCH_LIMIT",
    "INDEX_INTERVAL_MS",
    "MAX_RECENT_STORES",
    "RATE_INTERVAL_MS",
    "SETTINGS_VERSION",
    "SWITCH_INTERVAL_S",
    "THEMES",
    "MainWindow",
    "confirm_writable",
    "operator_name",
    "recent_stores",
]

# Bump when saved geometry or dock state can no longer be restored as is, and say in
# _restore_layout what becomes of older settings.
# 2: the event log became the central widget and the inspector a right dock.
# Recent stores and the theme were added in 2 without a bump: older settings simply
# lack them.
SETTINGS_VERSION = 2
DEFAULT_SIZE = (1280, 800)
INSPECTOR_WIDTH = 340
MAX_RECENT_STORES = 8
RATE_INTERVAL_MS = 2_000
#: The status bar's tip on another tool's store, where no search index is written.
_NO_INDEX_TIP = (
    "Another tool's store: Eventscope writes nothing there, so no search index either;\n"
    "a payload or correlation search reads the events it looks through, with progress."
)
#: How long a thread may hold the interpreter while others wait for it (CPython's default
#: is 5 ms). The GUI thread takes the interpreter for every Python slot and model call
#: of a repaint; with projection and loader threads busy, each take waited up to 5 ms,
#: and a repaint of dozens of calls stalled for hundreds of milliseconds.
SWITCH_INTERVAL_S = 0.001
INDEX_INTERVAL_MS = 2_000
INDEX_BATCH_LIMIT = 50_000  # events indexed per tick: a tick never holds a worker for long
_RECENT_KEY = "main_window/recent_stores"
_THEME_KEY = "main_window/theme"

_READ_ONLY_STYLE = (
    "QLabel { background: #dbeafe; color: #1e3a8a; font-weight: bold;"
    " border: 1px solid #60a5fa; border-radius: 3px; padding: 1px 8px; }"
)
_WRITABLE_STYLE = (
    "QLabel { background: #c62828; color: white; font-weight: bold;"
    " border-radius: 3px; padding: 1px 8px; }"
)
#: How long a projection run's failure stays in the status bar (the next one shows again).
_FAILURE_SHOWN_MS = 30_000
_INDEX_LAG_TIP = (
    "Events the search index does not cover yet.\n"
    "Payload and correlation searches still find them, by scanning those events,\n"
    "so they are slower. Opening the store writable (Store → Writable) catches the\n"
    "index up in the background, as does `eventscope index` from a shell."
)
_BANNER_STYLE = (
    "QFrame#writableBanner { background: #c62828; }"
    " QFrame#writableBanner QLabel { color: white; font-weight: bold; }"
)


def confirm_writable(parent: QWidget, location: str) -> bool:
    """Ask whether to make the store writable; Cancel is the default answer.

    Tests replace this function rather than wait on a modal box.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Make the store writable?")
    box.setText(f"Make {location} writable?")
    box.setInformativeText(
        "Commands, appends and projection rebuilds will then change this store. "
        "The switch is recorded in the $audit stream."
    )
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setEscapeButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


def show_failure(parent: QWidget, title: str, message: str) -> None:
    """Show a failure without blocking the caller (a window-modal box)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok)
    box.setParent(parent, box.windowFlags())
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def recent_stores(settings: QSettings) -> list[str]:
    """The recent store locations saved in settings, newest first (display form)."""
    value = settings.value(_RECENT_KEY, [])
    if isinstance(value, str):  # an ini file stores a one-item list as a plain string
        value = [value]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str) and item][:MAX_RECENT_STORES]


def _remember_store(settings: QSettings, location: str) -> None:
    """Put a display-form location first in the recent stores."""
    locations = [location, *(item for item in recent_stores(settings) if item != location)]
    settings.setValue(_RECENT_KEY, locations[:MAX_RECENT_STORES])
    settings.sync()


class _ModeBadge(QLabel):
    """The status bar's read-only / WRITABLE label; a click asks to switch."""

    clicked = Signal()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Report a left click."""
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)


class MainWindow(QMainWindow):
    """The console window over one open workspace.

    Args:
        workspace: the open store and its services; the window never closes it, but may
            switch it between read-only and writable (``writing.set_writable``).
        runner: where store queries run.
        settings: where layout, geometry, recent stores and the theme persist; None to
            neither restore nor save them (screenshots use the default layout).
        open_workspace: opens a location read-only for File → Open store; the workspace
            it returns goes out with ``store_opened`` to whoever replaces the window.
        rate_interval_ms: how often the events-per-second figure is sampled.
        index_interval_ms: how often, while the store is writable, the search index is
            brought closer to the head (``INDEX_BATCH_LIMIT`` events at a time).
        parent: the usual QWidget parent.
    """

    head_position_loaded = Signal(int)
    store_opened = Signal(object)  # a new Workspace, now owned by the receiver
    writable_changed = Signal(bool)  # the switch finished: whether the store is writable
    writable_switch_failed = Signal(str)
    events_per_second_sampled = Signal(float)

    def __init__(
        self,
        workspace: Workspace,
        runner: TaskRunner,
        *,
        settings: QSettings | None = None,
        open_workspace: Callable[[str], Workspace] = Workspace.open,
        rate_interval_ms: int = RATE_INTERVAL_MS,
        index_interval_ms: int = INDEX_INTERVAL_MS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._runner = runner
        self._settings = settings
        self._open_workspace = open_workspace
        self._head_generation = 0
        self._switching = False
        self._reload_after_switch = False
        self._rate_pending = False
        self._index_pending = False
        self._index_error: str | None = None
        self._index_behind: int | None = None  # as of the last sample; None: not known
        self._rate_samples: list[tuple[float, int]] = []
        self._open_dialog: OpenStoreDialog | None = None
        location = workspace.display_location
        self.setWindowTitle(f"Eventscope — {location}")
        self.resize(*DEFAULT_SIZE)
        # Before the panels, so they start in the theme's colours.
        self._icons: list[tuple[QAction | QDockWidget, str]] = []
        self._theme = self._saved_theme()
        self._apply_theme(self._theme)

        self._streams_panel = StreamsPanel(workspace.events, runner, parent=self)
        self._streams_dock = QDockWidget("Streams", self)
        self._streams_dock.setObjectName("streamsDock")
        self._streams_dock.setWidget(self._streams_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self._streams_dock)
        self._streams_panel.stream_selected.connect(self._on_streams_panel_stream_selected)

        self._event_log = EventLogPanel(workspace.events, runner, parent=self)
        self._banner = self._build_banner(location)
        central = QWidget(self)
        central.setObjectName("centralArea")
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self._banner)
        column.addWidget(self._event_log, 1)
        self.setCentralWidget(central)

        self._inspector = InspectorPanel(workspace.events, runner, parent=self)
        self._inspector_dock = QDockWidget("Inspector", self)
        self._inspector_dock.setObjectName("inspectorDock")
        self._inspector_dock.setWidget(self._inspector)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self._inspector_dock)

        self._timeline = TimelinePanel(workspace.events, runner, parent=self)
        self._timeline_dock = QDockWidget("Timeline", self)
        self._timeline_dock.setObjectName("timelineDock")
        self._timeline_dock.setWidget(self._timeline)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self._timeline_dock)
        self._timeline.time_selected.connect(self._on_timeline_time_selected)
        # The chart counts what the log shows.
        self._event_log.filter_applied.connect(self._timeline.set_filter)

        self._travel = TimeTravelDocks(
            self,
            workspace,
            runner,
            timeline_dock=self._timeline_dock,
            event_log=self._event_log,
            inspector=self._inspector,
        )

        self._event_log.event_selected.connect(self._on_event_log_event_selected)
        self._inspector.correlation_requested.connect(self._on_inspector_correlation_requested)
        self._inspector.event_requested.connect(self._on_inspector_event_requested)
        self._inspector.stream_requested.connect(self._on_inspector_stream_requested)

        self._index_timer = QTimer(self)
        self._index_timer.setInterval(index_interval_ms)
        self._index_timer.timeout.connect(self._on_index_timer_timeout)

        self._plugins_panel = PluginsPanel(workspace.plugins, runner, parent=self)
        self._plugins_dock = QDockWidget("Plugins", self)
        self._plugins_dock.setObjectName("pluginsDock")
        self._plugins_dock.setWidget(self._plugins_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self._plugins_dock)
        self.tabifyDockWidget(self._travel.lineage_dock, self._plugins_dock)
        self._plugins_dock.hide()  # View → Plugins
        self._plugins_panel.plugins_reloaded.connect(self._on_plugins_panel_plugins_reloaded)
        self._commands_panel = CommandsPanel(workspace.commands, runner, parent=self)
        self._commands_dock = QDockWidget("Commands", self)
        self._commands_dock.setObjectName("commandsDock")
        self._commands_dock.setWidget(self._commands_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self._commands_dock)
        self.tabifyDockWidget(self._plugins_dock, self._commands_dock)
        self._commands_dock.hide()  # View → Commands
        self._commands_panel.event_requested.connect(self._event_log.jump_to_event_id)
        self._plugins_panel.plugins_reloaded.connect(self._commands_panel.reload)
        self._in_app = InAppProjections(workspace, runner, settings=settings, parent=self)
        self._projections_panel = ProjectionsPanel(
            workspace.projections,
            runner,
            events=workspace.events,
            relays=lambda: relay_statuses(workspace),
            parent=self,
        )
        self._projections_panel.worker = self._in_app.worker  # its rebuilds run as this console
        self._projections_dock = QDockWidget("Projections", self)
        self._projections_dock.setObjectName("projectionsDock")
        self._projections_dock.setWidget(self._projections_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self._projections_dock)
        self.tabifyDockWidget(self._plugins_dock, self._projections_dock)
        self._projections_dock.hide()  # View → Projections
        self._in_app.run_finished.connect(self._projections_panel.refresh)
        self._in_app.run_finished.connect(self._on_in_app_run_finished)
        self._projections_panel.event_requested.connect(self._event_log.jump_to_event_id)
        self._build_menus()
        self._build_tool_bar()
        self._build_icons()
        self._build_status_bar(location)
        self._show_mode()

        self.resizeDocks(
            [self._streams_dock, self._inspector_dock],
            [self._streams_panel.sizeHint().width(), INSPECTOR_WIDTH],
            Qt.Orientation.Horizontal,
        )
        self.resizeDocks([self._timeline_dock], [170], Qt.Orientation.Vertical)
        self._restore_layout()
        if settings is not None:
            _remember_store(settings, location)
        self._load_head_position()
        # Projections start once the window has painted: started at once, their threads
        # share the interpreter with the first paint and slow it several-fold.
        self._start_projections_on_paint = not workspace.read_only
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)

        self._rate_timer = QTimer(self)
        self._rate_timer.setInterval(rate_interval_ms)
        self._rate_timer.timeout.connect(self._on_rate_timer_timeout)
        self._rate_timer.start()
        self._sample_rate()

    @property
    def timeline(self) -> TimelinePanel:
        """The event-rate timeline."""
        return self._timeline

    @property
    def streams_panel(self) -> StreamsPanel:
        """The streams browser."""
        return self._streams_panel

    @property
    def time_travel(self) -> TimeTravelPanel:
        """The time-travel panel (a read model or a stream at a cursor)."""
        return self._travel.time_travel

    @property
    def time_travel_dock(self) -> QDockWidget:
        """The dock holding the time-travel panel."""
        return self._travel.time_travel_dock

    @property
    def compare(self) -> ComparePanel:
        """The compare panel (two read models, their diff)."""
        return self._travel.compare

    @property
    def compare_dock(self) -> QDockWidget:
        """The dock holding the compare panel."""
        return self._travel.compare_dock

    @property
    def lineage(self) -> LineageView:
        """The lineage view (every event that changed one document)."""
        return self._travel.lineage

    @property
    def lineage_dock(self) -> QDockWidget:
        """The dock holding the lineage view."""
        return self._travel.lineage_dock

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
        """The event log (under the writable banner, in the middle)."""
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
    def timeline_dock(self) -> QDockWidget:
        """The dock holding the timeline."""
        return self._timeline_dock

    @property
    def quit_action(self) -> QAction:
        """File → Quit (Ctrl+Q)."""
        return self._quit_action

    @property
    def reload_action(self) -> QAction:
        """File → Reload (F5)."""
        return self._reload_action

    @property
    def open_action(self) -> QAction:
        """File → Open store… (Ctrl+O)."""
        return self._open_action

    @property
    def recent_menu(self) -> QMenu:
        """File → Recent stores."""
        return self._recent_menu

    @property
    def writable_action(self) -> QAction:
        """Store → Writable (checked while the store is writable)."""
        return self._writable_action

    @property
    def tool_bar(self) -> QToolBar:
        """The tool bar: open, reload, find, writable, and the hidden panels."""
        return self._tool_bar

    @property
    def find_action(self) -> QAction:
        """Edit → Find (Ctrl+F): the event log's payload search."""
        return self._find_action

    @property
    def theme_actions(self) -> dict[str, QAction]:
        """View → Theme's choices, by theme name."""
        return dict(self._theme_actions)

    @property
    def theme(self) -> str:
        """The theme in use: ``light`` or ``dark``."""
        return self._theme

    @property
    def open_dialog(self) -> OpenStoreDialog | None:
        """The Open store dialog while it is shown."""
        return self._open_dialog

    @property
    def banner(self) -> QFrame:
        """The red banner shown while the store is writable."""
        return self._banner

    @property
    def banner_label(self) -> QLabel:
        """The banner's text."""
        return self._banner_label

    @property
    def read_only_button(self) -> QPushButton:
        """The banner's "Back to read-only" button."""
        return self._read_only_button

    @property
    def head_label(self) -> QLabel:
        """The status bar's head position."""
        return self._head_label

    @property
    def rate_label(self) -> QLabel:
        """The status bar's events per second."""
        return self._rate_label

    @property
    def index_label(self) -> QLabel:
        """The status bar's "index: N behind" (hidden while the index covers the head)."""
        return self._index_label

    @property
    def mode_label(self) -> QLabel:
        """The status bar's read-only / WRITABLE indicator (a click asks to switch)."""
        return self._mode_label

    # -- building ---------------------------------------------------------------------------

    def _build_banner(self, location: str) -> QFrame:
        banner = QFrame(self)
        banner.setObjectName("writableBanner")
        banner.setStyleSheet(_BANNER_STYLE)
        self._banner_label = QLabel(f"WRITABLE — changes go to {location}", banner)
        self._banner_label.setObjectName("writableBannerText")
        self._banner_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._read_only_button = QPushButton("Back to read-only", banner)
        self._read_only_button.setObjectName("backToReadOnly")
        self._read_only_button.clicked.connect(self._on_read_only_button_clicked)
        row = QHBoxLayout(banner)
        row.setContentsMargins(10, 6, 6, 6)
        row.addWidget(self._banner_label, 1)
        row.addWidget(self._read_only_button)
        banner.hide()
        return banner

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._open_action = QAction("&Open store…", self)
        self._open_action.setIconText("Open")
        self._open_action.setShortcut(QKeySequence.StandardKey.Open)
        self._open_action.setStatusTip("Open another store (a SQLite file or a database URL)")
        self._open_action.triggered.connect(self._on_open_action_triggered)
        file_menu.addAction(self._open_action)
        self._recent_menu = file_menu.addMenu("Open &recent")
        self._recent_menu.setObjectName("recentStoresMenu")
        self._recent_menu.aboutToShow.connect(self._on_recent_menu_about_to_show)
        self._fill_recent_menu()
        file_menu.addSeparator()
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

        edit_menu = self.menuBar().addMenu("&Edit")
        self._find_action = QAction("&Find in payloads", self)
        self._find_action.setShortcut(QKeySequence.StandardKey.Find)
        self._find_action.setStatusTip("Search the events' data")
        self._find_action.triggered.connect(self._on_find_action_triggered)
        edit_menu.addAction(self._find_action)

        store_menu = self.menuBar().addMenu("&Store")
        self._writable_action = QAction("&Writable", self)
        self._writable_action.setCheckable(True)
        self._writable_action.setStatusTip(
            "Let commands, appends and rebuilds change this store (asks first; audited)"
        )
        self._writable_action.triggered.connect(self._on_writable_action_triggered)
        store_menu.addAction(self._writable_action)
        store_menu.addAction(self._in_app.action)

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self._streams_dock.toggleViewAction())
        view_menu.addAction(self._inspector_dock.toggleViewAction())
        view_menu.addAction(self._timeline_dock.toggleViewAction())
        for action in self._travel.toggle_actions():
            view_menu.addAction(action)
        view_menu.addAction(self._plugins_dock.toggleViewAction())
        view_menu.addAction(self._projections_dock.toggleViewAction())
        view_menu.addAction(self._commands_dock.toggleViewAction())
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        self._theme_actions: dict[str, QAction] = {}
        for name in THEMES:
            action = QAction(name.capitalize(), self)
            action.setCheckable(True)
            action.setChecked(name == self._theme)
            action.setData(name)
            action.setStatusTip(f"Show the window in {name} colours")
            action.triggered.connect(self._on_theme_action_triggered)
            group.addAction(action)
            theme_menu.addAction(action)
            self._theme_actions[name] = action

    def _build_tool_bar(self) -> None:
        """The actions used most, with their icons: the store, find, the mode, and the
        panels that start hidden."""
        bar = self.addToolBar("Tool bar")
        bar.setObjectName("mainToolBar")
        bar.setMovable(False)
        bar.setIconSize(QSize(18, 18))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addAction(self._open_action)
        bar.addAction(self._reload_action)
        bar.addAction(self._find_action)
        bar.addSeparator()
        bar.addAction(self._writable_action)
        bar.addSeparator()
        for dock in self._tool_bar_docks():
            bar.addAction(dock.toggleViewAction())
        self._tool_bar = bar

    def _tool_bar_docks(self) -> list[QDockWidget]:
        return [
            self._travel.time_travel_dock,
            self._travel.compare_dock,
            self._projections_dock,
            self._commands_dock,
            self._plugins_dock,
        ]

    def _build_icons(self) -> None:
        docks = {
            self._streams_dock: "streams",
            self._inspector_dock: "inspector",
            self._timeline_dock: "timeline",
            self._travel.time_travel_dock: "time-travel",
            self._travel.compare_dock: "compare",
            self._travel.lineage_dock: "lineage",
            self._plugins_dock: "plugins",
            self._projections_dock: "projections",
            self._commands_dock: "commands",
        }
        actions = {
            self._open_action: "open",
            self._recent_menu.menuAction(): "recent",
            self._reload_action: "reload",
            self._quit_action: "quit",
            self._find_action: "find",
            self._writable_action: "writable",
            self._in_app.action: "run-projections",
            **{action: f"theme-{name}" for name, action in self._theme_actions.items()},
        }
        for target, purpose in (*docks.items(), *actions.items()):
            self.set_icon(target, purpose)

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
        self._rate_label = QLabel("— ev/s", self)
        self._rate_label.setObjectName("eventsPerSecond")
        self._rate_label.setToolTip("Events appended per second, over the last few seconds")
        bar.addPermanentWidget(self._rate_label)
        self._index_label = QLabel(self)
        self._index_label.setObjectName("indexLag")
        self._index_label.setToolTip(_INDEX_LAG_TIP)
        self._index_label.hide()
        bar.addPermanentWidget(self._index_label)
        bar.addPermanentWidget(self._in_app.label)
        self._mode_label = _ModeBadge(self)
        self._mode_label.setObjectName("modeIndicator")
        self._mode_label.setCursor(Qt.CursorShape.PointingHandCursor)
        self._mode_label.clicked.connect(self._on_mode_label_clicked)
        bar.addPermanentWidget(self._mode_label)

    def _show_mode(self) -> None:
        """Make the badge, the banner and Store → Writable tell the store's mode."""
        writable = not self._workspace.read_only
        self._writable_action.setChecked(writable)
        self._projections_panel.set_writable(writable and not self._switching)
        self._writable_action.setEnabled(not self._switching)
        self._read_only_button.setEnabled(not self._switching)
        self._banner.setVisible(writable)
        self._commands_panel.set_writable(writable and not self._switching)
        if writable and not self._switching:
            if not self._index_timer.isActive():
                self._index_timer.start()
                self._update_index()  # at once: the timer's first tick is a while off
        else:
            self._index_timer.stop()
            self._index_error = None
            self._index_behind = None
        if writable:
            self._mode_label.setText("WRITABLE")
            self._mode_label.setStyleSheet(_WRITABLE_STYLE)
            self._mode_label.setToolTip(
                "Writable: commands and appends change the store. Click to go back to read-only."
            )
        else:
            self._mode_label.setText("read-only")
            self._mode_label.setStyleSheet(_READ_ONLY_STYLE)
            self._mode_label.setToolTip(
                "Read-only: nothing here can change the store.\n"
                "Click (or Store → Writable) to make it writable."
            )

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

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._start_projections_on_paint:
            self._start_projections_on_paint = False
            QTimer.singleShot(0, self._in_app.start_later)  # after this paint completes

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the layout, stop sampling, indexing and running projections, then close."""
        self._save_layout()
        self._rate_timer.stop()
        self._index_timer.stop()
        self._in_app.shut_down()
        super().closeEvent(event)

    @property
    def plugins_panel(self) -> PluginsPanel:
        """The plugins: what each contributes, failures, reload from disk."""
        return self._plugins_panel

    @property
    def plugins_dock(self) -> QDockWidget:
        """The dock holding the plugins panel."""
        return self._plugins_dock

    @Slot(object)
    def _on_in_app_run_finished(self, outcome: object) -> None:
        # A run that failed because the store cannot be written (a full disk) cannot
        # record itself in the run history the projections panel shows: say it here.
        tick = cast(TickOutcome, outcome)
        if tick.failed and tick.error is not None:
            message = f"Projection {tick.model} did not run: {last_line(tick.error)}"
            self.statusBar().showMessage(message, _FAILURE_SHOWN_MS)

    @Slot(object)
    def _on_plugins_panel_plugins_reloaded(self, _catalog: object) -> None:
        # The panels that list projection versions offer the ones loaded now.
        self._travel.time_travel.reload_references()
        self._travel.compare.reload_references()
        self._projections_panel.refresh()

    @property
    def projections_panel(self) -> ProjectionsPanel:
        """The projections: status, lag and throughput, runs, faults, operator actions."""
        return self._projections_panel

    @property
    def projections_dock(self) -> QDockWidget:
        """The dock holding the projections panel."""
        return self._projections_dock

    @property
    def commands_panel(self) -> CommandsPanel:
        """The plugins' commands: forms, dry run, execution."""
        return self._commands_panel

    @property
    def commands_dock(self) -> QDockWidget:
        """The dock holding the commands panel."""
        return self._commands_dock

    @property
    def in_app_projections(self) -> InAppProjections:
        """The projections this console runs while its store is writable."""
        return self._in_app

    def _saved_theme(self) -> str:
        if self._settings is None:
            return THEMES[0]
        theme = self._settings.value(_THEME_KEY, THEMES[0])
        return theme if theme in THEMES else THEMES[0]

    def _apply_theme(self, theme: str) -> None:
        # On the window, not the application: its dialogs and panels inherit it.
        try:
            loaded = load_theme(theme)
        except ThemeError:  # resources missing (a bare wheel): Qt's own colours
            loaded = Theme(theme, self.style().standardPalette(), QColor("#3c3c3c"))
        self._theme_colours = loaded
        self.setPalette(loaded.palette)
        self._apply_icons()

    def _apply_icons(self) -> None:
        """Draw the actions' and docks' icons (resources/icons/tabler) in the theme's
        colour; called again when the theme changes."""
        for target, purpose in self._icons:
            self._draw_icon(target, purpose)

    def set_icon(self, target: QAction | QDockWidget, purpose: str) -> None:
        """Give an action or a dock the icon for ``purpose`` (a key of
        ``console.resources.ICONS``), redrawn when the theme changes."""
        self._icons.append((target, purpose))
        self._draw_icon(target, purpose)

    def _draw_icon(self, target: QAction | QDockWidget, purpose: str) -> None:
        drawn = self._theme_colours.icon(purpose)
        if isinstance(target, QDockWidget):
            target.setWindowIcon(drawn)  # shown on its tab when docks are tabbed
            target.toggleViewAction().setIcon(drawn)
        else:
            target.setIcon(drawn)

    def set_theme(self, theme: str) -> None:
        """Switch to ``light`` or ``dark`` and remember it.

        Raises:
            ValueError: not a known theme.
        """
        if theme not in THEMES:
            raise ValueError(f"unknown theme {theme!r}: one of {', '.join(THEMES)}")
        self._theme = theme
        self._apply_theme(theme)
        self._theme_actions[theme].setChecked(True)
        if self._settings is not None:
            self._settings.setValue(_THEME_KEY, theme)
            self._settings.sync()

    @Slot()
    def _on_theme_action_triggered(self) -> None:
        action = cast(QAction, self.sender())
        self.set_theme(str(action.data()))

    # -- loading ----------------------------------------------------------------------------

    def _load_head_position(self) -> None:
        self._head_generation += 1
        events = self._workspace.events
        task = self._runner.submit(events.head_position, tag=self._head_generation)
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
        """Read the store again: the streams and events (keeping filters), the charts and
        the head."""
        self._streams_panel.reload()
        self._event_log.reload()
        self._timeline.reload()
        self._travel.reload()
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
        self._travel.follow(recorded)

    def show_time_travel(self, position: int) -> None:
        """Bring the time-travel panel forward at a position."""
        self._travel.show_time_travel(position)

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

    # -- events per second ------------------------------------------------------------------

    def _sample_rate(self) -> None:
        if self._rate_pending:
            return  # a slow store: skip a beat rather than pile queries up
        self._rate_pending = True
        events = self._workspace.events

        def sample() -> tuple[float, int, int]:
            head = events.head_position()
            return time.monotonic(), head, events.indexed_position()

        task = self._runner.submit(sample)
        task.succeeded.connect(self._on_rate_task_succeeded)
        task.failed.connect(self._on_rate_task_failed)
        task.cancelled.connect(self._on_rate_task_cancelled)

    @Slot()
    def _on_rate_timer_timeout(self) -> None:
        self._sample_rate()

    @Slot(object, object)
    def _on_rate_task_succeeded(self, _tag: object, sample: object) -> None:
        self._rate_pending = False
        moment, head, indexed = cast(tuple[float, int, int], sample)
        self._head_label.setText(f"head {head:,}")
        self._show_index_lag(head, indexed)
        self._rate_samples = [*self._rate_samples[-1:], (moment, head)]
        if len(self._rate_samples) < 2:
            return
        (then, before), (now, after) = self._rate_samples
        rate = max(after - before, 0) / max(now - then, 1e-3)
        self._rate_label.setText(_format_rate(rate))
        self.events_per_second_sampled.emit(rate)

    @Slot(object, object)
    def _on_rate_task_failed(self, _tag: object, error: object) -> None:
        self._rate_pending = False
        self._rate_samples = []
        self._rate_label.setText("? ev/s")
        self._rate_label.setToolTip(f"could not read the head position: {error}")

    @Slot(object)
    def _on_rate_task_cancelled(self, _tag: object) -> None:
        self._rate_pending = False  # the store was being reopened: the next beat samples

    # -- the search index -------------------------------------------------------------------

    def _update_index(self) -> None:
        """Writable: index up to ``INDEX_BATCH_LIMIT`` more events, unless already at it."""
        if self._index_pending or self._switching or self._workspace.read_only:
            return
        if self._index_behind == 0:
            return  # caught up as of the last sample: spare the store its write lock
        self._index_pending = True
        events, writing = self._workspace.events, self._workspace.writing

        def catch_up() -> tuple[int, int]:
            writing.update_index(limit=INDEX_BATCH_LIMIT)
            return events.head_position(), events.indexed_position()

        task = self._runner.submit(catch_up)
        task.succeeded.connect(self._on_index_task_succeeded)
        task.failed.connect(self._on_index_task_failed)
        task.cancelled.connect(self._on_index_task_cancelled)

    @Slot()
    def _on_index_timer_timeout(self) -> None:
        self._update_index()

    @Slot(object, object)
    def _on_index_task_succeeded(self, _tag: object, positions: object) -> None:
        self._index_pending = False
        self._index_error = None
        head, indexed = cast(tuple[int, int], positions)
        self._show_index_lag(head, indexed)

    @Slot(object, object)
    def _on_index_task_failed(self, _tag: object, error: object) -> None:
        self._index_pending = False
        self._index_error = str(error) or type(error).__name__
        self._index_label.setText("index: not updating")
        self._index_label.setToolTip(f"Could not update the search index: {self._index_error}")
        self._index_label.show()

    @Slot(object)
    def _on_index_task_cancelled(self, _tag: object) -> None:
        self._index_pending = False

    def _show_index_lag(self, head: int, indexed: int) -> None:
        if not self._workspace.events.search_index:
            self._index_behind = None
            self._index_label.setText("search: by scan")
            self._index_label.setToolTip(_NO_INDEX_TIP)
            self._index_label.show()
            return
        behind = max(0, head - indexed)
        self._index_behind = behind
        if self._index_error is not None and not self._workspace.read_only:
            self._index_label.setText(f"index: {behind:,} behind, not updating")
            return  # the tooltip keeps saying why
        self._index_label.setText(f"index: {behind:,} behind")
        self._index_label.setToolTip(_INDEX_LAG_TIP)
        self._index_label.setVisible(behind > 0)

    # -- read-only / writable ---------------------------------------------------------------

    def set_writable(self, writable: bool) -> None:
        """Switch the store's mode; making it writable asks first. Both switches are audited.

        Queries still running are cancelled first (the panels load again after), then
        the reopen runs off the GUI thread; ``writable_changed`` or
        ``writable_switch_failed`` tells the outcome (a failure keeps the mode). Going
        back to read-only always ends read-only: if its audit event cannot be written,
        that is shown, and ``writable_changed`` still says False.
        """
        if self._switching or writable == (not self._workspace.read_only):
            self._show_mode()
            return
        location = self._workspace.display_location
        never = self._workspace.writing.never_writable()
        if writable and never is not None:  # another tool's store: asking would be idle
            self._show_mode()
            message = f"Could not make the store writable: {never}"
            show_failure(self, "Eventscope", message)
            self.writable_switch_failed.emit(message)
            return
        if writable and not confirm_writable(self, location):
            self._show_mode()
            return
        writing, in_app = self._workspace.writing, self._in_app

        def switch() -> None:
            if not writable:
                in_app.stop()  # its runs end between batches, its leases go back
            writing.set_writable(writable)  # drains the running queries, audits the switch
            if writable:
                in_app.start()

        # What the panels were loading is cancelled (the switch would interrupt it
        # anyway) and loaded again once the switch is over.
        others = self._runner.pending - int(self._rate_pending) - int(self._index_pending)
        self._reload_after_switch = others > 0
        self._runner.cancel_all()
        self._switching = True
        self._show_mode()
        task = self._runner.submit(switch, tag=writable)
        task.succeeded.connect(self._on_switch_task_succeeded)
        task.failed.connect(self._on_switch_task_failed)
        task.cancelled.connect(self._on_switch_task_cancelled)

    def _end_switch(self) -> None:
        self._switching = False
        self._show_mode()
        if self._reload_after_switch:
            self._reload_after_switch = False
            self.reload()
            self._inspector.show_event(self._inspector.event)  # its lookup may have stopped
        else:
            self._load_head_position()  # the audit event moved it

    @Slot(object, object)
    def _on_switch_task_succeeded(self, _writable: object, _result: object) -> None:
        self._end_switch()
        self.writable_changed.emit(not self._workspace.read_only)

    @Slot(object, object)
    def _on_switch_task_failed(self, writable: object, error: object) -> None:
        self._end_switch()
        if not writable and self._workspace.read_only:
            message = (
                "The store is read-only again, but leaving writable mode could not be "
                f"recorded in {AUDIT_STREAM}: {error}"
            )
            show_failure(self, "Eventscope", message)
            self.writable_changed.emit(False)
            return
        action = "make the store writable" if writable else "go back to read-only"
        message = f"Could not {action}: {error}"
        show_failure(self, "Eventscope", message)
        self.writable_switch_failed.emit(message)

    @Slot(object)
    def _on_switch_task_cancelled(self, _writable: object) -> None:
        self._end_switch()  # nothing cancels it today; if something does, show the store's mode

    @Slot(bool)
    def _on_writable_action_triggered(self, checked: bool) -> None:
        self.set_writable(checked)

    @Slot()
    def _on_mode_label_clicked(self) -> None:
        self.set_writable(self._workspace.read_only)

    @Slot()
    def _on_read_only_button_clicked(self) -> None:
        self.set_writable(False)

    # -- opening other stores ---------------------------------------------------------------

    def show_open_dialog(self, location: str = "") -> OpenStoreDialog:
        """Show File → Open store (window-modal, not blocking), the field holding ``location``."""
        if self._open_dialog is not None:
            self._open_dialog.location_edit.setText(location)
            self._open_dialog.raise_()
            return self._open_dialog
        dialog = OpenStoreDialog(self._runner, self._open_workspace, location=location, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.workspace_opened.connect(self._on_open_dialog_workspace_opened)
        dialog.finished.connect(self._on_open_dialog_finished)
        self._open_dialog = dialog
        dialog.open()
        return dialog

    def open_recent(self, location: str) -> None:
        """Open a recent store: at once, in the dialog (where a failure shows).

        A URL whose password was hidden when saved waits for the password instead.
        """
        dialog = self.show_open_dialog(location)
        if "***" in location:
            dialog.show_error("Type the password in place of *** and press Open")
            return
        dialog.open_location()

    def _fill_recent_menu(self) -> None:
        menu = self._recent_menu
        menu.clear()
        locations = recent_stores(self._settings) if self._settings is not None else []
        for location in locations:
            action = menu.addAction(location)
            action.setData(location)
            action.triggered.connect(self._on_recent_action_triggered)
        if not locations:
            menu.addAction("(none yet)").setEnabled(False)

    @Slot()
    def _on_recent_menu_about_to_show(self) -> None:
        self._fill_recent_menu()

    @Slot()
    def _on_recent_action_triggered(self) -> None:
        action = cast(QAction, self.sender())
        self.open_recent(str(action.data()))

    @Slot()
    def _on_open_action_triggered(self) -> None:
        self.show_open_dialog()

    @Slot(object)
    def _on_open_dialog_workspace_opened(self, workspace: object) -> None:
        self.store_opened.emit(workspace)

    @Slot(int)
    def _on_open_dialog_finished(self, _result: int) -> None:
        self._open_dialog = None

    # -- find -------------------------------------------------------------------------------

    @Slot()
    def _on_find_action_triggered(self) -> None:
        edit = self._event_log.filter_edit("text")
        edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        edit.selectAll()


def _format_rate(rate: float) -> str:
    if rate == 0:
        return "0 ev/s"
    if rate < 10:
        return f"{rate:.1f} ev/s"
    return f"{round(rate):,} ev/s"
