"""The window keeps time travel, the event log and lineage in step (issue 13, point 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from console.main_window import MainWindow
from console.workers import TaskRunner
from core.workspace import Workspace

SIGNAL_TIMEOUT_MS = 10_000
MODEL = "order_summary:1"


@pytest.fixture
def window(
    qtbot: QtBot,
    tmp_path: Path,
    runner: TaskRunner,
    workspaces: list[Workspace],
    windows: list[MainWindow],
) -> MainWindow:
    location = str(tmp_path / "shop.db")
    with Workspace.open(location, read_only=False) as setup:
        setup.writing.write_demo("orders", orders=60, seed=7)
        setup.projections.run(MODEL)
    workspace = Workspace.open(location)
    workspaces.append(workspace)
    shown = MainWindow(workspace, runner)
    windows.append(shown)
    with qtbot.waitSignal(shown.event_log.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        shown.show()
    return shown


def test_open_in_time_travel_from_the_log_and_the_log_follows_the_cursor(
    qtbot: QtBot, window: MainWindow
) -> None:
    log, panel = window.event_log, window.time_travel
    assert not window.time_travel_dock.isVisible()  # shown when asked for
    with qtbot.waitSignal(log.event_selected, timeout=SIGNAL_TIMEOUT_MS):
        log.jump_to_position(120)
    panel.model_combo.setCurrentText(MODEL)
    with qtbot.waitSignal(panel.step_shown, timeout=SIGNAL_TIMEOUT_MS) as shown:
        log.open_in_time_travel_action.trigger()
    assert shown.args == [120]
    assert window.time_travel_dock.isVisible() and panel.cursor_position == 120

    # Stepping the cursor moves the log (and the inspector) to the event stepped over.
    with qtbot.waitSignal(log.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        qtbot.mouseClick(panel.step_forward_button, Qt.MouseButton.LeftButton)
    assert selected.args[0].position == 121
    qtbot.waitUntil(lambda: window.inspector.event is not None, timeout=SIGNAL_TIMEOUT_MS)
    assert window.inspector.event is not None and window.inspector.event.position == 121

    # Selecting another event in the log moves the cursor there.
    with qtbot.waitSignal(panel.cursor_moved, timeout=SIGNAL_TIMEOUT_MS) as moved:
        log.jump_to_position(60)
    assert moved.args == [60]


def test_the_inspector_opens_its_event_in_time_travel(qtbot: QtBot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.inspector.causation_resolved, timeout=SIGNAL_TIMEOUT_MS):
        window.event_log.jump_to_position(77)
    with qtbot.waitSignal(window.time_travel.cursor_moved, timeout=SIGNAL_TIMEOUT_MS) as moved:
        qtbot.mouseClick(window.inspector.time_travel_button, Qt.MouseButton.LeftButton)
    assert moved.args == [77]


def test_a_lineage_asked_for_in_time_travel_selects_its_events_in_the_log(
    qtbot: QtBot, window: MainWindow
) -> None:
    panel = window.time_travel
    panel.model_combo.setCurrentText(MODEL)
    with qtbot.waitSignal(panel.step_shown, timeout=SIGNAL_TIMEOUT_MS):
        window.show_time_travel(200)
    index = panel.documents_model.index(0, 0)
    key = panel.documents_model.keys()[0]
    where = panel.table.visualRect(index).center()
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    with qtbot.waitSignal(window.lineage.lineage_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert window.lineage_dock.isVisible()
    expected = [c.position for c in window.workspace.timetravel.lineage(f"{MODEL}@200", key)]
    assert loaded.args == [len(expected)] and expected

    view = window.lineage.view
    last = view.model().index(len(expected) - 1, 0)
    with qtbot.waitSignal(window.event_log.event_selected, timeout=SIGNAL_TIMEOUT_MS) as chosen:
        view.setCurrentIndex(last)
    assert chosen.args[0].position == expected[-1]
