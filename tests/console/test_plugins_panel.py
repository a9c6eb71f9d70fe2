"""The plugins panel over real plugin files on disk: one that loads, one that fails."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from pytestqt.qtbot import QtBot

from console.panels.plugins import PluginsPanel
from console.panels.plugins.model import (
    COLUMN_LOCATION,
    COLUMN_NAME,
    COLUMN_ORIGIN,
    COLUMN_STATUS,
)
from console.panels.plugins.panel import EMPTY_TEXT
from console.workers import TaskRunner
from core.registry import PluginInfo, Registry
from core.services.plugins import Plugins

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 10_000

GOOD = '''\
"""Counts things."""

from core.api import Projection, command, handles


class Tally(Projection):
    name = "tally"
    version = {version}

    @handles("Counted")
    def counted(self, view, event):
        doc = view.get(event.data["key"]) or {{"count": 0}}
        doc["count"] += 1
        view.put(event.data["key"], doc)


@command("Count", stream="tally-{{key}}", fields={{"key": str}})
def count(state, data):
    """Count one more."""
    return [("Counted", {{"key": data["key"]}})]
'''

BROKEN = 'raise RuntimeError("the broken plugin cannot start")\n'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A plugin folder: ``good.py`` (version 1) and ``broken.py`` (raises at import)."""
    folder = tmp_path / "my_plugins"
    folder.mkdir()
    (folder / "good.py").write_text(GOOD.format(version=1))
    (folder / "broken.py").write_text(BROKEN)
    return folder


def discover(folder: Path) -> Registry:
    return Registry.discover([folder], environ={}, builtin=False, entry_points=False)


def open_panel(qtbot: QtBot, plugins: Plugins, runner: TaskRunner) -> PluginsPanel:
    panel = PluginsPanel(plugins, runner)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def cell(panel: PluginsPanel, row: int, column: int) -> str:
    return str(panel.model.data(panel.model.index(row, column)))


def row_named(panel: PluginsPanel, name: str) -> int:
    names = [cell(panel, row, COLUMN_NAME) for row in range(panel.model.rowCount())]
    return names.index(name)


def click_row(qtbot: QtBot, panel: PluginsPanel, row: int) -> None:
    rect = panel.view.visualRect(panel.model.index(row, COLUMN_NAME))
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_both_plugins_are_listed_with_origin_location_and_status(
    qtbot: QtBot, qtmodeltester: Any, folder: Path, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, Plugins(discover(folder)), runner)

    assert panel.model.rowCount() == 2
    good, broken = row_named(panel, "good"), row_named(panel, "broken")
    assert cell(panel, good, COLUMN_ORIGIN) == cell(panel, broken, COLUMN_ORIGIN) == "folder"
    assert cell(panel, good, COLUMN_LOCATION) == str(folder / "good.py")
    assert cell(panel, broken, COLUMN_LOCATION) == str(folder / "broken.py")
    assert cell(panel, good, COLUMN_STATUS) == "loaded"
    assert cell(panel, broken, COLUMN_STATUS) == "failed"
    foreground = Qt.ItemDataRole.ForegroundRole
    assert panel.model.data(panel.model.index(broken, COLUMN_STATUS), foreground) is not None
    assert panel.model.data(panel.model.index(good, COLUMN_STATUS), foreground) is None
    assert panel.summary_label.text() == "2 plugin(s): 1 loaded, 1 failed"
    qtmodeltester.check(panel.model)


def test_selecting_a_plugin_lists_its_contributions_or_its_traceback(
    qtbot: QtBot, folder: Path, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, Plugins(discover(folder)), runner)

    click_row(qtbot, panel, row_named(panel, "good"))
    details = panel.details.toPlainText()
    assert "tally:1" in details
    assert "Count:  Count one more." in details
    assert "Traceback" not in details

    click_row(qtbot, panel, row_named(panel, "broken"))
    details = panel.details.toPlainText()
    assert "Traceback (most recent call last)" in details
    assert "reason: RuntimeError: the broken plugin cannot start" in details
    assert panel.details.isReadOnly()


