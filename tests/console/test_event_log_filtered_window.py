"""The filtered event log is a window over 200k events: jumps and scrolling hold a few pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from console.panels.event_log import MAX_PAGES, PAGE_SIZE, EventLogPanel
from console.workers import TaskRunner
from core.events import NewEvent, RecordedEvent, to_micros
from core.store import EventFilter, ImportRecord, SqlEventStore
from core.store.port import prepare_events
from core.workspace import Workspace
from tests.console.conftest import route_events

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

COUNT = 200_000
BASE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SIGNAL_TIMEOUT_MS = 10_000


class ReadRecordingWorkspace(Workspace):
    """A real workspace that records each ``read``: its filter, direction and limit."""

    def __init__(self, store: SqlEventStore) -> None:
        super().__init__(store)
        self.reads: list[tuple[EventFilter, bool, int | None]] = []
        self.plain = route_events(self, "read")

    def read(
        self, where: EventFilter = EventFilter(), *, backwards: bool = False, limit: Any = None
    ) -> Iterator[RecordedEvent]:
        self.reads.append((where, backwards, limit))
        return self.plain.read(where, backwards=backwards, limit=limit)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200k events: even positions are ``Even``, odd ones ``Odd``, one second apart."""
    path = tmp_path_factory.mktemp("filtered-window") / "big.db"
    even, odd = prepare_events([NewEvent("Even", {}), NewEvent("Odd", {})])
    micros = to_micros(BASE)

    def records() -> Iterator[ImportRecord]:
        for n in range(1, COUNT + 1):
            prepared = (odd if n % 2 else even)._replace(
                event_id=f"00000000-0000-7000-8000-{n:012d}", data=f'{{"n":{n}}}'
            )
            yield ImportRecord(n, f"s-{n % 100}", prepared, None, micros + n * 1_000_000)

    with SqlEventStore.open(path) as store:
        store.import_records(records())
    return path


@pytest.fixture
def workspace(big_store: Path, workspaces: list[Workspace]) -> ReadRecordingWorkspace:
    opened = ReadRecordingWorkspace(SqlEventStore.open(big_store, read_only=True))
    workspaces.append(opened)
    return opened


