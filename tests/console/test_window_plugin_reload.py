"""Reloading plugins from the plugins panel: the panels listing projection versions follow."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from console.main_window import MainWindow
from console.panels.compare.panel import NO_PROJECTIONS_TEXT
from console.workers import TaskRunner
from core.registry import Registry
from core.store.sql import SqlEventStore
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 10_000

TALLY = """\
from core.api import Projection, handles


class Tally(Projection):
    name = "tally"
    version = 1

    @handles("Counted")
    def counted(self, view, event):
        view.put(event.data["key"], {"seen": True})
"""

TALLY_V2 = """

class TallyV2(Tally):
    version = 2
"""


def test_reloaded_projections_are_offered_by_time_travel_and_compare(
    qtbot: QtBot,
    tmp_path: Path,
    runner: TaskRunner,
    workspaces: list[Workspace],
    windows: list[MainWindow],
) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    tally = folder / "tally.py"
    tally.write_text(TALLY)
    workspace = Workspace.open(str(tmp_path / "a.db"), read_only=False, plugin_dirs=[folder])
    workspaces.append(workspace)
    window = MainWindow(workspace, runner)
    windows.append(window)
    combo, compare = window.time_travel.model_combo, window.compare
    offered = [combo.itemText(i) for i in range(combo.count())]
    assert "tally:1" in offered and "tally:2" not in offered
    combo.setCurrentText("tally:1")
    compare.set_references("tally:1", "tally:1@head")
    projections = window.projections_panel
    window.show()
    with qtbot.waitSignal(projections.statuses_shown, timeout=SIGNAL_TIMEOUT_MS):
        window.projections_dock.show()
    assert projections.model.row_of("tally:2") is None

    tally.write_text(TALLY + TALLY_V2)
    panel = window.plugins_panel
    with (
        qtbot.waitSignal(projections.statuses_shown, timeout=SIGNAL_TIMEOUT_MS),
        qtbot.waitSignal(panel.plugins_reloaded, timeout=SIGNAL_TIMEOUT_MS),
    ):
        qtbot.mouseClick(panel.reload_button, Qt.MouseButton.LeftButton)
    assert projections.model.row_of("tally:2") is not None  # the projections panel follows

    offered = [combo.itemText(i) for i in range(combo.count())]
    assert "tally:1" in offered and "tally:2" in offered
    assert combo.currentText() == "tally:1"  # what was shown stays chosen
    for picker in (compare.a_picker, compare.b_picker):
        box: Any = picker.projection_box
        assert "tally:2" in [box.itemText(i) for i in range(box.count())]
    assert compare.a_picker.text() == "tally:1"  # what was written stays


def test_with_no_projections_the_panels_say_how_to_add_one_until_a_plugin_arrives(
    qtbot: QtBot,
    tmp_path: Path,
    runner: TaskRunner,
    workspaces: list[Workspace],
    windows: list[MainWindow],
) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    discover = functools.partial(Registry.discover, [folder], builtin=False, entry_points=False)
    store = SqlEventStore.open(str(tmp_path / "a.db"), read_only=False)
    workspace = Workspace(store, discover(), rediscover=discover)
    workspaces.append(workspace)
    window = MainWindow(workspace, runner)
    windows.append(window)
    window.compare_dock.show()
    window.time_travel_dock.show()
    assert window.compare.summary_label.text() == NO_PROJECTIONS_TEXT
    assert "add a plugin (see docs/plugins.md)" in window.time_travel.empty_label.text()

    (folder / "tally.py").write_text(TALLY)
    with qtbot.waitSignal(window.plugins_panel.plugins_reloaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.mouseClick(window.plugins_panel.reload_button, Qt.MouseButton.LeftButton)

    assert window.compare.summary_label.text() == "Pick two read models and press Compare."
    assert window.compare.a_picker.text() == "tally:1"
    assert "add a plugin" not in window.time_travel.empty_label.text()