def test_reload_from_disk_shows_the_new_code_and_says_so(
    qtbot: QtBot, qtmodeltester: Any, folder: Path, runner: TaskRunner
) -> None:
    threads: list[threading.Thread] = []

    def rediscover() -> Registry:
        threads.append(threading.current_thread())
        return discover(folder)

    panel = open_panel(qtbot, Plugins(discover(folder), rediscover=rediscover), runner)
    click_row(qtbot, panel, row_named(panel, "good"))
    good = folder / "good.py"
    good.write_text(GOOD.format(version=2) + "# version 2\n")
    # The import system trusts a cached bytecode whose source has the same mtime (whole
    # seconds) and size: a user's edit takes longer than that, a test's does not.
    stat = good.stat()
    os.utime(good, (stat.st_atime, stat.st_mtime + 2))

    with (
        qtbot.waitSignal(panel.plugins_reloaded, timeout=SIGNAL_TIMEOUT_MS) as reloaded,
        qtbot.waitSignal(panel.catalog_shown, timeout=SIGNAL_TIMEOUT_MS) as shown,
    ):
        qtbot.mouseClick(panel.reload_button, Qt.MouseButton.LeftButton)

    catalog: list[PluginInfo] = reloaded.args[0]
    assert [p.reference() for info in catalog for p in info.projections] == ["tally:2"]
    assert shown.args == [2]
    assert threads and threads[0] is not threading.main_thread()
    assert "tally:2" in panel.details.toPlainText()  # the selected plugin stays selected
    assert "tally:1" not in panel.details.toPlainText()
    assert panel.reload_button.isEnabled()
    assert not panel.error_label.isVisible()
    qtmodeltester.check(panel.model)


def test_plugins_given_whole_cannot_reload_and_the_error_shows_next_to_the_button(
    qtbot: QtBot, folder: Path, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, Plugins(discover(folder)), runner)

    with qtbot.waitSignal(panel.reload_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        qtbot.mouseClick(panel.reload_button, Qt.MouseButton.LeftButton)

    assert "no reload" in failed.args[0]
    assert panel.error_label.isVisible()
    assert panel.error_label.text() == f"reload failed: {failed.args[0]}"
    assert "\n" not in panel.error_label.text()
    assert panel.model.rowCount() == 2  # the catalog shown is unchanged
    assert panel.reload_button.isEnabled()


def test_a_plugin_refused_for_a_clash_shows_its_one_line_reason_once(
    qtbot: QtBot, folder: Path, runner: TaskRunner
) -> None:
    (folder / "twin.py").write_text(GOOD.format(version=1))  # tally:1 again
    panel = open_panel(qtbot, Plugins(discover(folder)), runner)

    click_row(qtbot, panel, row_named(panel, "twin"))

    details = panel.details.toPlainText()
    assert details.count("duplicate projection tally:1") == 1
    assert "reason: duplicate projection tally:1 (already contributed by good (path))" in details


def test_no_plugin_at_all_says_how_to_add_one(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    panel = open_panel(qtbot, Plugins(discover(empty)), runner)

    assert panel.model.rowCount() == 0
    assert panel.empty_label.isVisible()
    assert panel.empty_label.text() == EMPTY_TEXT
    assert not panel.view.isVisible()


def test_failed_plugins_are_recoloured_when_the_theme_turns_dark(
    qtbot: QtBot, folder: Path, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, Plugins(discover(folder)), runner)
    broken = panel.model.index(row_named(panel, "broken"), COLUMN_STATUS)
    light = panel.model.data(broken, Qt.ItemDataRole.ForegroundRole)

    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Window, QColor("#202020"))
    with qtbot.waitSignal(panel.model.dataChanged, timeout=SIGNAL_TIMEOUT_MS):
        panel.setPalette(dark)

    on_dark = panel.model.data(broken, Qt.ItemDataRole.ForegroundRole)
    assert isinstance(on_dark, QColor) and isinstance(light, QColor)
    assert on_dark.lightness() > light.lightness()  # a lighter red, to read on dark grey