@pytest.fixture
def panel(qtbot: QtBot, workspace: Workspace, runner: TaskRunner) -> EventLogPanel:
    """The log filtered to ``Even`` events (100k matches), first page shown."""
    shown = EventLogPanel(workspace.events, runner, live_tail=False)
    qtbot.addWidget(shown)
    shown.resize(900, 600)
    with qtbot.waitSignal(shown.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        shown.show()
    with qtbot.waitSignal(shown.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        shown.filter_edit("types").setText("Even")
        qtbot.keyClick(shown.filter_edit("types"), Qt.Key.Key_Return)
    return shown


def held_positions(panel: EventLogPanel) -> list[int]:
    model = panel.model
    events = [model.event_at(row) for row in range(model.rowCount())]
    return [event.position for event in events if event is not None]


def top_visible_position(panel: EventLogPanel) -> int:
    event = panel.model.event_at(panel.view.rowAt(0))
    assert event is not None
    return event.position


def test_a_filtered_jump_to_the_end_reads_and_holds_only_the_last_pages(
    qtbot: QtBot, panel: EventLogPanel, workspace: ReadRecordingWorkspace
) -> None:
    workspace.reads.clear()
    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        panel.jump_to_position(COUNT)

    assert selected.args[0].position == COUNT
    model = panel.model
    # The page of matches before the target and the one from it: nothing in between.
    assert held_positions(panel) == list(range(COUNT - 2 * PAGE_SIZE, COUNT + 1, 2))
    assert model.held_rows <= 2 * PAGE_SIZE + 1
    assert model.exhausted and not model.at_start
    assert panel.view.currentIndex().row() == PAGE_SIZE
    assert all(limit is not None and limit <= PAGE_SIZE for _, _, limit in workspace.reads)


def test_a_filtered_jump_past_the_last_match_selects_the_last_match(
    qtbot: QtBot, panel: EventLogPanel
) -> None:
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.filter_edit("types").setText("Odd")
        qtbot.keyClick(panel.filter_edit("types"), Qt.Key.Key_Return)

    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        panel.jump_to_position(COUNT)  # an Even event: the last Odd one is just before

    assert selected.args[0].position == COUNT - 1
    assert held_positions(panel) == list(range(COUNT - 2 * PAGE_SIZE + 1, COUNT, 2))


def test_a_filtered_jump_to_a_time_or_an_event_id_lands_among_the_matches(
    qtbot: QtBot, panel: EventLogPanel
) -> None:
    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        panel.jump_to_time(BASE.replace(hour=23))  # position 46,800
    assert selected.args[0].position == 46_800
    assert held_positions(panel) == list(range(46_800 - 2 * PAGE_SIZE, 46_800 + 2 * PAGE_SIZE, 2))

    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        panel.jump_to_event_id(f"00000000-0000-7000-8000-{150_000:012d}")
    assert selected.args[0].position == 150_000
    assert panel.model.event_filter.types == ("Even",)  # it matches: the filter stays
    assert panel.model.held_rows <= 2 * PAGE_SIZE


def test_ctrl_home_after_a_filtered_jump_to_the_end_shows_the_first_matches(
    qtbot: QtBot, qtmodeltester: Any, panel: EventLogPanel
) -> None:
    qtmodeltester.check(panel.model)  # and it goes on checking the window's replacements
    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS):
        panel.jump_to_position(COUNT)

    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        qtbot.keyClick(panel.view, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)

    assert selected.args[0].position == 2
    assert panel.model.at_start
    assert held_positions(panel) == list(range(2, 2 * PAGE_SIZE + 1, 2))
    assert panel.view.currentIndex().row() == 0


def test_ctrl_end_in_a_filtered_log_shows_the_last_matches(
    qtbot: QtBot, panel: EventLogPanel
) -> None:
    assert not panel.model.exhausted  # the first page: matches go on far beyond it
    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        qtbot.keyClick(panel.view, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)

    assert selected.args[0].position == COUNT  # the last Even event, not row 199
    assert panel.model.exhausted
    assert panel.model.held_rows <= 2 * PAGE_SIZE + 1


def test_scrolling_up_a_filtered_window_loads_earlier_pages_and_drops_far_ones(
    qtbot: QtBot, qtmodeltester: Any, panel: EventLogPanel, workspace: ReadRecordingWorkspace
) -> None:
    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS):
        panel.jump_to_position(COUNT)
    model = panel.model
    bar = panel.view.verticalScrollBar()
    workspace.reads.clear()

    for _ in range(MAX_PAGES + 3):
        bar.setValue(0)
        top = top_visible_position(panel)
        with qtbot.waitSignal(model.rows_shifted, timeout=SIGNAL_TIMEOUT_MS):
            pass  # the top row was painted: the page before it loads
        assert top_visible_position(panel) == top  # the view stays where it was
        held = held_positions(panel)
        assert held == list(range(held[0], held[0] + 2 * len(held), 2))  # consecutive matches
        assert model.held_pages <= MAX_PAGES

    held = held_positions(panel)
    # The jump's two pages, then one page before the window per stop: 8 pages kept.
    assert held[0] == COUNT - 2 * PAGE_SIZE * (1 + MAX_PAGES + 3)
    assert len(held) == MAX_PAGES * PAGE_SIZE
    assert not model.exhausted  # the last pages were dropped; scrolling down reads them again
    assert all(backwards and limit == PAGE_SIZE for _, backwards, limit in workspace.reads)
    qtmodeltester.check(model)

    # Down again: the page after the window is read, and the top page goes.
    last = held[-1]
    with qtbot.waitSignal(model.rows_shifted, timeout=SIGNAL_TIMEOUT_MS) as shifted:
        bar.setValue(bar.maximum())
    assert shifted.args == [-PAGE_SIZE]
    held = held_positions(panel)
    assert held == list(range(held[0], held[0] + 2 * len(held), 2))
    assert held[-1] == last + 2 * PAGE_SIZE
    assert model.held_pages <= MAX_PAGES


def test_a_filtered_log_counts_its_matches_off_the_gui_thread(
    qtbot: QtBot, panel: EventLogPanel
) -> None:
    model = panel.model
    qtbot.waitUntil(lambda: model.match_count is not None, timeout=SIGNAL_TIMEOUT_MS)

    assert model.match_count == COUNT // 2
    assert model.held_rows <= 2 * PAGE_SIZE  # counted, not loaded (a view may fetch a page)
    assert panel.status_label.text().startswith("100,000 matching events;")
