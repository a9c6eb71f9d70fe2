"""The main window's writable switch, banner and audit; opening stores; find; theme; ev/s."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

import console.main_window as main_window_module
from console.app import ConsoleSession
from console.main_window import AUDIT_STREAM, MAX_RECENT_STORES, MainWindow, recent_stores
from console.workers import TaskRunner
from core.errors import Cancelled, StoreReadOnly, StoreUnusable
from core.jobs import Job, checkpoint, current_job
from core.services.handle import reopen_store
from core.store import EventFilter
from core.workspace import Workspace

SIGNAL_TIMEOUT_MS = 5_000


def make_store(path: Path, events: int = 3) -> str:
    location = str(path)
    with Workspace.open(location, read_only=False) as workspace:
        for number in range(events):
            workspace.writing.append(f"order-{number}", "OrderPlaced", {"n": number})
    return location


def head_of(location: str) -> int:
    with Workspace.open(location) as workspace:
        return workspace.events.head_position()


def indexed_of(location: str) -> int:
    with Workspace.open(location) as workspace:
        return workspace.events.indexed_position()


def audit_events(location: str) -> list[Any]:
    with Workspace.open(location) as workspace:
        return list(workspace.events.read(EventFilter(stream_prefix=AUDIT_STREAM)))


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def sessions(qapp: Any) -> Iterator[list[ConsoleSession]]:
    opened: list[ConsoleSession] = []
    yield opened
    for session in opened:
        session.close()


@pytest.fixture
def start(qtbot: QtBot, sessions: list[ConsoleSession], settings: QSettings) -> Any:
    def start_session(
        location: str,
        *,
        writable: bool = False,
        rate_interval_ms: int = 2_000,
        index_interval_ms: int = 2_000,
    ) -> ConsoleSession:
        session = ConsoleSession(
            Workspace.open(location, read_only=not writable),
            settings=settings,
            rate_interval_ms=rate_interval_ms,
            index_interval_ms=index_interval_ms,
        )
        sessions.append(session)
        window = session.window
        with qtbot.waitSignals(
            [window.head_position_loaded, window.streams_panel.first_page_loaded],
            timeout=SIGNAL_TIMEOUT_MS,
        ):
            window.show()
        return session

    return start_session


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What the confirmation box answers (first item); each question is recorded after."""
    answers = [True]

    def confirm(_parent: object, location: str) -> bool:
        answers.append(location)  # type: ignore[arg-type]
        return answers[0]

    monkeypatch.setattr(main_window_module, "confirm_writable", confirm)
    return answers


# -- writable switch ------------------------------------------------------------------------


def test_switching_to_writable_asks_reopens_shows_the_banner_and_audits_once(
    qtbot: QtBot, start: Any, tmp_path: Path, answer: list[bool]
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location).window
    assert window.banner.isHidden()
    assert window.workspace.read_only

    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS) as changed:
        window.writable_action.trigger()

    assert answer[1:] == [location]  # asked once, about this store
    assert changed.args == [True]
    assert not window.workspace.read_only
    assert window.banner.isVisible()
    assert window.banner_label.text() == f"WRITABLE — changes go to {location}"
    assert window.mode_label.text() == "WRITABLE"
    assert window.writable_action.isChecked()
    audits = audit_events(location)
    assert [event.type for event in audits] == ["WritableModeEntered"]
    assert audits[0].data["store"] == location
    assert audits[0].data["user"]
    assert head_of(location) == 4
    window.workspace.writing.append(
        "order-9", "OrderPlaced", {"n": 9}
    )  # the shared workspace writes
    assert head_of(location) == 5


def test_declining_the_confirmation_leaves_the_store_read_only_and_untouched(
    qtbot: QtBot, start: Any, tmp_path: Path, answer: list[bool]
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location).window
    answer[0] = False

    qtbot.mouseClick(window.mode_label, Qt.MouseButton.LeftButton)  # the badge asks too

    assert answer[1:] == [location]
    assert window.workspace.read_only
    assert window.banner.isHidden()
    assert not window.writable_action.isChecked()
    assert window.mode_label.text() == "read-only"
    assert head_of(location) == 3
    with pytest.raises(StoreReadOnly):
        window.workspace.writing.append("order-9", "OrderPlaced", {})


def test_back_to_read_only_hides_the_banner_audits_and_refuses_writes(
    qtbot: QtBot, start: Any, tmp_path: Path, answer: list[bool]
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location).window
    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS):
        window.set_writable(True)
    assert window.banner.isVisible()

    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS) as changed:
        qtbot.mouseClick(window.read_only_button, Qt.MouseButton.LeftButton)

    assert changed.args == [False]
    assert len(answer) == 2  # going back asks nothing
    assert window.banner.isHidden()
    assert window.mode_label.text() == "read-only"
    assert not window.writable_action.isChecked()
    assert [event.type for event in audit_events(location)] == [
        "WritableModeEntered",
        "WritableModeLeft",
    ]
    with pytest.raises(StoreReadOnly):
        window.workspace.writing.append("order-9", "OrderPlaced", {})


