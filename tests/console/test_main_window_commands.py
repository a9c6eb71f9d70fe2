"""The commands dock in the window: View → Commands, the writable switch, the link to the
event log, and the plugins panel's reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QPushButton
from pytestqt.qtbot import QtBot

import console.main_window as main_window_module
from console.app import ConsoleSession
from console.main_window import MainWindow
from console.panels.commands.panel import READ_ONLY_TIP
from console.panels.commands.results import COLUMN_LINK
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 5_000
ORDER = {
    "order_id": "90001",
    "customer_id": "C0042",
    "items": '[{"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299}]',
}
LATER = '''\
from core.api import command


@command("Polish", stream="gadget-{name}", fields={"name": str})
def polish(state, data):
    """Make it shine."""
    return [("Polished", data)]
'''


@pytest.fixture
def sessions(qapp: Any) -> Iterator[list[ConsoleSession]]:
    opened: list[ConsoleSession] = []
    yield opened
    for session in opened:
        session.close()


@pytest.fixture
def start(qtbot: QtBot, sessions: list[ConsoleSession], tmp_path: Path) -> Any:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)

    def start_window(
        location: str, *, writable: bool = False, plugins: Path | None = None
    ) -> MainWindow:
        dirs = [plugins] if plugins is not None else []
        workspace = Workspace.open(location, read_only=not writable, plugin_dirs=dirs)
        session = ConsoleSession(workspace, settings=settings)
        sessions.append(session)
        window = session.window
        with qtbot.waitSignals(
            [window.head_position_loaded, window.streams_panel.first_page_loaded],
            timeout=SIGNAL_TIMEOUT_MS,
        ):
            window.show()
        return window

    return start_window


@pytest.fixture
def location(tmp_path: Path) -> str:
    location = str(tmp_path / "store.db")
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.append("note-1", "Noted", {"n": 1})
    return location


def fill_order(window: MainWindow) -> None:
    panel = window.commands_panel
    assert panel.select_command("PlaceOrder") and panel.form is not None
    for name, text in ORDER.items():
        widget = panel.form.editor(name).widget
        if isinstance(widget, QPlainTextEdit):
            widget.setPlainText(text)
        elif isinstance(widget, QLineEdit):
            widget.setText(text)


def test_the_dock_is_in_the_view_menu_and_execute_follows_the_writable_switch(
    qtbot: QtBot, start: Any, location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main_window_module, "confirm_writable", lambda *_args: True)
    window = start(location)
    assert window.commands_dock.objectName() == "commandsDock"
    assert window.commands_dock.widget() is window.commands_panel
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert window.commands_dock.toggleViewAction() in view_menu.actions()
    fill_order(window)
    execute = window.commands_panel.execute_button
    assert not execute.isEnabled() and execute.toolTip() == READ_ONLY_TIP

    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS):
        window.set_writable(True)
    assert execute.isEnabled()

    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS):
        window.set_writable(False)
    assert not execute.isEnabled()


def test_show_in_log_selects_the_appended_event_in_the_event_log(
    qtbot: QtBot, start: Any, location: str
) -> None:
    window = start(location, writable=True)
    window.commands_dock.show()
    panel = window.commands_panel
    fill_order(window)
    with qtbot.waitSignal(panel.executed, timeout=SIGNAL_TIMEOUT_MS) as executed:
        qtbot.mouseClick(panel.execute_button, Qt.MouseButton.LeftButton)
    (placed,) = executed.args[0].events
    link = panel.results.table.cellWidget(0, COLUMN_LINK)
    assert isinstance(link, QPushButton)

    def is_placed(event: Any) -> bool:
        return bool(event.event_id == placed.event_id)

    with qtbot.waitSignal(
        window.event_log.event_selected, timeout=SIGNAL_TIMEOUT_MS, check_params_cb=is_placed
    ):
        qtbot.mouseClick(link, Qt.MouseButton.LeftButton)


def test_reloading_the_plugins_lists_their_new_commands(
    qtbot: QtBot, start: Any, location: str, tmp_path: Path
) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    window = start(location, plugins=folder)
    panel = window.commands_panel
    (folder / "later.py").write_text(LATER)

    with qtbot.waitSignal(panel.catalog_shown, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.mouseClick(window.plugins_panel.reload_button, Qt.MouseButton.LeftButton)

    assert panel.select_command("Polish")
