"""The time-travel panel over a real SQLite demo store and the shipped plugins."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot

from console.panels.timetravel import TimeTravelPanel
from console.workers import TaskRunner
from core.events import format_time, to_micros
from core.jobs import checkpoint
from core.services.timetravel import ReadModelAt
from core.timetravel.diff import summarize_diff
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

TIMEOUT_MS = 10_000
HISTORY = "order_summary:1"
FOLDED = "order_summary:2"


@pytest.fixture
def workspace(tmp_path: Path, workspaces: list[Workspace]) -> Workspace:
    """60 demo orders (240 events); order_summary:1 run with history, :2 never run."""
    ws = Workspace.open(tmp_path / "store.db", read_only=False)
    workspaces.append(ws)
    ws.writing.write_demo("orders", orders=60, seed=7)
    ws.projections.run(HISTORY)
    return ws


def open_panel(qtbot: QtBot, workspace: Workspace, runner: TaskRunner) -> TimeTravelPanel:
    """A panel shown at 1100x650, once it has shown the head."""
    panel = TimeTravelPanel(workspace.timetravel, workspace.events, workspace.projections, runner)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.cursor_moved, timeout=TIMEOUT_MS):
        panel.resize(1100, 650)
        panel.show()
    return panel


def pick(qtbot: QtBot, panel: TimeTravelPanel, model: str, position: int) -> None:
    """Pick a read model, then move the cursor to a position, as a user would."""
    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS):
        panel.model_combo.setCurrentIndex(panel.model_combo.findText(model))
    show(qtbot, panel, position)


def show(qtbot: QtBot, panel: TimeTravelPanel, position: int) -> None:
    with qtbot.waitSignal(
        panel.cursor_moved, timeout=TIMEOUT_MS, check_params_cb=lambda p: p == position
    ):
        panel.show_position(position)


def documents_at(workspace: Workspace, reference: str) -> dict[str, dict[str, Any]]:
    tt = workspace.timetravel
    return dict(tt.iter_documents(tt.locate(reference)))


def test_documents_at_the_cursor_are_the_read_model_there(
    qtbot: QtBot, qtmodeltester: Any, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    assert panel.cursor_position == workspace.events.head_position() == 240
    assert "Pick a read model" in panel.empty_label.text()

    pick(qtbot, panel, HISTORY, 150)

    model = panel.documents_model
    assert model.documents() == documents_at(workspace, f"{HISTORY}@150")
    assert model.keys() == sorted(model.keys())
    assert model.headerData(0, Qt.Orientation.Horizontal) == "key"
    assert "status" in model.fields
    assert "from history" in panel.status_label.text()
    qtmodeltester.check(model)


def test_right_and_left_step_one_event_and_tint_what_it_changed(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    pick(qtbot, panel, HISTORY, 150)
    panel.table.setFocus()

    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClick(panel.table, Qt.Key.Key_Right)

    assert shown.args == [151]
    assert panel.cursor_position == 151
    event = workspace.events.event_at(151)
    assert event is not None
    label = panel.event_label.text()
    assert f"#151 · {event.stream_id}@{event.version} · {event.type}" in label
    effect = workspace.timetravel.step(f"{HISTORY}@151")
    assert effect.changes
    assert panel.documents_model.changed_keys() == [change.key for change in effect.changes]
    text = panel.effect_view.toPlainText()
    for change in effect.changes:
        for path in change.paths:
            assert f"{change.key}  {path}: " in text
    assert panel.documents_model.documents() == documents_at(workspace, f"{HISTORY}@151")

    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClick(panel.table, Qt.Key.Key_Left)
    assert shown.args == [150]
    assert panel.documents_model.documents() == documents_at(workspace, f"{HISTORY}@150")

    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.mouseClick(panel.step_back_button, Qt.MouseButton.LeftButton)
    assert shown.args == [149]


def test_dragging_the_cursor_shows_the_point_it_was_dropped_at(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    pick(qtbot, panel, HISTORY, 200)
    first, second = workspace.events.event_at(100), workspace.events.event_at(101)
    assert first is not None and second is not None
    between = (to_micros(first.recorded_at) + to_micros(second.recorded_at)) / 2

    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        panel.cursor_line.setValue(between / 1_000_000)
        panel.cursor_line.sigPositionChangeFinished.emit(panel.cursor_line)

    assert shown.args == [100]
    assert panel.documents_model.documents() == documents_at(workspace, f"{HISTORY}@100")
    # The cursor snaps to the event shown.
    assert round(panel.cursor_line.value() * 1_000_000) == to_micros(first.recorded_at)


def test_a_drag_loads_once_it_pauses(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    pick(qtbot, panel, HISTORY, 200)
    moved: list[int] = []
    panel.cursor_moved.connect(moved.append)
    times = [workspace.events.event_at(p) for p in (30, 40, 50)]

    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        for event in times:
            assert event is not None
            panel.cursor_line.setValue(to_micros(event.recorded_at) / 1_000_000 + 1e-7)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=TIMEOUT_MS)

    assert shown.args == [50]
    assert moved == [50]


def test_jump_takes_a_position_or_a_time_and_refuses_the_rest(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    pick(qtbot, panel, HISTORY, 200)

    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClicks(panel.jump_edit, "120")
        qtbot.keyClick(panel.jump_edit, Qt.Key.Key_Return)
    assert shown.args == [120]

    event = workspace.events.event_at(80)
    assert event is not None
    panel.jump_edit.clear()
    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClicks(panel.jump_edit, format_time(event.recorded_at))
        qtbot.keyClick(panel.jump_edit, Qt.Key.Key_Return)
    assert shown.args == [80]
    assert panel.documents_model.documents() == documents_at(workspace, f"{HISTORY}@80")

    for bad in ("next tuesday", "2026-03-01T10:00:00", "999999"):
        panel.jump_edit.clear()
        with qtbot.assertNotEmitted(panel.cursor_moved, wait=50):
            qtbot.keyClicks(panel.jump_edit, bad)
            qtbot.keyClick(panel.jump_edit, Qt.Key.Key_Return)
        assert panel.jump_error, bad
        assert panel.cursor_position == 80

    panel.jump_edit.clear()
    with qtbot.waitSignal(panel.cursor_moved, timeout=TIMEOUT_MS):
        qtbot.keyClicks(panel.jump_edit, "90")
        qtbot.keyClick(panel.jump_edit, Qt.Key.Key_Return)
    assert panel.jump_error == ""


def test_a_version_without_history_is_folded_with_progress(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    shown_progress: list[int] = []
    panel.progress_bar.valueChanged.connect(shown_progress.append)

    pick(qtbot, panel, FOLDED, 150)

    assert workspace.timetravel.locate(f"{FOLDED}@150").from_history is False
    assert "folded from the log" in panel.status_label.text()
    assert shown_progress and shown_progress[-1] == panel.progress_bar.maximum() == 150
    assert not panel.progress_bar.isVisibleTo(panel)
    folded = panel.documents_model.documents()
    workspace.projections.run(FOLDED)  # now with history: the same documents
    assert workspace.timetravel.locate(f"{FOLDED}@150").from_history
    assert folded == documents_at(workspace, f"{FOLDED}@150")
    assert len(folded) > 0


def test_cancel_stops_a_fold(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    gate = threading.Event()
    stopped = threading.Event()
    plain = workspace.timetravel.iter_documents

    def gated(
        at: ReadModelAt, *, after_key: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            while not gate.wait(0.005):
                checkpoint()  # raises Cancelled once the panel's task is cancelled
        except BaseException:
            stopped.set()
            raise
        yield from plain(at, after_key=after_key)

    monkeypatch.setattr(workspace.timetravel, "iter_documents", gated)
    panel.model_combo.setCurrentIndex(panel.model_combo.findText(FOLDED))
    qtbot.waitUntil(lambda: panel.progress_bar.isVisibleTo(panel), timeout=TIMEOUT_MS)
    assert panel.loading

    with qtbot.assertNotEmitted(panel.documents_loaded, wait=50):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not panel.loading, timeout=TIMEOUT_MS)

    assert stopped.wait(TIMEOUT_MS / 1000)
    assert "cancelled" in panel.status_label.text()
    assert not panel.progress_bar.isVisibleTo(panel)
    assert panel.cursor_position == 240
    gate.set()


def test_a_stream_shows_its_events_up_to_the_cursor_and_its_state(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    show(qtbot, panel, 151)
    event = workspace.events.event_at(151)
    assert event is not None

    with qtbot.waitSignal(panel.cursor_moved, timeout=TIMEOUT_MS):
        qtbot.keyClicks(panel.stream_edit, event.stream_id)
        qtbot.keyClick(panel.stream_edit, Qt.Key.Key_Return)

    listed = [
        panel.stream_events_view.item(row).text() for row in range(panel.stream_events_view.count())
    ]
    stored = list(workspace.events.read_stream(event.stream_id, limit=event.version + 1))
    assert len(listed) == len(stored) == event.version + 1
    assert all(
        f"#{e.position} · {e.stream_id}@{e.version}" in line
        for e, line in zip(stored, listed, strict=True)
    )
    state = workspace.timetravel.stream_state(event.stream_id, event.version).to_dict()
    shown = json.loads(panel.stream_state_view.toPlainText())
    assert shown == json.loads(json.dumps(state, default=str))
    assert shown["version"] == event.version


def test_only_the_last_point_asked_for_is_shown(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    pick(qtbot, panel, HISTORY, 200)
    moved: list[int] = []
    panel.cursor_moved.connect(moved.append)

    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS) as shown:
        for position in (50, 60, 70):
            panel.show_position(position)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=TIMEOUT_MS)

    assert shown.args == [70]
    assert moved == [70]
    assert panel.documents_model.documents() == documents_at(workspace, f"{HISTORY}@70")


def test_changes_between_a_and_b_are_summarised(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    pick(qtbot, panel, HISTORY, 150)
    with qtbot.waitSignal(panel.step_shown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(panel.set_b_button, Qt.MouseButton.LeftButton)
    assert panel.b_position == 150
    assert panel.chart.b_line.isVisible()

    show(qtbot, panel, 100)

    summary = summarize_diff(workspace.timetravel.diff(f"{HISTORY}@100", f"{HISTORY}@150"))
    text = panel.diff_label.text()
    assert f"#100 → #150: {summary.added} added, {summary.removed} removed" in text
    assert f"{summary.changed} changed" in text
    assert f"{summary.unchanged} unchanged" in text


def test_double_click_on_a_document_asks_for_its_lineage(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    pick(qtbot, panel, HISTORY, 150)
    index = panel.documents_model.index(2, 1)
    where = panel.table.visualRect(index).center()

    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    with qtbot.waitSignal(panel.lineage_requested, timeout=TIMEOUT_MS) as asked:
        qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=where)

    assert asked.args == [f"{HISTORY}@150", panel.documents_model.keys()[2]]


def test_documents_load_a_page_at_a_time_as_the_table_scrolls(
    qtbot: QtBot, tmp_path: Path, workspaces: list[Workspace], runner: TaskRunner
) -> None:
    ws = Workspace.open(tmp_path / "big.db", read_only=False)
    workspaces.append(ws)
    ws.writing.write_demo("orders", orders=260, seed=3)
    ws.projections.run(HISTORY)
    panel = open_panel(qtbot, ws, runner)
    pick(qtbot, panel, HISTORY, ws.events.head_position())
    everything = documents_at(ws, HISTORY)
    assert len(everything) > 200
    model = panel.documents_model
    assert model.rowCount() == 200 and model.has_more

    with qtbot.waitSignal(
        panel.documents_loaded, timeout=TIMEOUT_MS, check_params_cb=lambda n: n == len(everything)
    ):
        panel.table.scrollToBottom()

    assert model.documents() == everything
    assert model.keys() == sorted(everything)
    assert not model.canFetchMore(QModelIndex())


def test_without_projections_the_panel_says_what_to_do(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace.projections, "references", list)
    panel = open_panel(qtbot, workspace, runner)
    assert "No projections loaded" in panel.empty_label.text()
    assert "docs/plugins.md" in panel.empty_label.text()