def refuse_leaving(location: str) -> None:
    """An index in the store file that makes the database refuse a second ``$audit``
    event (WritableModeEntered is the first): a constraint, not a trigger, since a store
    holding triggers is refused at open."""
    connection = sqlite3.connect(location)
    try:
        connection.execute(
            "CREATE UNIQUE INDEX refuse_leaving ON events (stream_id) WHERE stream_id = '$audit'"
        )
        connection.commit()
    finally:
        connection.close()


def test_a_store_that_cannot_be_reopened_keeps_its_mode_and_says_why(
    qtbot: QtBot,
    start: Any,
    tmp_path: Path,
    answer: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location).window

    def refuse(store: Any, *, read_only: bool) -> None:
        raise StoreUnusable(f"{location}: database is locked")

    # (File permissions cannot make the writable open fail when the tests run as root.)
    monkeypatch.setattr("core.services.handle.reopen_store", refuse)
    with qtbot.waitSignal(window.writable_switch_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        window.writable_action.trigger()

    assert failed.args[0] == f"Could not make the store writable: {location}: database is locked"
    box = window.findChild(QMessageBox)
    assert box is not None and box.isVisible() and "database is locked" in box.text()
    box.close()
    assert window.workspace.read_only
    assert window.banner.isHidden()
    assert not window.writable_action.isChecked()
    assert head_of(location) == 3


def test_an_audit_failure_on_the_way_back_still_leaves_the_store_read_only_and_says_so(
    qtbot: QtBot,
    start: Any,
    tmp_path: Path,
    answer: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location).window
    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS):
        window.set_writable(True)

    # The database itself refuses the audit event of leaving.
    refuse_leaving(location)
    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS) as changed:
        qtbot.mouseClick(window.read_only_button, Qt.MouseButton.LeftButton)

    assert changed.args == [False]
    assert window.workspace.read_only
    assert window.banner.isHidden()
    assert window.mode_label.text() == "read-only"
    box = window.findChild(QMessageBox)
    assert box is not None and box.isVisible()
    assert "read-only again" in box.text() and "UNIQUE constraint failed" in box.text()
    box.close()
    with pytest.raises(StoreReadOnly):
        window.workspace.writing.append("order-9", "OrderPlaced", {})
    assert [event.type for event in audit_events(location)] == ["WritableModeEntered"]


