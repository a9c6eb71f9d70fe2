"""The event log over real SQLite stores: windowing, filters, jumps, live tail, responsiveness."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from console.panels.event_log import (
    MAX_PAGES,
    PAGE_SIZE,
    PLACEHOLDER,
    EventLogPanel,
)
from console.workers import TaskRunner
from core.events import NewEvent, RecordedEvent, to_micros
from core.store import EventFilter, ImportRecord, SqlEventStore
from core.store.port import prepare_events
from core.workspace import Workspace
from tests.console.conftest import route_events

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

BASE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SIGNAL_TIMEOUT_MS = 5_000


class RecordingWorkspace(Workspace):
    """A real workspace that records each ``read`` filter and the thread it ran on."""

    def __init__(self, store: SqlEventStore) -> None:
        super().__init__(store)
        self.reads: list[EventFilter] = []
        self.on_main_thread: list[bool] = []
        self.plain = route_events(self, "read")

    def read(self, where: EventFilter = EventFilter(), **options: Any) -> Iterator[RecordedEvent]:
        self.reads.append(where)
        self.on_main_thread.append(threading.current_thread() is threading.main_thread())
        return self.plain.read(where, **options)


Spec = tuple[str, str, dict[str, Any], dict[str, Any]]  # stream, type, data, metadata


def build_store(path: Path, specs: list[Spec], *, step: timedelta = timedelta(seconds=1)) -> None:
    """Import events at positions 1.., ``step`` apart from BASE + step."""
    prepared = prepare_events([NewEvent(kind, data, meta) for _, kind, data, meta in specs])
    records = [
        ImportRecord(n, spec[0], event, None, to_micros(BASE + step * n))
        for n, (spec, event) in enumerate(zip(specs, prepared, strict=True), start=1)
    ]
    with SqlEventStore.open(path) as store:
        store.import_records(records)


def varied_specs(count: int = 60) -> list[Spec]:
    """Streams, categories, types, correlation ids and payload words that vary by position."""
    specs: list[Spec] = []
    for n in range(1, count + 1):
        stream = ("order-1", "order-12", "orderly-3", "customer-7")[n % 4]
        kind = ("Placed", "Paid", "Shipped")[n % 3]
        data = {"n": n, "note": "Fragile GLASS" if n % 7 == 0 else "plain"}
        specs.append((stream, kind, data, {"correlation_id": f"c{n % 5}"}))
    return specs


def expected(specs: list[Spec], keep: Callable[[int, Spec], bool]) -> list[int]:
    return [n for n, spec in enumerate(specs, start=1) if keep(n, spec)]


@pytest.fixture
def open_workspace(workspaces: list[RecordingWorkspace]) -> Callable[[Path], RecordingWorkspace]:
    def open_(path: Path) -> RecordingWorkspace:
        workspace = RecordingWorkspace(SqlEventStore.open(path, read_only=True))
        workspaces.append(workspace)
        return workspace

    return open_


def show_panel(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, *, live_tail: bool = False
) -> EventLogPanel:
    panel = EventLogPanel(workspace.events, runner, live_tail=live_tail)
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.show()
    return panel


def shown_positions(panel: EventLogPanel) -> list[int]:
    model = panel.model
    events = [model.event_at(row) for row in range(model.rowCount())]
    assert all(event is not None for event in events)
    return [event.position for event in events if event is not None]


def type_filter(qtbot: QtBot, panel: EventLogPanel, name: str, text: str) -> None:
    edit = panel.filter_edit(name)
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        edit.clear()
        qtbot.keyClicks(edit, text)
    qtbot.waitUntil(lambda: panel.model.exhausted, timeout=SIGNAL_TIMEOUT_MS)


def visible_rows(panel: EventLogPanel) -> range:
    view = panel.view
    top = view.rowAt(0)
    bottom = view.rowAt(view.viewport().height() - 1)
    if bottom < 0:
        bottom = panel.model.rowCount() - 1
    return range(top, bottom + 1)


def wait_visible_loaded(qtbot: QtBot, panel: EventLogPanel) -> None:
    def loaded() -> bool:
        return all(panel.model.event_at(row) is not None for row in visible_rows(panel))

    qtbot.waitUntil(loaded, timeout=SIGNAL_TIMEOUT_MS)


# -- the unfiltered window ------------------------------------------------------------------


def test_unfiltered_rows_are_positions_with_time_stream_type_version_and_size(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    specs = varied_specs(10)
    build_store(tmp_path / "store.db", specs)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    model = panel.model
    wait_visible_loaded(qtbot, panel)

    assert model.rowCount() == 10
    header = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(6)]
    assert header == ["position", "time (UTC)", "stream", "type", "ver.", "size"]
    row = [model.index(4, column).data() for column in range(6)]
    # Position 5: order-12 (5 % 4 == 1), Shipped (5 % 3 == 2), 5 s after BASE, version 1.
    assert row == [
        "5",
        "2026-03-01 10:00:05",
        "order-12",
        "Shipped",
        "1",
        "22 B",
    ]  # {"n":5,"note":"plain"}
    assert model.index(4, 5).data(Qt.ItemDataRole.ToolTipRole) == "22 bytes of data JSON"


def test_scrolling_far_in_50k_events_loads_only_the_pages_on_screen(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    count = 50_000
    build_store(
        tmp_path / "big.db",
        [(f"s-{n % 100}", "Tick", {"n": n}, {}) for n in range(1, count + 1)],
        step=timedelta(milliseconds=1),
    )
    workspace = open_workspace(tmp_path / "big.db")
    panel = show_panel(qtbot, workspace, runner)
    model = panel.model
    bar = panel.view.verticalScrollBar()
    assert model.rowCount() == count
    wait_visible_loaded(qtbot, panel)
    assert bar.value() == bar.maximum()  # the tail is shown first

    for fraction in (0.0, 0.5, 0.37, 0.81, 1.0):
        bar.setValue(int(bar.maximum() * fraction))
        wait_visible_loaded(qtbot, panel)
        row = visible_rows(panel)[0]
        assert model.index(row, 0).data() == f"{row + 1:,}"
        assert model.event_at(row).data == {"n": row + 1}  # row r is position r + 1
        assert model.held_pages <= MAX_PAGES
        assert model.held_rows <= MAX_PAGES * PAGE_SIZE

    # Each stop needs a page or two; nothing read the log from the start to get there.
    assert len(workspace.reads) <= 2 * 6
    assert all(where.from_position is not None for where in workspace.reads)
    assert all(
        where.to_position is not None and where.to_position - where.from_position < PAGE_SIZE
        for where in workspace.reads
        if where.from_position is not None
    )
    assert not any(workspace.on_main_thread)


def test_a_cell_whose_page_is_loading_shows_a_placeholder_then_changes(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", [("s-1", "Tick", {"n": n}, {}) for n in range(1_000)])
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    model = panel.model
    assert model.event_at(0) is None  # the view starts at the tail: page 0 is not loaded

    assert model.index(0, 3).data() == PLACEHOLDER

    def covers_row_0(top: Any, bottom: Any, *_roles: Any) -> bool:
        # The tail's own page may still land first on a busy machine: wait for row 0's.
        return bool(top.row() <= 0 <= bottom.row())

    with qtbot.waitSignal(
        model.dataChanged, timeout=SIGNAL_TIMEOUT_MS, check_params_cb=covers_row_0
    ):
        pass
    assert model.index(0, 3).data() == "Tick"


def test_the_windowed_and_filtered_models_pass_the_qt_model_tester(
    qtbot: QtBot, qtmodeltester: Any, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(
        tmp_path / "store.db",
        [(f"s-{n % 3}", "Tick", {"n": n}, {}) for n in range(1, 1_201)],
    )
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    qtmodeltester.check(panel.model)
    panel.view.scrollToTop()
    wait_visible_loaded(qtbot, panel)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClicks(panel.filter_edit("stream_prefix"), "s-1")  # 400 events: 2 pages
    assert panel.model.rowCount() == PAGE_SIZE
    view = panel.view
    while panel.model.canFetchMore():  # scrolled down page by page (Ctrl+End would jump)
        view.scrollToTop()
        with qtbot.waitSignal(panel.page_loaded, timeout=SIGNAL_TIMEOUT_MS):
            view.scrollToBottom()
        qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert shown_positions(panel) == list(range(1, 1_201, 3))  # every page exactly once


# -- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "keep"),
    [
        ("stream_prefix", "order-1", lambda n, s: s[0] in ("order-1", "order-12")),
        ("category", "order", lambda n, s: s[0].split("-")[0] == "order"),
        ("types", "Paid, Shipped", lambda n, s: s[1] in ("Paid", "Shipped")),
        ("correlation_id", "c3", lambda n, s: s[3]["correlation_id"] == "c3"),
        ("text", "glass", lambda n, s: "GLASS" in s[2]["note"]),
        ("since", "2026-03-01T10:00:50Z", lambda n, s: n >= 50),
        ("until", "2026-03-01T11:00:07+01:00", lambda n, s: n <= 7),
    ],
)
def test_typing_a_filter_narrows_the_rows_to_exactly_the_matching_positions(
    qtbot: QtBot,
    tmp_path: Path,
    runner: TaskRunner,
    open_workspace: Any,
    field: str,
    text: str,
    keep: Callable[[int, Spec], bool],
) -> None:
    specs = varied_specs()
    build_store(tmp_path / "store.db", specs)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    reads_before = len(workspace.reads)

    type_filter(qtbot, panel, field, text)

    wanted = expected(specs, keep)
    assert 0 < len(wanted) < len(specs)
    assert shown_positions(panel) == wanted
    # Debounced: one query for what was typed, not one per keystroke.
    assert len(workspace.reads) - reads_before <= 2
    assert not any(workspace.on_main_thread)

    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.filter_edit(field).clear()
    assert panel.model.windowed
    assert panel.model.rowCount() == len(specs)


def test_filters_combine(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    specs = varied_specs()
    build_store(tmp_path / "store.db", specs)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)

    panel.filter_edit("category").setText("order")
    type_filter(qtbot, panel, "types", "Placed")

    keep = expected(specs, lambda n, s: s[0].startswith("order-") and s[1] == "Placed")
    assert shown_positions(panel) == keep


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("since", "yesterday", "since: 'yesterday' is not an ISO-8601 time"),
        ("until", "2026-03-01T10:00:00", "until: time '2026-03-01T10:00:00' has no zone"),
    ],
)
def test_a_bad_time_shows_an_error_and_queries_nothing(
    qtbot: QtBot,
    tmp_path: Path,
    runner: TaskRunner,
    open_workspace: Any,
    field: str,
    text: str,
    message: str,
) -> None:
    build_store(tmp_path / "store.db", varied_specs())
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    reads_before = len(workspace.reads)

    with qtbot.waitSignal(panel.filter_rejected, timeout=SIGNAL_TIMEOUT_MS) as rejected:
        qtbot.keyClicks(panel.filter_edit(field), text)
    assert message in rejected.args[0]
    assert panel.error_label.isVisible()
    assert message in panel.error_label.text()
    assert panel.filter_edit(field).styleSheet() != ""
    assert panel.model.windowed  # the old rows stay
    qtbot.wait(50)  # nothing is pending to wait on: give a stray query the chance to start
    assert len(workspace.reads) == reads_before

    # Fixing it clears the error and filters.
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.filter_edit(field).setText("2026-03-01T10:00:30Z")
    assert not panel.error_label.isVisible()
    assert panel.filter_edit(field).styleSheet() == ""


def test_a_page_for_an_old_filter_is_dropped(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    specs = varied_specs()
    build_store(tmp_path / "store.db", specs)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    gate = threading.Event()
    original = workspace.read

    def slow_read(where: EventFilter = EventFilter(), **options: Any) -> Any:
        if where.category == "customer":
            gate.wait(SIGNAL_TIMEOUT_MS / 1000)
        return original(where, **options)

    workspace.read = slow_read  # type: ignore[method-assign]
    edit = panel.filter_edit("category")
    edit.setText("customer")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    edit.clear()
    type_filter(qtbot, panel, "category", "orderly")
    gate.set()
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)

    assert shown_positions(panel) == expected(specs, lambda n, s: s[0] == "orderly-3")


# -- jumps ----------------------------------------------------------------------------------


def test_jumping_to_a_position_selects_and_shows_that_event(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", [("s-1", "Tick", {"n": n}, {}) for n in range(5_000)])
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)

    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        panel.jump_to_position(1_234)
    assert selected.args[0].position == 1_234
    assert panel.view.currentIndex().row() == 1_233
    assert 1_233 in visible_rows(panel)


def test_jumping_to_a_time_selects_the_last_event_at_or_before_it(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", [("s-1", "Tick", {"n": n}, {}) for n in range(3_000)])
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)

    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        panel.jump_to_time(BASE + timedelta(seconds=2_100, milliseconds=500))
    assert selected.args[0].position == 2_100
    assert panel.view.currentIndex().row() == 2_099
    assert 2_099 in visible_rows(panel)


def test_jumping_in_a_filtered_log_loads_the_pages_around_the_position(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(
        tmp_path / "store.db",
        [(f"s-{n % 2}", "Tick", {"n": n}, {}) for n in range(1, 3_001)],
    )
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    with qtbot.waitSignal(panel.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClicks(panel.filter_edit("stream_prefix"), "s-1")
    assert not panel.model.exhausted
    workspace.reads.clear()

    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        panel.jump_to_position(2_001)
    assert selected.args[0].position == 2_001
    # The page of matches (odd positions) before it and the page from it, nothing between.
    assert shown_positions(panel) == list(range(2_001 - 2 * PAGE_SIZE, 2_001 + 2 * PAGE_SIZE, 2))
    assert panel.view.currentIndex().row() == PAGE_SIZE
    # Nothing was read from the start of the log to get there.
    assert all(where.from_position and where.from_position >= 2_000 for where in workspace.reads)


# -- live tail ------------------------------------------------------------------------------

_APPENDER = textwrap.dedent(
    """
    import sys
    from core.events import NewEvent
    from core.store import SqlEventStore

    with SqlEventStore.open(sys.argv[1]) as store:
        for n in range(int(sys.argv[2])):
            store.append_to_stream("tail-1", [NewEvent("Appended", {"n": n})])
    """
)


def append_from_another_process(path: Path, count: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _APPENDER, str(path), str(count)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr


def test_live_tail_shows_events_another_process_appends_and_follows_the_bottom(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    path = tmp_path / "store.db"
    build_store(path, [("s-1", "Tick", {"n": n}, {}) for n in range(1_000)])
    panel = show_panel(qtbot, open_workspace(path), runner, live_tail=True)
    assert panel.live_tail_button.isChecked()
    wait_visible_loaded(qtbot, panel)
    bar = panel.view.verticalScrollBar()
    assert bar.value() == bar.maximum()

    started = time.monotonic()
    append_from_another_process(path, 5)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1_005, timeout=SIGNAL_TIMEOUT_MS)
    assert time.monotonic() - started < 3  # the subprocess start-up included
    wait_visible_loaded(qtbot, panel)
    assert bar.value() == bar.maximum()  # followed
    assert 1_004 in visible_rows(panel)
    last = panel.model.event_at(1_004)
    assert last is not None and (last.stream_id, last.type, last.data) == (
        "tail-1",
        "Appended",
        {"n": 4},
    )


def test_live_tail_keeps_a_scrolled_up_view_and_its_selection_in_place(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    path = tmp_path / "store.db"
    build_store(path, [("s-1", "Tick", {"n": n}, {}) for n in range(1_000)])
    panel = show_panel(qtbot, open_workspace(path), runner, live_tail=True)
    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS):
        panel.jump_to_position(300)
    bar = panel.view.verticalScrollBar()
    value = bar.value()
    assert value < bar.maximum()

    append_from_another_process(path, 20)
    with qtbot.waitSignal(panel.tail_grew, timeout=SIGNAL_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1_020, timeout=SIGNAL_TIMEOUT_MS)

    assert bar.value() == value
    assert panel.view.currentIndex().row() == 299
    assert panel.current_event() is not None and panel.current_event().position == 300


def test_live_tail_off_polls_nothing(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    path = tmp_path / "store.db"
    build_store(path, [("s-1", "Tick", {"n": n}, {}) for n in range(10)])
    panel = show_panel(qtbot, open_workspace(path), runner, live_tail=True)
    panel.live_tail_button.click()
    assert not panel.live_tail_button.isChecked()

    append_from_another_process(path, 3)
    qtbot.wait(1_200)  # more than two poll intervals: nothing may arrive
    assert panel.model.rowCount() == 10

    with qtbot.waitSignal(panel.tail_grew, timeout=SIGNAL_TIMEOUT_MS):
        panel.live_tail_button.click()
    assert panel.model.rowCount() == 13


def test_live_tail_appends_to_a_filtered_log_that_is_fully_loaded(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    path = tmp_path / "store.db"
    build_store(path, varied_specs())
    panel = show_panel(qtbot, open_workspace(path), runner, live_tail=True)
    type_filter(qtbot, panel, "stream_prefix", "tail-")
    assert panel.model.rowCount() == 0

    append_from_another_process(path, 2)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2, timeout=SIGNAL_TIMEOUT_MS)
    assert shown_positions(panel) == [61, 62]


def test_live_tail_of_a_rare_match_reads_only_what_was_appended_since(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    path = tmp_path / "store.db"
    build_store(path, varied_specs())
    workspace = open_workspace(path)
    panel = show_panel(qtbot, workspace, runner, live_tail=True)
    type_filter(qtbot, panel, "text", "glass")
    assert shown_positions(panel)[-1] == 56
    workspace.reads.clear()

    # Each poll would otherwise scan again from the last match (57) to the head.
    qtbot.waitUntil(lambda: len(workspace.reads) >= 2, timeout=SIGNAL_TIMEOUT_MS)
    assert {where.from_position for where in workspace.reads} == {61}
    append_from_another_process(path, 2)
    qtbot.waitUntil(lambda: workspace.reads[-1].from_position == 63, timeout=SIGNAL_TIMEOUT_MS)
    assert shown_positions(panel)[-1] == 56


# -- responsiveness -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_payload_search_over_1m_events_keeps_the_gui_responsive(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    count = 1_000_000
    # "xneedle" passes SQLite's LIKE pre-test, so every event's words are tested: a real
    # scan (the store is not indexed).
    filler = "lorem ipsum dolor sit amet xneedle"
    prepared = prepare_events([NewEvent("Tick", {"n": 0, "note": filler})])[0]
    needle = prepare_events([NewEvent("Tick", {"note": "the NEEDLE is here"})])[0]
    micros = to_micros(BASE)

    def records() -> Iterator[ImportRecord]:
        for n in range(1, count + 1):
            if n == count - 2:
                yield ImportRecord(n, "s-needle", needle, None, micros + n)
                continue
            # Distinct event ids: imports skip an id already stored.
            event = prepared._replace(event_id=f"00000000-0000-7000-8000-{n:012d}")
            yield ImportRecord(n, f"s-{n % 500}", event, None, micros + n)

    with SqlEventStore.open(tmp_path / "big.db") as store:
        store.import_records(records())
        assert store.indexed_position() == 0
    panel = show_panel(qtbot, open_workspace(tmp_path / "big.db"), runner)

    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    heartbeat.start()
    qtbot.wait(50)
    started = time.perf_counter()
    with qtbot.waitSignal(panel.first_page_loaded, timeout=120_000):
        panel.filter_edit("text").setText("needle")
        qtbot.keyClick(panel.filter_edit("text"), Qt.Key.Key_Return)
    searched = time.perf_counter() - started
    qtbot.waitUntil(lambda: panel.model.exhausted, timeout=120_000)
    qtbot.wait(50)  # a beat after: a GUI thread blocked by the search shows as one long gap
    heartbeat.stop()

    assert shown_positions(panel) == [count - 2]
    # The search must be slow enough that running it on the GUI thread would show.
    assert searched > 0.1, f"the search took {searched:.3f} s: too quick to tell"
    window = [tick for tick in ticks if tick >= started - 0.02]
    gaps = sorted(b - a for a, b in itertools.pairwise(window))
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    assert p99 < 0.100, f"p99 heartbeat gap {p99 * 1000:.0f} ms over {searched:.2f} s"


def test_a_rows_context_menu_opens_its_event_in_time_travel(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    path = tmp_path / "store.db"
    build_store(path, [("s-1", "Tick", {"n": n}, {}) for n in range(500)])
    panel = show_panel(qtbot, open_workspace(path), runner)
    action = panel.open_in_time_travel_action
    assert action in panel.view.actions()  # the rows' context menu
    with qtbot.waitSignal(panel.event_selected, timeout=SIGNAL_TIMEOUT_MS):
        panel.jump_to_position(123)
    with qtbot.waitSignal(panel.time_travel_requested, timeout=SIGNAL_TIMEOUT_MS) as asked:
        action.trigger()
    assert asked.args == [123]
