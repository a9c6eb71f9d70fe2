"""The main window's status bar, menu and saved layout, and ``run_gui`` end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyqtgraph import PlotWidget
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage, QKeySequence
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from console.app import DEMO_RUNS, run_gui
from console.main_window import SETTINGS_VERSION, MainWindow
from console.workers import TaskRunner
from core.store import EventFilter
from core.workspace import Workspace

SIGNAL_TIMEOUT_MS = 5_000


@pytest.fixture
def demo_store(tmp_path: Path) -> str:
    location = str(tmp_path / "demo.db")
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.write_demo("orders", orders=300, seed=7)
    return location


@pytest.fixture
def show_window(
    qtbot: QtBot, runner: TaskRunner, workspaces: list[Workspace], windows: list[MainWindow]
) -> Any:
    def show(
        location: str, *, writable: bool = False, settings: QSettings | None = None
    ) -> MainWindow:
        workspace = Workspace.open(location, read_only=not writable)
        workspaces.append(workspace)
        window = MainWindow(workspace, runner, settings=settings)
        windows.append(window)
        with qtbot.waitSignals(
            [window.head_position_loaded, window.streams_panel.first_page_loaded],
            timeout=SIGNAL_TIMEOUT_MS,
        ):
            window.show()
        return window

    return show


def head_of(location: str) -> int:
    with Workspace.open(location) as workspace:
        return workspace.events.head_position()


def test_the_window_shows_the_store_its_head_and_that_it_is_read_only(
    show_window: Any, demo_store: str
) -> None:
    window = show_window(demo_store)

    head = head_of(demo_store)
    assert head > 1_000  # so the thousands separator shows
    assert window.head_label.text() == f"head {head:,}"
    assert window.head_label.isVisible()
    assert window.mode_label.text() == "read-only"
    assert window.mode_label.isVisible()
    assert window.windowTitle() == f"Eventscope — {demo_store}"
    assert demo_store in [label.text() for label in window.statusBar().findChildren(QLabel)]
    with Workspace.open(demo_store) as probe:
        streams = sum(1 for _ in probe.events.streams())
    assert window.streams_panel.model.rowCount() == streams
    assert window.streams_dock.objectName() == "streamsDock"


def test_a_writable_store_says_so_in_capitals(show_window: Any, demo_store: str) -> None:
    window = show_window(demo_store, writable=True)

    assert window.mode_label.text() == "WRITABLE"
    assert window.mode_label.isVisible()


def test_f5_reloads_the_head_and_the_streams(
    qtbot: QtBot, show_window: Any, demo_store: str
) -> None:
    window = show_window(demo_store)
    streams_before = window.streams_panel.model.rowCount()
    with Workspace.open(demo_store, read_only=False) as writer:
        writer.writing.append("order-999", "OrderPlaced", {"total": 1.0})
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=SIGNAL_TIMEOUT_MS)

    assert window.reload_action.shortcut() == QKeySequence(Qt.Key.Key_F5)
    with qtbot.waitSignals(
        [window.head_position_loaded, window.streams_panel.first_page_loaded],
        timeout=SIGNAL_TIMEOUT_MS,
    ):
        qtbot.keyClick(window, Qt.Key.Key_F5)
    assert window.head_label.text() == f"head {head_of(demo_store):,}"
    assert window.streams_panel.model.rowCount() == streams_before + 1


def test_ctrl_q_quits(qtbot: QtBot, show_window: Any, demo_store: str) -> None:
    window = show_window(demo_store)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=SIGNAL_TIMEOUT_MS)

    assert window.quit_action.shortcut() == QKeySequence("Ctrl+Q")
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible()


def test_the_layout_and_size_are_restored_next_time(
    show_window: Any, demo_store: str, tmp_path: Path
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    first = show_window(demo_store, settings=settings)
    first.resize(720, 480)  # inside the offscreen screen (800x600): restoring clips to it
    first.streams_dock.toggleViewAction().trigger()
    assert first.streams_dock.isHidden()
    first.close()
    assert settings.value("main_window/settings_version", type=int) == SETTINGS_VERSION

    second = show_window(demo_store, settings=settings)
    assert second.streams_dock.isHidden()
    assert (second.width(), second.height()) == (720, 480)


def test_a_layout_saved_by_another_settings_version_is_not_restored(
    show_window: Any, demo_store: str, tmp_path: Path
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    first = show_window(demo_store, settings=settings)
    first.resize(720, 480)
    first.streams_dock.toggleViewAction().trigger()
    first.close()
    settings.setValue("main_window/settings_version", SETTINGS_VERSION + 1)

    second = show_window(demo_store, settings=settings)
    assert not second.streams_dock.isHidden()
    assert (second.width(), second.height()) == (1280, 800)


def test_run_gui_seeds_a_demo_store_and_saves_screenshots(
    qapp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = tmp_path / "demo.db"
    shots = tmp_path / "shots" / "nested"

    code = run_gui(str(location), demo=True, writable=False, screenshot_dir=str(shots))

    assert code == 0, capsys.readouterr().err
    names = ("streams.png", "event-log.png", "inspector.png", "timeline.png", "window.png")
    for name in (
        *names,
        "time-travel.png",
        "compare.png",
        "plugins.png",
        "projections.png",
        "commands.png",
    ):
        image = QImage(str(shots / name))
        assert not image.isNull(), name
        low = 100 if name == "timeline.png" else 300  # the timeline is a strip along the bottom
        assert image.width() > 300 and image.height() > low, name
    assert QImage(str(shots / "window.png")).size().toTuple() == (1280, 800)
    assert QImage(str(shots / "time-travel.png")).size().toTuple() == (1180, 660)
    head = head_of(str(location))
    assert head > 0
    with Workspace.open(str(location)) as seeded:  # the demo's projections were run
        states = {s.reference: s for s in seeded.projections.statuses()}
        runs = {ref: len(seeded.projections.runs(ref)) for ref in states}
    # ... all the way, but for the new version being rolled out, left behind to catch up
    rolling_out = states.pop("order_summary:2")
    assert states and {s.state for s in states.values()} == {"caught up"}, states
    assert rolling_out.state == "behind" and 0 < rolling_out.checkpoint < rolling_out.head
    assert runs["order_summary:1"] == DEMO_RUNS  # in runs the projections panel charts
    assert runs["order_summary:2"] == DEMO_RUNS - 2

    # A second demo run finds the store seeded and leaves it alone.
    assert run_gui(str(location), demo=True, writable=False, screenshot_dir=str(shots)) == 0
    assert head_of(str(location)) == head


def test_run_gui_demo_leaves_a_store_that_has_events_alone(qapp: Any, tmp_path: Path) -> None:
    location = str(tmp_path / "mine.db")
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.append("customer-1", "CustomerRegistered", {"name": "Ada"})

    code = run_gui(location, demo=True, writable=False, screenshot_dir=str(tmp_path / "shots"))

    assert code == 0
    assert head_of(location) == 1


def test_run_gui_refuses_a_missing_store_without_demo(
    qapp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = tmp_path / "missing.db"

    code = run_gui(str(location), demo=False, writable=False, screenshot_dir=str(tmp_path))

    assert code == 5
    assert not location.exists()
    error = capsys.readouterr().err
    assert error.startswith("eventscope: ")
    assert error.count("\n") == 1
    assert not (tmp_path / "window.png").exists()


def test_run_gui_refuses_a_corrupt_store_even_with_demo(
    qapp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = tmp_path / "corrupt.db"
    garbage = b"not a database at all " * 50
    location.write_bytes(garbage)

    code = run_gui(str(location), demo=True, writable=False, screenshot_dir=str(tmp_path))

    assert code == 5
    assert location.read_bytes() == garbage
    assert capsys.readouterr().err.startswith("eventscope: ")


def test_clicking_the_timeline_jumps_the_event_log_to_that_time(
    qtbot: QtBot, show_window: Any, demo_store: str
) -> None:
    window = show_window(demo_store)
    with qtbot.waitSignal(window.timeline.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS):
        window.timeline.reload()
    with Workspace.open(demo_store) as probe:
        some_event = list(probe.events.read(limit=1000))[-1]
    with qtbot.waitSignal(window.event_log.event_selected, timeout=SIGNAL_TIMEOUT_MS) as shown:
        window.timeline.time_selected.emit(some_event.recorded_at)
    assert shown.args[0].recorded_at <= some_event.recorded_at
    assert shown.args[0].position == some_event.position  # the last event at or before it
    assert window.timeline.cursor_time == some_event.recorded_at  # the selection moved it


def test_the_timeline_counts_what_the_event_log_is_filtered_to(
    qtbot: QtBot, show_window: Any, demo_store: str
) -> None:
    window = show_window(demo_store)
    with qtbot.waitSignal(window.timeline.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as all_:
        window.timeline.reload()
    with Workspace.open(demo_store) as probe:
        everything = probe.events.count()
        paid = probe.events.count(EventFilter(types=("OrderPaid",)))
    assert all_.args == [everything]
    assert (
        "matching"
        not in window.timeline.findChild(PlotWidget).getPlotItem().getAxis("left").labelText
    )

    types = window.event_log.filter_edit("types")
    with qtbot.waitSignal(window.timeline.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as shown:
        types.setText("OrderPaid")
        qtbot.keyClick(types, Qt.Key.Key_Return)
    assert 0 < paid < everything
    assert shown.args == [paid]
    assert sum(window.timeline.counts) == paid
    assert (
        "matching events"
        in window.timeline.findChild(PlotWidget).getPlotItem().getAxis("left").labelText
    )


def test_run_gui_writable_audits_the_start_and_the_screenshot_shows_the_banner(
    qapp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = str(tmp_path / "mine.db")
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.append("customer-1", "CustomerRegistered", {"name": "Ada"})
    shots = tmp_path / "shots"

    code = run_gui(location, demo=False, writable=True, screenshot_dir=str(shots))

    assert code == 0, capsys.readouterr().err
    with Workspace.open(location) as probe:
        audits = list(probe.events.read(EventFilter(stream_prefix="$audit")))
    assert [event.type for event in audits] == ["WritableModeEntered"]
    assert audits[0].data["store"] == location
    shot = QImage(str(shots / "window.png"))
    above_the_log = [shot.pixelColor(700, y) for y in range(0, 120)]  # under the tool bar
    assert any(c.red() > 150 and c.green() < 80 for c in above_the_log), "no writable banner"