def test_switching_cancels_a_search_in_flight_and_runs_it_again_after(
    qtbot: QtBot,
    start: Any,
    tmp_path: Path,
    answer: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location).window
    workspace = window.workspace
    read = workspace.events.read
    gate = threading.Event()
    searches: list[Job | None] = []
    stopped: list[str] = []
    cancelled_before_reopen: list[bool] = []

    def slow_read(where: EventFilter = EventFilter(), **options: Any) -> Any:
        if where.types:  # a long search: it checks for cancellation as a scan does
            searches.append(current_job())
            try:
                while not gate.wait(0.005):
                    checkpoint()
            except Cancelled:
                stopped.append("cancelled")
                raise
        return read(where, **options)

    def recording_reopen(store: Any, *, read_only: bool) -> Any:
        cancelled_before_reopen.append(all(job is not None and job.cancelled for job in searches))
        return reopen_store(store, read_only=read_only)

    monkeypatch.setattr(workspace.events, "read", slow_read)
    monkeypatch.setattr("core.services.handle.reopen_store", recording_reopen)
    log = window.event_log
    qtbot.keyClicks(log.filter_edit("types"), "OrderPlaced")
    qtbot.keyClick(log.filter_edit("types"), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(searches) == 1, timeout=SIGNAL_TIMEOUT_MS)  # running

    with qtbot.waitSignal(window.writable_changed, timeout=SIGNAL_TIMEOUT_MS):
        window.set_writable(True)

    # Cancelled before the store was reopened under it, then asked again.
    assert cancelled_before_reopen == [True]
    qtbot.waitUntil(lambda: stopped == ["cancelled"], timeout=SIGNAL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(searches) == 2, timeout=SIGNAL_TIMEOUT_MS)
    with qtbot.waitSignal(log.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        gate.set()
    assert log.model.rowCount() == 3
    assert "cancelled" not in log.status_label.text()


def test_a_window_over_a_writable_store_shows_the_banner_from_the_start(
    start: Any, tmp_path: Path
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location, writable=True).window

    assert window.banner.isVisible()
    assert window.writable_action.isChecked()


# -- the search index -----------------------------------------------------------------------


def test_a_writable_window_keeps_the_search_index_caught_up(
    qtbot: QtBot, start: Any, tmp_path: Path
) -> None:
    location = make_store(tmp_path / "a.db", events=30)
    assert indexed_of(location) == 0
    window = start(location, writable=True, index_interval_ms=100, rate_interval_ms=100).window

    qtbot.waitUntil(lambda: indexed_of(location) == head_of(location), timeout=SIGNAL_TIMEOUT_MS)
    with Workspace.open(location, read_only=False) as writer:
        for number in range(20):
            writer.writing.append(f"order-y{number}", "OrderPlaced", {"n": number})
    qtbot.waitUntil(
        lambda: indexed_of(location) == head_of(location) == 50, timeout=SIGNAL_TIMEOUT_MS
    )
    qtbot.waitUntil(lambda: not window.index_label.isVisible(), timeout=SIGNAL_TIMEOUT_MS)


def test_a_read_only_window_never_indexes_and_shows_how_far_behind_the_index_is(
    qtbot: QtBot, start: Any, tmp_path: Path
) -> None:
    location = make_store(tmp_path / "a.db", events=30)
    window = start(location, index_interval_ms=50, rate_interval_ms=100).window

    for _ in range(3):  # several index intervals go by
        with qtbot.waitSignal(window.events_per_second_sampled, timeout=SIGNAL_TIMEOUT_MS):
            pass
    assert indexed_of(location) == 0
    assert window.index_label.isVisible()
    assert window.index_label.text() == "index: 30 behind"
    assert "eventscope index" in window.index_label.toolTip()


# -- events per second ----------------------------------------------------------------------


def test_events_per_second_reads_the_appends_made_by_another_connection(
    qtbot: QtBot, start: Any, tmp_path: Path
) -> None:
    location = make_store(tmp_path / "a.db")
    window = start(location, rate_interval_ms=300).window
    assert window.rate_label.text() == "— ev/s"

    with qtbot.waitSignal(window.events_per_second_sampled, timeout=SIGNAL_TIMEOUT_MS) as idle:
        pass
    assert idle.args == [0.0]
    assert window.rate_label.text() == "0 ev/s"

    with Workspace.open(location, read_only=False) as writer:
        for number in range(60):
            writer.writing.append(f"order-x{number}", "OrderPlaced", {"n": number})
    with qtbot.waitSignal(window.events_per_second_sampled, timeout=SIGNAL_TIMEOUT_MS) as busy:
        pass
    # 60 events over one interval of about 0.3 s (longer on a loaded machine).
    assert 10 < busy.args[0] <= 60 / 0.25
    assert window.rate_label.text().endswith(" ev/s")
    assert window.rate_label.text() != "0 ev/s"
    assert window.head_label.text() == "head 63"


# -- opening stores -------------------------------------------------------------------------


def test_opening_a_store_from_the_dialog_switches_the_window_and_remembers_it(
    qtbot: QtBot, start: Any, tmp_path: Path, settings: QSettings
) -> None:
    first = make_store(tmp_path / "first.db")
    second = make_store(tmp_path / "second.db", events=7)
    session = start(first)
    old_window = session.window
    old_window.resize(700, 520)
    old_window.activateWindow()
    qtbot.waitUntil(old_window.isActiveWindow, timeout=SIGNAL_TIMEOUT_MS)

    qtbot.keyClick(old_window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    dialog = old_window.open_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.location_edit, second)
    with qtbot.waitSignal(session.window_replaced, timeout=SIGNAL_TIMEOUT_MS) as replaced:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)

    window: MainWindow = replaced.args[0]
    assert session.window is window
    assert window.workspace.location == second
    assert window.workspace.read_only
    assert window.isVisible()
    assert not shiboken6.isValid(old_window)  # closed and deleted
    assert window.windowTitle() == f"Eventscope — {second}"
    assert (window.width(), window.height()) == (700, 520)
    qtbot.waitUntil(lambda: window.head_label.text() == "head 7", timeout=SIGNAL_TIMEOUT_MS)
    assert recent_stores(settings)[:2] == [second, first]


def test_a_store_that_does_not_open_leaves_the_error_in_the_dialog_and_the_old_store_open(
    qtbot: QtBot, start: Any, tmp_path: Path
) -> None:
    first = make_store(tmp_path / "first.db")
    session = start(first)
    window = session.window
    dialog = window.show_open_dialog()
    qtbot.keyClicks(dialog.location_edit, str(tmp_path / "missing.db"))

    with qtbot.waitSignal(dialog.open_failed, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)

    assert dialog.isVisible()
    assert dialog.error_label.isVisible()
    assert "missing.db" in dialog.error_label.text()
    assert "\n" not in dialog.error_label.text()
    assert session.window is window
    assert window.workspace.events.head_position() == 3  # still open and answering
    assert not (tmp_path / "missing.db").exists()


