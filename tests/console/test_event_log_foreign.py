"""The event log and the timeline over another tool's store whose positions have a gap
(issue 17, point 2): Message DB, installed by its own script, a write rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from console.panels.event_log import EventLogPanel
from console.workers import TaskRunner
from core.store import EventFilter
from core.workspace import Workspace
from tests.core.sources.messagedb import connect, message_db_database, source_url, write_message

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 10_000
#: Messages before and after the rolled-back one; pages of 4 make the gap fall inside one.
BEFORE, AFTER, PAGE = 6, 7, 4


@dataclass
class Gappy:
    url: str
    positions: list[int]  # global positions, in order
    gap: int


@pytest.fixture(scope="module")
def gappy() -> Iterator[Gappy]:
    with message_db_database() as (server, database):
        with connect(server, database, autocommit=True) as conn:
            for n in range(BEFORE):
                write_message(conn, f"thing-{n % 3}", "Made", f'{{"n": {n}}}')
            with conn.transaction(force_rollback=True):
                write_message(conn, "thing-9", "Lost", "{}")
            for n in range(BEFORE, BEFORE + AFTER):
                write_message(conn, f"thing-{n % 3}", "Made", f'{{"n": {n}}}')
            rows = conn.execute(
                "SELECT global_position FROM message_store.messages ORDER BY 1"
            ).fetchall()
        positions = [row[0] for row in rows]
        (gap,) = set(range(1, positions[-1] + 1)) - set(positions)
        yield Gappy(source_url(server, database), positions, gap)


@pytest.fixture
def workspace(gappy: Gappy, workspaces: list[Workspace]) -> Workspace:
    opened = Workspace.open(gappy.url, load_plugins=False)
    workspaces.append(opened)
    return opened


def test_the_whole_log_is_every_event_in_order_across_the_gap(
    qtbot: QtBot, gappy: Gappy, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = EventLogPanel(workspace.events, runner, live_tail=False, page_size=PAGE)
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.show()
    model = panel.model
    assert not model.windowed  # rows are not positions here

    qtbot.waitUntil(lambda: model.exhausted, timeout=SIGNAL_TIMEOUT_MS)  # the view pulls pages
    shown = [model.event_at(row) for row in range(model.rowCount())]
    assert [event.position for event in shown if event] == gappy.positions
    assert [event.data["n"] for event in shown if event] == list(range(BEFORE + AFTER))

    panel.jump_to_position(gappy.gap)  # the first event at or after it
    qtbot.waitUntil(
        lambda: (
            panel.current_event() is not None and panel.current_event().position == gappy.gap + 1
        ),  # type: ignore[union-attr]
        timeout=SIGNAL_TIMEOUT_MS,
    )


def test_the_timeline_counts_events_not_positions(gappy: Gappy, workspace: Workspace) -> None:
    span = workspace.events.time_span()
    assert span is not None
    first, last = span

    counts = workspace.events.timeline(first, last + timedelta(microseconds=1), 3)

    assert sum(counts) == BEFORE + AFTER == workspace.events.count(EventFilter())
    assert workspace.events.head_position() == BEFORE + AFTER + 1


def test_the_status_bar_says_searches_scan_there(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, windows: list[Any]
) -> None:
    from console.main_window import MainWindow

    window = MainWindow(workspace, runner)
    windows.append(window)
    window.show()

    label = window.index_label
    qtbot.waitUntil(lambda: label.text() == "search: by scan", timeout=SIGNAL_TIMEOUT_MS)
    assert label.isVisible()
    assert not window.in_app_projections.running  # another tool's store: monitored only


def test_the_writable_switch_says_plainly_that_the_source_is_only_read(
    qtbot: QtBot,
    workspace: Workspace,
    runner: TaskRunner,
    windows: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import console.main_window as main_window_module
    from console.main_window import MainWindow

    asked: list[str] = []
    monkeypatch.setattr(
        main_window_module, "confirm_writable", lambda _parent, where: asked.append(where)
    )
    window = MainWindow(workspace, runner)
    windows.append(window)
    window.show()

    with qtbot.waitSignal(window.writable_switch_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        window.writable_action.trigger()

    assert "Message DB's store: Eventscope only reads it" in failed.args[0]
    assert asked == []  # not asked to confirm what cannot happen
    box = window.findChild(QMessageBox)
    assert box is not None and "only reads it" in box.text()
    box.close()
    assert workspace.read_only and not window.writable_action.isChecked()


def test_a_payload_search_over_it_scans_with_progress(
    qtbot: QtBot, gappy: Gappy, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = EventLogPanel(workspace.events, runner, live_tail=False, page_size=PAGE)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.show()
    reports: list[tuple[int, int]] = []
    panel.model.search_progressed.connect(lambda done, total: reports.append((done, total)))

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.filter_edit("text").setText("12")
        qtbot.keyClick(panel.filter_edit("text"), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.model.exhausted, timeout=SIGNAL_TIMEOUT_MS)

    found = [panel.model.event_at(row) for row in range(panel.model.rowCount())]
    assert [event.data["n"] for event in found if event] == [12]
    assert reports and {total for _, total in reports} == {gappy.positions[-1]}
    assert max(done for done, _ in reports) == gappy.positions[-1]


def test_time_travel_over_the_gap_shows_the_event_before_and_steps_forward_past_it(
    gappy: Gappy, workspace: Workspace
) -> None:
    from console.panels.timetravel.loads import load_view

    at_gap = load_view(workspace.timetravel, workspace.events, gappy.gap)
    stepped = load_view(workspace.timetravel, workspace.events, gappy.gap, forward=True)
    back = load_view(workspace.timetravel, workspace.events, gappy.gap + 1)

    assert at_gap.event is not None and at_gap.position == at_gap.event.position == gappy.gap - 1
    assert stepped.event is not None and stepped.position == gappy.gap + 1
    assert back.event is not None and back.position == gappy.gap + 1
