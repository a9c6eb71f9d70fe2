"""The disk-full study with make test's counts, and the console on a full disk: StoreFull,
nothing half-written, one line for the user, and work that goes on once space is freed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit
from pytestqt.qtbot import QtBot

from console.app import ConsoleSession
from console.in_app_projections import SETTING_KEY
from console.panels.projections.model import COLUMN_PROJECTION
from core.workspace import Workspace
from tests.reliability.disk_full import OPERATIONS, cannot_mount, fill, mounted, study

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 10_000
ORDER = {
    "order_id": "90001",
    "customer_id": "C0042",
    "items": '[{"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299}]',
}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    reason = cannot_mount(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    return tmp_path


def test_every_operation_on_a_full_disk_is_store_full_whole_and_works_once_space_is_freed(
    workdir: Path,
) -> None:
    figures = study(False, workdir)
    assert figures.failures == []
    refused = {a.operation for a in figures.attempts if a.outcome == "refused (StoreFull)"}
    assert refused == set(OPERATIONS)  # with no space left at all, each one is refused
    assert figures.cli_code == 1
    assert all(case.file_short and case.reopened_full == "ok" for case in figures.wal)


@pytest.fixture
def sessions(qapp: Any) -> Iterator[list[ConsoleSession]]:
    opened: list[ConsoleSession] = []
    yield opened
    for session in opened:
        session.close()


def test_the_console_shows_a_full_disk_in_one_line_and_executes_once_space_is_freed(
    qtbot: QtBot, workdir: Path, sessions: list[ConsoleSession]
) -> None:
    with mounted(workdir / "store", "24m") as folder:
        location = str(folder / "store.db")
        with Workspace.open(location, read_only=False) as workspace:
            workspace.writing.write_demo(orders=20, seed=1)
        settings = QSettings(str(workdir / "s.ini"), QSettings.Format.IniFormat)
        session = ConsoleSession(Workspace.open(location, read_only=False), settings=settings)
        sessions.append(session)
        window = session.window
        with qtbot.waitSignal(window.head_position_loaded, timeout=SIGNAL_TIMEOUT_MS):
            window.show()
        panel = window.commands_panel
        window.commands_dock.show()
        assert panel.select_command("PlaceOrder") and panel.form is not None
        for name, text in ORDER.items():
            widget = panel.form.editor(name).widget
            if isinstance(widget, QPlainTextEdit):
                widget.setPlainText(text)
            elif isinstance(widget, QLineEdit):
                widget.setText(text)
        ballast = fill(folder, 0)
        try:
            with qtbot.waitSignal(panel.run_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
                qtbot.mouseClick(panel.execute_button, Qt.MouseButton.LeftButton)
            (message,) = failed.args
            assert "the disk is full; free some space" in message
            assert "\n" not in message
            assert panel.results.outcome_label.text() == message
            # Responsive: the form can be run again at once.
            qtbot.waitUntil(panel.execute_button.isEnabled, timeout=SIGNAL_TIMEOUT_MS)
        finally:
            ballast.unlink()
        with qtbot.waitSignal(panel.executed, timeout=SIGNAL_TIMEOUT_MS) as executed:
            qtbot.mouseClick(panel.execute_button, Qt.MouseButton.LeftButton)
        assert [event.type for event in executed.args[0].events] == ["OrderPlaced"]
        session.close()
        sessions.remove(session)


def test_projections_on_a_full_disk_say_so_in_one_line_and_catch_up_once_space_is_freed(
    qtbot: QtBot, workdir: Path, sessions: list[ConsoleSession]
) -> None:
    with mounted(workdir / "store", "24m") as folder:
        location = str(folder / "store.db")
        with Workspace.open(location, read_only=False) as workspace:
            workspace.writing.write_demo(orders=20, seed=1)
        settings = QSettings(str(workdir / "s.ini"), QSettings.Format.IniFormat)
        settings.setValue(SETTING_KEY, False)  # started by hand once the disk is full
        workspace = Workspace.open(location, read_only=False)
        session = ConsoleSession(workspace, settings=settings)
        sessions.append(session)
        window = session.window
        with qtbot.waitSignal(window.head_position_loaded, timeout=SIGNAL_TIMEOUT_MS):
            window.show()
        in_app = window.in_app_projections
        assert not in_app.running
        panel = window.projections_panel
        with qtbot.waitSignal(panel.statuses_shown, timeout=SIGNAL_TIMEOUT_MS):
            window.projections_dock.show()
        row = panel.model.row_of("order_summary:1")
        assert row is not None
        rect = panel.view.visualRect(panel.model.index(row, COLUMN_PROJECTION))
        with qtbot.waitSignal(panel.history_shown, timeout=SIGNAL_TIMEOUT_MS):
            qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        ballast = fill(folder, 0)
        try:
            # Run now, from the projections panel: one line under its table.
            with qtbot.waitSignal(panel.action_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
                qtbot.mouseClick(panel.action_button("run"), Qt.MouseButton.LeftButton)
            reason = failed.args[2]
            assert "the disk is full; free some space" in reason and "\n" not in reason
            assert "the disk is full" in panel.message_label.text()
            # The in-app projections, started now: one line in the status bar.
            with qtbot.waitSignal(in_app.running_changed, timeout=SIGNAL_TIMEOUT_MS):
                in_app.action.setChecked(True)

            def shown() -> bool:
                return "did not run" in window.statusBar().currentMessage()

            qtbot.waitUntil(shown, timeout=SIGNAL_TIMEOUT_MS)
            message = window.statusBar().currentMessage()
            assert "the disk is full; free some space" in message and "\n" not in message
            assert {s.state for s in workspace.projections.statuses()} == {"never run"}
        finally:
            ballast.unlink()

        def caught_up() -> bool:
            return all(s.lag == 0 for s in workspace.projections.statuses())

        qtbot.waitUntil(caught_up, timeout=30_000)
        session.close()
        sessions.remove(session)