def test_recent_stores_persist_across_windows_and_choosing_one_opens_it(
    qtbot: QtBot, start: Any, tmp_path: Path, settings: QSettings
) -> None:
    stores = [make_store(tmp_path / f"s{number}.db", events=1) for number in range(10)]
    for location in stores:
        start(location).close()
    assert recent_stores(settings) == stores[::-1][:MAX_RECENT_STORES]

    session = start(stores[-1])
    window = session.window
    window.recent_menu.aboutToShow.emit()
    shown = [action.text() for action in window.recent_menu.actions()]
    assert shown == stores[::-1][:MAX_RECENT_STORES]
    with qtbot.waitSignal(session.window_replaced, timeout=SIGNAL_TIMEOUT_MS) as replaced:
        window.recent_menu.actions()[3].trigger()
    assert replaced.args[0].workspace.location == stores[-4]
    assert recent_stores(settings)[0] == stores[-4]


def test_recent_stores_never_hold_a_password(
    qtbot: QtBot, runner_workspace: Any, settings: QSettings, tmp_path: Path
) -> None:
    location = make_store(tmp_path / "a.db")
    workspace, runner = runner_workspace(location)
    # A store whose location is a URL with a password, as a PostgreSQL one would be.
    secret_url = "postgresql://ada:s3cret@db.example/events"
    workspace.handle.store.location = secret_url
    window = MainWindow(workspace, runner, settings=settings)
    qtbot.addWidget(window)

    saved = recent_stores(settings)
    assert saved == ["postgresql://ada:***@db.example/events"]
    assert "s3cret" not in Path(settings.fileName()).read_text()
    window.recent_menu.aboutToShow.emit()
    assert "s3cret" not in " ".join(action.text() for action in window.recent_menu.actions())
    workspace.handle.store.location = location


@pytest.fixture
def runner_workspace(qapp: Any) -> Iterator[Any]:
    made: list[tuple[Workspace, TaskRunner]] = []

    def make(location: str) -> tuple[Workspace, TaskRunner]:
        pair = (Workspace.open(location), TaskRunner())
        made.append(pair)
        return pair

    yield make
    for workspace, runner in made:
        assert runner.shutdown()
        workspace.close()


# -- find and theme -------------------------------------------------------------------------


def test_ctrl_f_puts_the_cursor_in_the_payload_search(
    qtbot: QtBot, start: Any, tmp_path: Path
) -> None:
    window = start(make_store(tmp_path / "a.db")).window
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=SIGNAL_TIMEOUT_MS)
    window.streams_panel.setFocus()

    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)

    search = window.event_log.filter_edit("text")
    qtbot.waitUntil(search.hasFocus, timeout=SIGNAL_TIMEOUT_MS)
    assert QApplication.focusWidget() is search


def test_switching_the_theme_recolours_the_timeline_at_once(
    qtbot: QtBot, start: Any, tmp_path: Path
) -> None:
    window = start(make_store(tmp_path / "a.db")).window
    plot = window.timeline.plot_widget
    axis = plot.getPlotItem().getAxis("bottom")
    assert plot.backgroundBrush().color().lightness() > 200

    window.theme_actions["dark"].trigger()
    assert plot.backgroundBrush().color() == window.palette().color(QPalette.ColorRole.Base)
    assert plot.backgroundBrush().color().lightness() < 60
    assert axis.textPen().color().lightness() > 180

    window.theme_actions["light"].trigger()
    assert plot.backgroundBrush().color().lightness() > 200
    assert axis.textPen().color().lightness() < 100


def test_the_dark_theme_applies_and_is_there_next_time(
    qtbot: QtBot, start: Any, tmp_path: Path
) -> None:
    location = make_store(tmp_path / "a.db")
    first = start(location)
    light_base = first.window.palette().color(QPalette.ColorRole.Base)
    assert first.window.theme == "light"

    first.window.theme_actions["dark"].trigger()
    dark = first.window.palette()
    assert dark.color(QPalette.ColorRole.Base).lightness() < 60
    assert dark.color(QPalette.ColorRole.Text).lightness() > 180
    assert first.window.event_log.palette().color(QPalette.ColorRole.Base) == dark.color(
        QPalette.ColorRole.Base
    )
    first.close()

    second = start(location).window
    assert second.theme == "dark"
    assert second.theme_actions["dark"].isChecked()
    assert second.timeline.palette().color(QPalette.ColorRole.Base).lightness() < 60
    second.theme_actions["light"].trigger()
    assert second.palette().color(QPalette.ColorRole.Base) == light_base
