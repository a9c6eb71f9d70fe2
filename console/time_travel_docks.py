"""The window's time-travel side: the time-travel, compare and lineage panels in docks
tabbed with the timeline, kept in step with the event log and the inspector."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

from console.panels.compare import ComparePanel
from console.panels.event_log import EventLogPanel
from console.panels.inspector import InspectorPanel
from console.panels.lineage import LineageView
from console.panels.timetravel import TimeTravelPanel
from console.workers import TaskRunner
from core.events import RecordedEvent
from core.workspace import Workspace

__all__ = ["TimeTravelDocks"]


class TimeTravelDocks(QObject):
    """Three panels of a main window and how they follow each other and the log.

    The docks are tabbed with the timeline and hidden until asked for ("Open in time
    travel", View), so the window's first layout and minimum size stay as they were.
    The time-travel cursor moves the log to its event, an event selected in the log
    moves the cursor (while the panel is shown), a lineage asked for in time travel or
    compare opens in its dock, and an event chosen there is selected in the log (the
    inspector follows the log).

    Args:
        window: the main window the docks go in.
        workspace: the services the panels use.
        runner: where their store calls run.
        timeline_dock: the dock they are tabbed with.
        event_log: the log they keep in step with.
        inspector: the inspector (its "Time travel" button).
    """

    def __init__(
        self,
        window: QMainWindow,
        workspace: Workspace,
        runner: TaskRunner,
        *,
        timeline_dock: QDockWidget,
        event_log: EventLogPanel,
        inspector: InspectorPanel,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._event_log = event_log
        self.time_travel = TimeTravelPanel(
            workspace.timetravel, workspace.events, workspace.projections, runner, parent=window
        )
        self.compare = ComparePanel(
            workspace.timetravel, workspace.projections, runner, parent=window
        )
        self.lineage = LineageView(workspace.timetravel, runner, parent=window)
        self.time_travel_dock = self._dock("Time travel", "timeTravelDock", self.time_travel)
        self.compare_dock = self._dock("Compare", "compareDock", self.compare)
        self.lineage_dock = self._dock("Lineage", "lineageDock", self.lineage)
        window.tabifyDockWidget(timeline_dock, self.time_travel_dock)
        window.tabifyDockWidget(self.time_travel_dock, self.compare_dock)
        window.tabifyDockWidget(self.compare_dock, self.lineage_dock)
        for dock in self.docks:
            dock.hide()
        self.time_travel.cursor_moved.connect(self._on_time_travel_cursor_moved)
        self.time_travel.lineage_requested.connect(self._on_panel_lineage_requested)
        self.compare.lineage_requested.connect(self._on_panel_lineage_requested)
        self.lineage.event_selected.connect(self._on_lineage_event_selected)
        event_log.time_travel_requested.connect(self.show_time_travel)
        inspector.time_travel_requested.connect(self.show_time_travel)

    @property
    def docks(self) -> tuple[QDockWidget, QDockWidget, QDockWidget]:
        """Time travel, compare and lineage."""
        return self.time_travel_dock, self.compare_dock, self.lineage_dock

    def toggle_actions(self) -> list[QAction]:
        """The docks' show/hide actions, for the View menu."""
        return [dock.toggleViewAction() for dock in self.docks]

    def _dock(self, title: str, name: str, panel: QWidget) -> QDockWidget:
        """A bottom dock for a large panel, scrolled when the dock is smaller than the
        panel's minimum (so these panels never set the window's minimum size)."""
        dock = QDockWidget(title, self._window)
        dock.setObjectName(name)
        scroller = QScrollArea(dock)
        scroller.setObjectName(f"{name}Scroller")
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QFrame.Shape.NoFrame)
        scroller.setWidget(panel)
        dock.setWidget(scroller)
        self._window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        return dock

    @Slot(int)
    def show_time_travel(self, position: int) -> None:
        """Bring the time-travel panel forward (tall enough to read) at a position."""
        dock, window = self.time_travel_dock, self._window
        dock.show()
        dock.raise_()
        if dock.height() < window.height() // 3:
            window.resizeDocks([dock], [window.height() * 9 // 20], Qt.Orientation.Vertical)
        self.time_travel.show_position(position)

    def follow(self, event: RecordedEvent) -> None:
        """An event was selected in the log: the cursor goes there (if the panel shows)."""
        panel = self.time_travel
        if panel.isVisible() and panel.cursor_position != event.position:
            panel.show_position(event.position)

    def reload(self) -> None:
        """The store was read again: so is the time-travel chart."""
        self.time_travel.reload()

    @Slot(int)
    def _on_time_travel_cursor_moved(self, position: int) -> None:
        if not self.time_travel.isVisible():
            return  # a panel behind another tab does not move the log
        shown = self._event_log.current_event()
        if shown is None or shown.position != position:
            self._event_log.jump_to_position(position)  # the log shows the cursor's event

    @Slot(str, str)
    def _on_panel_lineage_requested(self, reference: str, key: str) -> None:
        self.lineage_dock.show()
        self.lineage_dock.raise_()
        self.lineage.show_document(reference, key)

    @Slot(int)
    def _on_lineage_event_selected(self, position: int) -> None:
        self._event_log.jump_to_position(position)  # and the inspector follows the log
