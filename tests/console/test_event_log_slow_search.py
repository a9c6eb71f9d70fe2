"""The event log over an unindexed 300k-event store: a slow search shows progress and stops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from console.panels.event_log import EventLogPanel
from console.workers import Task, TaskRunner
from core.events import NewEvent
from core.store import SqlEventStore
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

COUNT = 300_000
BATCH = 1_000
SIGNAL_TIMEOUT_MS = 10_000
# Every payload holds "aystack" (so SQLite's LIKE pre-test passes) but no word starts
# with it: searching for it tests every event's words, and finds nothing.
SLOW_QUERY = "aystack"
NOTE = " ".join(["haystack"] * 12)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300k small events, appended (not imported) and never indexed."""
    path = tmp_path_factory.mktemp("slow-search") / "big.db"
    with SqlEventStore.open(path) as store:
        for batch in range(COUNT // BATCH):
            store.append_to_stream(
                f"stack-{batch}",
                [NewEvent("Stacked", {"n": n, "note": NOTE}) for n in range(BATCH)],
            )
        assert store.indexed_position() == 0
    return path


@pytest.fixture
def panel(
    qtbot: QtBot, big_store: Path, runner: TaskRunner, workspaces: list[Workspace]
) -> EventLogPanel:
    workspace = Workspace(SqlEventStore.open(big_store, read_only=True))
    workspaces.append(workspace)
    # No live tail: its polls would come and go on the runner while the test counts tasks.
    shown = EventLogPanel(workspace.events, runner, live_tail=False)
    qtbot.addWidget(shown)
    shown.resize(900, 600)
    with qtbot.waitSignal(shown.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        shown.show()
    return shown


def search(qtbot: QtBot, panel: EventLogPanel, text: str) -> None:
    """Type ``text`` in the payload search and press Return, as a user would."""
    edit = panel.filter_edit("text")
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def wait_for_progress(qtbot: QtBot, panel: EventLogPanel) -> None:
    """Wait until the progress bar shows and has moved past the scan's first window."""
    bar = panel.search_progress
    qtbot.waitUntil(bar.isVisible, timeout=SIGNAL_TIMEOUT_MS)
    assert panel.cancel_search_button.isVisible()
    qtbot.waitUntil(lambda: bar.maximum() == COUNT, timeout=SIGNAL_TIMEOUT_MS)
    first = bar.value()
    qtbot.waitUntil(lambda: bar.value() > first, timeout=SIGNAL_TIMEOUT_MS)


def wait_cancelled(qtbot: QtBot, panel: EventLogPanel, runner: TaskRunner) -> None:
    qtbot.waitUntil(lambda: "search cancelled" in panel.status_label.text(), timeout=5_000)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=5_000)
    assert not panel.search_progress.isVisible()
    assert "\n" not in panel.status_label.text()


def test_a_slow_search_shows_progress_and_cancel_or_esc_stops_it(
    qtbot: QtBot, panel: EventLogPanel, runner: TaskRunner
) -> None:
    assert not panel.search_progress.isVisible()

    search(qtbot, panel, SLOW_QUERY)
    wait_for_progress(qtbot, panel)
    qtbot.mouseClick(panel.cancel_search_button, Qt.MouseButton.LeftButton)

    wait_cancelled(qtbot, panel, runner)
    assert panel.model.rowCount() == 0
    assert not panel.model.canFetchMore()  # a view's fetchMore must not start it again

    # Return in the bar searches on; Esc there stops it again.
    edit = panel.filter_edit("text")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    wait_for_progress(qtbot, panel)
    qtbot.keyClick(edit, Qt.Key.Key_Escape)

    wait_cancelled(qtbot, panel, runner)
    assert edit.text() == SLOW_QUERY


def test_a_new_filter_cancels_the_search_still_running_for_the_old_one(
    qtbot: QtBot, panel: EventLogPanel, runner: TaskRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted: list[Task] = []
    outcomes: list[str] = []
    submit: Callable[..., Task] = runner.submit

    def recording_submit(function: Callable[[], Any], *, tag: object = None) -> Task:
        task = submit(function, tag=tag)
        submitted.append(task)
        return task

    monkeypatch.setattr(runner, "submit", recording_submit)
    search(qtbot, panel, SLOW_QUERY)
    wait_for_progress(qtbot, panel)
    (slow,) = submitted
    slow.succeeded.connect(lambda *_: outcomes.append("succeeded"))
    slow.failed.connect(lambda *_: outcomes.append("failed"))
    slow.cancelled.connect(lambda *_: outcomes.append("cancelled"))

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        search(qtbot, panel, "haystack")

    qtbot.waitUntil(lambda: outcomes == ["cancelled"], timeout=5_000)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=5_000)
    model = panel.model
    assert model.rowCount() > 0
    assert [model.event_at(row).position for row in range(3)] == [1, 2, 3]  # type: ignore[union-attr]
    assert not panel.search_progress.isVisible()
    assert "cancelled" not in panel.status_label.text()
