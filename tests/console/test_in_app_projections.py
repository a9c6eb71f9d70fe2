"""The console runs the projections itself while its store is writable (issue 14, point 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

import console.main_window as main_window_module
from console.in_app_projections import SETTING_KEY
from console.main_window import MainWindow
from console.workers import TaskRunner
from core.workspace import Workspace

TIMEOUT_MS = 20_000


@pytest.fixture
def store(tmp_path: Path) -> str:
    location = str(tmp_path / "shop.db")
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.write_demo("orders", orders=40, seed=7)
    return location


@pytest.fixture
def open_window(
    qtbot: QtBot, runner: TaskRunner, workspaces: list[Workspace], windows: list[MainWindow]
) -> Any:
    def open_(location: str, *, writable: bool, settings: QSettings | None = None) -> MainWindow:
        workspace = Workspace.open(location, read_only=not writable)
        workspaces.append(workspace)
        window = MainWindow(workspace, runner, settings=settings)
        windows.append(window)
        window.show()
        return window

    return open_


_PROBES: dict[str, Workspace] = {}


def statuses(location: str) -> dict[str, Any]:
    """The projections' statuses, through one read-only workspace kept open per store
    (opening one again and again races SQLite's WAL files with the writers' closes)."""
    probe = _PROBES.get(location)
    if probe is None:
        probe = _PROBES[location] = Workspace.open(location)
    return {s.reference: s for s in probe.projections.statuses()}


@pytest.fixture(autouse=True)
def _close_probes() -> Any:
    yield
    for probe in _PROBES.values():
        probe.close()
    _PROBES.clear()


def caught_up(location: str) -> bool:
    return all(s.state == "caught up" for s in statuses(location).values())


def test_a_writable_console_keeps_the_projections_current(
    qtbot: QtBot, store: str, open_window: Any
) -> None:
    window = open_window(store, writable=True)
    runner = window.in_app_projections
    qtbot.waitUntil(lambda: runner.running, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: caught_up(store), timeout=TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: runner.label.text().startswith("projections: run here"), timeout=TIMEOUT_MS
    )
    (last,) = _PROBES[store].projections.runs("order_summary:1", limit=1)
    assert last.worker == runner.worker and runner.worker.startswith("console:")

    # An order placed from the command line, in another process, reaches the read model.
    placed = subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", store, "command", "PlaceOrder",
         "--data", '{"order_id": "99999", "customer_id": "C0001", '
         '"items": [{"sku": "KETTLE-GOOSENECK", "quantity": 1, "unit_price_cents": 4500}]}'],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert placed.returncode == 0, placed.stderr
    qtbot.waitUntil(lambda: caught_up(store), timeout=TIMEOUT_MS)
    probe = _PROBES[store]
    at = probe.timetravel.locate("order_summary:1")
    assert at.from_history
    assert probe.timetravel.document(at, "99999") is not None


def test_a_read_only_console_only_monitors(qtbot: QtBot, store: str, open_window: Any) -> None:
    window = open_window(store, writable=False)
    with qtbot.waitSignal(window.in_app_projections.workers_sampled, timeout=TIMEOUT_MS):
        pass
    assert not window.in_app_projections.running
    assert window.in_app_projections.label.text() == "projections: monitored"
    assert {s.state for s in statuses(store).values()} == {"never run"}


def test_the_setting_turns_running_in_the_console_off(
    qtbot: QtBot, store: str, open_window: Any, tmp_path: Path
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(SETTING_KEY, False)
    window = open_window(store, writable=True, settings=settings)
    with qtbot.waitSignal(window.in_app_projections.workers_sampled, timeout=TIMEOUT_MS):
        pass
    assert not window.in_app_projections.running
    assert window.in_app_projections.label.text() == "projections: not run here"
    assert {s.state for s in statuses(store).values()} == {"never run"}

    with qtbot.waitSignal(window.in_app_projections.running_changed, timeout=TIMEOUT_MS):
        window.in_app_projections.action.setChecked(True)  # Store → Run projections here
    assert settings.value(SETTING_KEY, type=bool) is True
    qtbot.waitUntil(lambda: caught_up(store), timeout=TIMEOUT_MS)


def test_going_read_only_stops_them_and_gives_the_leases_back(
    qtbot: QtBot, store: str, open_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = open_window(store, writable=True)
    qtbot.waitUntil(lambda: caught_up(store), timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.writable_changed, timeout=TIMEOUT_MS):
        window.set_writable(False)
    assert not window.in_app_projections.running
    assert all(s.worker is None for s in statuses(store).values())  # leases given back

    monkeypatch.setattr(main_window_module, "confirm_writable", lambda *_args: True)
    with qtbot.waitSignal(window.in_app_projections.running_changed, timeout=TIMEOUT_MS):
        window.set_writable(True)
    assert window.in_app_projections.running


def test_a_projection_another_worker_runs_is_left_to_it_and_named(
    qtbot: QtBot, store: str, open_window: Any
) -> None:
    with Workspace.open(store, read_only=False) as other:
        other.projections.take_lease("order_summary:1", "worker-7", 300)
    window = open_window(store, writable=True)
    runner = window.in_app_projections
    qtbot.waitUntil(
        lambda: all(
            s.state == "caught up" for ref, s in statuses(store).items() if ref != "order_summary:1"
        ),
        timeout=TIMEOUT_MS,
    )
    qtbot.waitUntil(lambda: "worker-7 runs 1" in runner.label.text(), timeout=TIMEOUT_MS)
    assert statuses(store)["order_summary:1"].checkpoint == 0  # left to worker-7


def test_a_window_closed_before_its_projections_started_never_starts_them(
    qtbot: QtBot, store: str, runner: TaskRunner, workspaces: list[Workspace]
) -> None:
    workspace = Workspace.open(store, read_only=False)
    workspaces.append(workspace)
    window = MainWindow(workspace, runner)  # would start them once painted
    qtbot.addWidget(window)
    in_app = window.in_app_projections
    in_app.shut_down()  # the window closes before the start has run

    assert in_app.start() is False
    assert not in_app.running


def test_projections_start_once_the_window_has_painted_and_the_gui_thread_waits_1_ms_at_most(
    qtbot: QtBot, store: str, runner: TaskRunner, workspaces: list[Workspace], windows: Any
) -> None:
    workspace = Workspace.open(store, read_only=False)
    workspaces.append(workspace)
    window = MainWindow(workspace, runner)
    windows.append(window)
    in_app = window.in_app_projections
    qtbot.wait(300)  # a window not yet shown has not painted: its projections wait
    assert not in_app.running
    assert sys.getswitchinterval() <= main_window_module.SWITCH_INTERVAL_S

    window.show()
    qtbot.waitUntil(lambda: in_app.running, timeout=TIMEOUT_MS)
