"""The lineage view over a real SQLite store and the shipped order plugins."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from console.panels.lineage import LineageView
from console.workers import TaskRunner
from core.services.timetravel import TimeTravel
from core.timetravel.lineage import DocumentChange
from core.timetravel.reference import ReadModelRef
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 10_000
V2 = "order_summary:2"


@pytest.fixture
def shop(tmp_path: Path, workspaces: list[Workspace]) -> Workspace:
    """80 demo orders; ``order_summary:2`` run to the head."""
    workspace = Workspace.open(str(tmp_path / "shop.db"), read_only=False)
    workspaces.append(workspace)
    workspace.writing.write_demo("orders", orders=80, seed=7)
    workspace.projections.run(V2)
    return workspace


def open_view(qtbot: QtBot, timetravel: TimeTravel, runner: TaskRunner) -> LineageView:
    view = LineageView(timetravel, runner)
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    qtbot.waitExposed(view)
    return view


def busy_order(shop: Workspace) -> tuple[str, list[DocumentChange]]:
    """An order changed by at least three events, and its lineage."""
    for key in shop.timetravel.replay(V2).documents:
        changes = shop.timetravel.lineage(V2, key)
        if len(changes) >= 3:
            return key, changes
    raise AssertionError("the demo has no order with three changes")


def cell(view: LineageView, row: int, column: int) -> str:
    return str(view.model.data(view.model.index(row, column)))


def test_the_lineage_of_an_order_lists_every_change_oldest_first(
    qtbot: QtBot, qtmodeltester: Any, shop: Workspace, runner: TaskRunner
) -> None:
    key, changes = busy_order(shop)
    view = open_view(qtbot, shop.timetravel, runner)

    with qtbot.waitSignal(view.lineage_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        view.show_document(V2, key)

    assert loaded.args == [len(changes)]
    assert view.model.positions() == [change.position for change in changes]
    assert view.title_label.text() == f"lineage of {key} in {V2}"
    first, last = changes[0], changes[-1]
    assert first.event is not None and last.event is not None
    assert cell(view, 0, 2) == f"{first.event.stream_id}@{first.event.version}"
    assert cell(view, 0, 3) == first.event.type == "OrderPlaced"
    assert cell(view, 0, 4) == "added"
    assert cell(view, 0, 1) == first.event.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
    row = len(changes) - 1
    assert cell(view, row, 5) == ", ".join(last.paths)
    tooltip = str(view.model.data(view.model.index(row, 5), Qt.ItemDataRole.ToolTipRole))
    path = last.paths[0]
    assert last.before is not None and last.after is not None
    assert f"{path}: " in tooltip and " → " in tooltip
    assert str(last.after[path]) in tooltip or f'"{last.after[path]}"' in tooltip
    qtmodeltester.check(view.model)


def test_lineage_at_a_point_stops_there(qtbot: QtBot, shop: Workspace, runner: TaskRunner) -> None:
    key, changes = busy_order(shop)
    point = changes[1].position
    view = open_view(qtbot, shop.timetravel, runner)
    with qtbot.waitSignal(view.lineage_loaded, timeout=SIGNAL_TIMEOUT_MS):
        view.show_document(f"{V2}@{point}", key)
    expected = [c.position for c in shop.timetravel.lineage(f"{V2}@{point}", key)]
    assert view.model.positions() == expected == [c.position for c in changes[:2]]


def test_clicking_a_row_selects_its_event(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    key, changes = busy_order(shop)
    view = open_view(qtbot, shop.timetravel, runner)
    with qtbot.waitSignal(view.lineage_loaded, timeout=SIGNAL_TIMEOUT_MS):
        view.show_document(V2, key)

    for row in (1, 0):
        rect = view.view.visualRect(view.model.index(row, 0))
        with qtbot.waitSignal(view.event_selected) as selected:
            qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert selected.args == [changes[row].position]


def test_lookups_run_off_the_gui_thread_and_the_latest_document_wins(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    key, changes = busy_order(shop)
    release = threading.Event()
    threads: list[bool] = []

    class Held(TimeTravel):
        def lineage(self, reference: ReadModelRef | str, key: str) -> list[DocumentChange]:
            threads.append(threading.current_thread() is threading.main_thread())
            if key == "00001":
                release.wait(5)
            return super().lineage(reference, key)

    view = open_view(qtbot, Held(shop.handle, shop.plugins), runner)
    loaded: list[int] = []
    view.lineage_loaded.connect(loaded.append)
    view.show_document(V2, "00001")
    with qtbot.waitSignal(view.lineage_loaded, timeout=SIGNAL_TIMEOUT_MS):
        view.show_document(V2, key)
    release.set()
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)

    assert loaded == [len(changes)]  # the first lookup, replaced, never shows
    assert threads and not any(threads)  # (it may be cancelled before it starts)
    assert view.title_label.text() == f"lineage of {key} in {V2}"


def test_a_key_never_written_and_a_bad_reference_say_so(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    view = open_view(qtbot, shop.timetravel, runner)
    with qtbot.waitSignal(view.lineage_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        view.show_document(V2, "no-such-order")
    assert loaded.args == [0] and "no event changed no-such-order" in view.status_label.text()

    with qtbot.waitSignal(view.lineage_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        view.show_document("order_summary:9", "00001")
    assert "no version 9" in failed.args[0]
    assert view.status_label.text().startswith("could not load the lineage:")
    assert view.model.rowCount() == 0
