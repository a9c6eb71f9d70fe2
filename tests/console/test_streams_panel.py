"""The streams browser over a real SQLite store: rows, filtering, paging, selection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from console.panels.streams import PAGE_SIZE, StreamsPanel
from console.workers import TaskRunner
from core.errors import Cancelled, StoreError
from core.events import NewEvent, StreamInfo, to_micros
from core.jobs import checkpoint
from core.store import ImportRecord, SqlEventStore
from core.store.port import prepare_events
from core.workspace import Workspace
from tests.console.conftest import route_events

# Qt's offscreen platform warns whenever a window's size constraints change; that is
# the test platform talking, not the panel.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

BASE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SIGNAL_TIMEOUT_MS = 5_000


class RecordingWorkspace(Workspace):
    """A real workspace that records each ``streams`` query and the thread it ran on.

    A query for ``gated_prefix`` waits for ``gate`` first, so a test can hold it in flight;
    with ``gate_checks_cancel`` it checks for cancellation while it waits, as a store's
    scan does between pages, and records the prefix in ``cancelled`` when it stops.
    """

    def __init__(self, store: SqlEventStore) -> None:
        super().__init__(store)
        self.calls: list[dict[str, Any]] = []
        self.on_main_thread: list[bool] = []
        self.gated_prefix: str | None = None
        self.gate = threading.Event()
        self.gate_checks_cancel = False
        self.cancelled: list[str | None] = []
        self.fail_with: Exception | None = None
        self.plain = route_events(self, "streams")

    def streams(self, **query: Any) -> Iterator[StreamInfo]:
        self.calls.append(query)
        self.on_main_thread.append(threading.current_thread() is threading.main_thread())
        if self.fail_with is not None:
            raise self.fail_with
        if self.gated_prefix is not None and query.get("prefix") == self.gated_prefix:
            if self.gate_checks_cancel:
                self._wait_cancellably(query.get("prefix"))
            else:
                self.gate.wait(SIGNAL_TIMEOUT_MS / 1000)
        return self.plain.streams(**query)

    def _wait_cancellably(self, prefix: str | None) -> None:
        deadline = time.monotonic() + SIGNAL_TIMEOUT_MS / 1000
        try:
            while not self.gate.wait(0.005) and time.monotonic() < deadline:
                checkpoint()
        except Cancelled:
            self.cancelled.append(prefix)
            raise


def build_store(path: Path, streams: list[tuple[str, int]]) -> None:
    """Write ``count`` events to each stream, one second apart from BASE + 1 s."""
    records = []
    line = 0
    for stream_id, count in streams:
        for _ in range(count):
            line += 1
            (event,) = prepare_events([NewEvent("Happened", {"n": line})])
            moment = to_micros(BASE + timedelta(seconds=line))
            records.append(ImportRecord(line, stream_id, event, None, moment))
    with SqlEventStore.open(path) as store:
        store.import_records(records)


SMALL = [
    ("order-1", 3),
    ("customer-1", 2),
    ("order-10", 1),
    ("order-2", 4),
    ("order-11", 2),
    ("orderly-1", 1),
    ("customer-2", 1),
]


@pytest.fixture
def runner(qapp: Any, workspaces: list[RecordingWorkspace]) -> Iterator[TaskRunner]:
    # Depends on `workspaces`, so it shuts down before the stores close.
    runner = TaskRunner()
    yield runner
    for workspace in workspaces:
        workspace.gate.set()
    assert runner.shutdown()


@pytest.fixture
def open_workspace(workspaces: list[RecordingWorkspace]) -> Any:
    def open_(path: Path) -> RecordingWorkspace:
        workspace = RecordingWorkspace(SqlEventStore.open(path, read_only=True))
        workspaces.append(workspace)
        return workspace

    return open_


def show_panel(qtbot: QtBot, workspace: Workspace, runner: TaskRunner) -> StreamsPanel:
    panel = StreamsPanel(workspace.events, runner)
    qtbot.addWidget(panel)
    panel.resize(700, 500)
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.show()
    return panel


def scroll_to_the_end(qtbot: QtBot, panel: StreamsPanel) -> None:
    """Ctrl+End, as a user would: the current row moves to the last row loaded."""
    view = panel.view
    if not view.currentIndex().isValid():
        view.setCurrentIndex(view.model().index(0, 0))
    qtbot.keyClick(view, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)


def shown_rows(panel: StreamsPanel) -> list[list[str]]:
    model = panel.view.model()
    return [
        [model.index(row, column).data() for column in range(model.columnCount())]
        for row in range(model.rowCount())
    ]


def shown_ids(panel: StreamsPanel) -> list[str]:
    return [row[0] for row in shown_rows(panel)]


def test_the_panel_shows_every_stream_with_category_count_and_last_time(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)

    # Streams sort by id; times are the last event's, in UTC (events are 1 s apart).
    assert shown_rows(panel) == [
        ["customer-1", "customer", "2", "2026-03-01 10:00:05"],
        ["customer-2", "customer", "1", "2026-03-01 10:00:14"],
        ["order-1", "order", "3", "2026-03-01 10:00:03"],
        ["order-10", "order", "1", "2026-03-01 10:00:06"],
        ["order-11", "order", "2", "2026-03-01 10:00:12"],
        ["order-2", "order", "4", "2026-03-01 10:00:10"],
        ["orderly-1", "orderly", "1", "2026-03-01 10:00:13"],
    ]
    header = panel.view.model().headerData
    assert [header(c, Qt.Orientation.Horizontal) for c in range(4)] == [
        "stream",
        "category",
        "events",
        "last event (UTC)",
    ]
    assert panel.view.horizontalHeader().stretchLastSection()
    assert "7 streams" in panel.findChild(QLabel, "streamsStatus").text()


def test_typing_a_prefix_narrows_the_rows_to_exactly_the_matching_streams(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClicks(panel.filter_edit, "order-1")
    assert shown_ids(panel) == ["order-1", "order-10", "order-11"]
    # Debounced: one query for what was typed, none for "o", "or", "ord", …
    assert [call["prefix"] for call in workspace.calls] == [None, "order-1"]

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClick(panel.filter_edit, Qt.Key.Key_Backspace)
        qtbot.keyClick(panel.filter_edit, Qt.Key.Key_Backspace)
    assert shown_ids(panel) == ["order-1", "order-10", "order-11", "order-2", "orderly-1"]

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.filter_edit.clear()
    assert len(shown_ids(panel)) == len(SMALL)


def test_a_page_for_an_old_filter_is_dropped_when_it_arrives_late(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    workspace.gated_prefix = "order"

    qtbot.keyClicks(panel.filter_edit, "order")
    qtbot.keyClick(panel.filter_edit, Qt.Key.Key_Return)  # applies at once, no debounce
    qtbot.waitUntil(lambda: len(workspace.calls) == 2, timeout=SIGNAL_TIMEOUT_MS)
    panel.filter_edit.clear()
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClicks(panel.filter_edit, "customer")
    assert shown_ids(panel) == ["customer-1", "customer-2"]

    workspace.gate.set()  # the "order" page now completes, after the filter moved on
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert shown_ids(panel) == ["customer-1", "customer-2"]


def test_a_new_prefix_cancels_the_query_still_running_for_the_old_one(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    workspace.gated_prefix = "order"
    workspace.gate_checks_cancel = True

    qtbot.keyClicks(panel.filter_edit, "order")
    qtbot.keyClick(panel.filter_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(workspace.calls) == 2, timeout=SIGNAL_TIMEOUT_MS)
    panel.filter_edit.clear()
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClicks(panel.filter_edit, "customer")

    # Stopped without its gate opening: it no longer holds a worker thread.
    qtbot.waitUntil(lambda: workspace.cancelled == ["order"], timeout=SIGNAL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert not workspace.gate.is_set()
    assert shown_ids(panel) == ["customer-1", "customer-2"]


def test_more_pages_are_fetched_only_as_the_view_scrolls_to_them(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    ids = [f"stream-{n:04d}" for n in range(1_200)]
    build_store(tmp_path / "store.db", [(stream_id, 1) for stream_id in ids])
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    model = panel.view.model()

    assert model.rowCount() == PAGE_SIZE
    assert model.canFetchMore()
    with qtbot.waitSignal(panel.page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        scroll_to_the_end(qtbot, panel)
    assert model.rowCount() == 2 * PAGE_SIZE
    assert model.canFetchMore()
    with qtbot.waitSignal(panel.page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        scroll_to_the_end(qtbot, panel)
    assert model.rowCount() == 1_200
    assert not model.canFetchMore()

    assert shown_ids(panel) == ids
    # Keyset pages of 500 after the last id loaded, never the whole list, never on the GUI thread.
    assert workspace.calls == [
        {"prefix": None, "after": None, "limit": PAGE_SIZE},
        {"prefix": None, "after": ids[PAGE_SIZE - 1], "limit": PAGE_SIZE},
        {"prefix": None, "after": ids[2 * PAGE_SIZE - 1], "limit": PAGE_SIZE},
    ]
    assert workspace.on_main_thread == [False, False, False]


def test_the_model_passes_the_qt_model_tester_while_paging_and_filtering(
    qtbot: QtBot, qtmodeltester: Any, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    ids = [f"stream-{n:04d}" for n in range(1_200)]
    build_store(tmp_path / "store.db", [(stream_id, 1) for stream_id in ids])
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    model = panel.model

    # The tester stays attached: the pages and the reset below are checked too. It also
    # calls fetchMore from inside the model's own notifications, as views may.
    qtmodeltester.check(model)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    while model.canFetchMore():
        with qtbot.waitSignal(panel.page_loaded, timeout=SIGNAL_TIMEOUT_MS):
            scroll_to_the_end(qtbot, panel)
        qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert shown_ids(panel) == ids  # every page exactly once

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClicks(panel.filter_edit, "stream-01")
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert shown_ids(panel) == ids[100:200]
    assert [call["prefix"] for call in workspace.calls].count("stream-01") == 1


def test_double_clicking_a_row_selects_its_stream(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    view = panel.view
    where = view.visualRect(view.model().index(3, 1)).center()

    with qtbot.waitSignal(panel.stream_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=where)
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert selected.args == ["order-10"]


def test_enter_on_a_row_selects_its_stream(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    view = panel.view
    view.setCurrentIndex(view.model().index(0, 0))

    with qtbot.waitSignal(panel.stream_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        qtbot.keyClick(view, Qt.Key.Key_Down)
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert selected.args == ["customer-2"]


def test_a_failed_load_is_shown_and_stops_fetching(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    workspace = open_workspace(tmp_path / "store.db")
    workspace.fail_with = StoreError("store.db: disk I/O error")
    panel = StreamsPanel(workspace.events, runner)
    qtbot.addWidget(panel)

    with qtbot.waitSignal(panel.load_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        panel.show()
    assert failed.args == ["store.db: disk I/O error"]
    assert panel.model.rowCount() == 0
    assert not panel.model.canFetchMore()
    status = panel.findChild(QLabel, "streamsStatus")
    assert "disk I/O error" in status.text()


def test_sorting_by_recent_activity_pages_newest_first(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner
) -> None:
    build_store(tmp_path / "store.db", SMALL)
    workspace = Workspace(SqlEventStore.open(tmp_path / "store.db", read_only=True))
    panel = StreamsPanel(workspace.events, runner, page_size=3)
    qtbot.addWidget(panel)
    panel.resize(700, 500)
    try:
        with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
            panel.show()
        with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
            panel.order_box.setFocus()
            qtbot.keyClick(panel.order_box, Qt.Key.Key_Down)  # "by recent activity"
        assert panel.model.order == "activity"
        while panel.model.canFetchMore(QModelIndex()):
            with qtbot.waitSignal(panel.page_loaded, timeout=SIGNAL_TIMEOUT_MS):
                panel.model.fetchMore(QModelIndex())
        # Last events at 14, 13, 12, 10, 6, 5 and 3 seconds: newest first, over 3 pages.
        assert shown_ids(panel) == [
            "customer-2", "orderly-1", "order-11", "order-2", "order-10", "customer-1", "order-1",
        ]  # fmt: skip
        with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
            qtbot.keyClicks(panel.filter_edit, "order-1")
        assert shown_ids(panel) == ["order-11", "order-10", "order-1"]
    finally:
        runner.shutdown()
        workspace.close()
