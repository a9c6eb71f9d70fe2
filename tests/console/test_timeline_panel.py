"""The timeline over a real SQLite store: buckets, filters, zooming, the cursor, failures."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from bisect import bisect_right
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from pytestqt.qtbot import QtBot
from sqlalchemy.dialects import sqlite

from console.panels.timeline import (
    MAX_BUCKETS,
    TimelinePanel,
    UtcDateAxis,
    format_width,
    plan_buckets,
)
from console.workers import TaskRunner
from core.errors import Cancelled, StoreError
from core.events import NewEvent, from_micros, to_micros
from core.jobs import checkpoint
from core.store import EventFilter, ImportRecord, SqlEventStore
from core.store.port import prepare_events
from core.store.sql.appends import write_statements
from core.workspace import Workspace
from tests.console.conftest import route_events

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

BASE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SIGNAL_TIMEOUT_MS = 10_000

# (stream, type, time): a busy first ten minutes, a burst at 12:30, refunds at 15:45.
HISTORY = (
    [(f"order-{n}", "Placed", BASE + timedelta(minutes=n)) for n in range(10)]
    + [(f"order-{n}", "Paid", BASE + timedelta(hours=2, minutes=30, seconds=n)) for n in range(5)]
    + [(f"order-{n}", "Refunded", BASE + timedelta(hours=5, minutes=45)) for n in range(3)]
)


class CountingStore:
    """A store that counts ``position_at`` and ``count`` calls and can be made to fail."""

    def __init__(self, store: SqlEventStore) -> None:
        self._store = store
        self.position_at_calls = 0
        self.count_calls = 0
        self.fail_with: Exception | None = None
        self.lock = threading.Lock()

    def position_at(self, moment: datetime) -> int:
        with self.lock:
            self.position_at_calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return self._store.position_at(moment)

    def count(self, where: EventFilter) -> int:
        with self.lock:
            self.count_calls += 1
        return self._store.count(where)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class RecordingWorkspace(Workspace):
    """A real workspace that records each ``timeline`` query.

    A query for ``held_filter`` checks for cancellation until ``release`` is set (as a
    store's count does between windows), and lands in ``cancelled`` if it is.
    """

    def __init__(self, store: SqlEventStore) -> None:
        self.counting = CountingStore(store)
        super().__init__(self.counting)  # type: ignore[arg-type]
        self.timeline_calls: list[tuple[datetime, datetime, int, EventFilter | None]] = []
        self.held_filter: EventFilter | None = None
        self.release = threading.Event()
        self.cancelled: list[EventFilter | None] = []
        self.plain = route_events(self, "timeline")

    def timeline(
        self, start: datetime, end: datetime, buckets: int, where: EventFilter | None = None
    ) -> list[int]:
        self.timeline_calls.append((start, end, buckets, where))
        if where is not None and where == self.held_filter:
            deadline = time.monotonic() + SIGNAL_TIMEOUT_MS / 1000
            try:
                while not self.release.wait(0.005) and time.monotonic() < deadline:
                    checkpoint()
            except Cancelled:
                self.cancelled.append(where)
                raise
        return self.plain.timeline(start, end, buckets, where)


def build_store(path: Path, history: list[tuple[str, str, datetime]]) -> None:
    records = []
    for line, (stream_id, event_type, moment) in enumerate(history, start=1):
        (event,) = prepare_events([NewEvent(event_type, {"line": line})])
        records.append(ImportRecord(line, stream_id, event, None, to_micros(moment)))
    with SqlEventStore.open(path) as store:
        store.import_records(records)


def build_big_store(path: Path, events: int, streams: int = 1_000) -> None:
    """``events`` events, 100 ms apart from BASE, round-robin over ``streams`` streams."""
    SqlEventStore.open(path).close()
    insert_events, upsert_streams = (s.sql for s in write_statements(sqlite.dialect()))
    start = to_micros(BASE)
    step = 100_000
    rows = (
        (
            position,
            f"load-{(position - 1) % streams}",
            (position - 1) // streams,
            "Ticked",
            "{}",
            "{}",
            f"00000000-0000-7000-8000-{position:012d}",
            start + (position - 1) * step,
            "load",
            None,
        )
        for position in range(1, events + 1)
    )
    stream_rows = []
    for k in range(streams):
        last = k + 1 + ((events - k - 1) // streams) * streams
        stream_rows.append(
            (
                f"load-{k}",
                "load",
                (last - 1) // streams,
                k + 1,
                last,
                start + k * step,
                start + (last - 1) * step,
            )
        )
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        with conn:
            conn.executemany(insert_events, rows)
            conn.executemany(upsert_streams, stream_rows)
    finally:
        conn.close()


@pytest.fixture
def open_workspace(workspaces: list[RecordingWorkspace]) -> Any:
    def open_(path: Path) -> RecordingWorkspace:
        workspace = RecordingWorkspace(SqlEventStore.open(path, read_only=True))
        workspaces.append(workspace)
        return workspace

    return open_


def show_panel(qtbot: QtBot, workspace: Workspace, runner: TaskRunner) -> TimelinePanel:
    panel = TimelinePanel(workspace.events, runner)
    qtbot.addWidget(panel)
    panel.resize(1000, 300)
    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS):
        panel.show()
    return panel


def plotted(panel: TimelinePanel) -> tuple[list[float], list[int]]:
    """The bucket edges (epoch seconds) and counts, read back from the plot item."""
    x, y = panel.curve.getOriginalDataset()
    if x is None or y is None or len(x) == 0:
        return [], []
    # Step mode "right": one count per edge, the last one a closing 0.
    assert y[-1] == 0
    return [float(v) for v in x], [int(v) for v in y[:-1]]


def expected_buckets(edges: list[float], times: list[datetime]) -> Counter[int]:
    """Which bucket each time falls into ([edge i, edge i+1), the last one closed)."""
    found: Counter[int] = Counter()
    for moment in times:
        seconds = to_micros(moment) / 1e6
        if edges[0] <= seconds <= edges[-1]:
            found[min(bisect_right(edges, seconds) - 1, len(edges) - 2)] += 1
    return found


def nonzero(counts: list[int]) -> Counter[int]:
    return Counter({index: count for index, count in enumerate(counts) if count})


def test_the_chart_puts_every_event_in_its_bucket(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    # Unfiltered, the counts come from index probes, never from counting queries.
    assert workspace.counting.count_calls == 0

    edges, counts = plotted(panel)
    assert sum(counts) == workspace.events.count() == len(HISTORY)
    assert nonzero(counts) == expected_buckets(edges, [moment for *_, moment in HISTORY])
    # The whole history is in view, in buckets of a width people say aloud.
    low, high = panel.visible_range()
    assert low < BASE and high > HISTORY[-1][2]
    width = edges[1] - edges[0]
    assert panel.bucket_width_us == round(width * 1e6)
    assert panel.plot_widget.getPlotItem().getAxis("left").labelText == (
        f"events / {format_width(round(width * 1e6))}"
    )
    assert len(counts) <= MAX_BUCKETS


def test_a_type_filter_plots_only_those_events(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)

    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        panel.set_filter(EventFilter(types=("Refunded",)))

    assert loaded.args == [3]
    edges, counts = plotted(panel)
    refunds = [moment for _, kind, moment in HISTORY if kind == "Refunded"]
    assert nonzero(counts) == expected_buckets(edges, refunds)
    assert panel.message == ""

    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        panel.set_filter(EventFilter(types=("Shipped",)))
    assert loaded.args == [0]
    assert panel.message == "no matching events in this range"

    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        panel.set_filter(None)
    assert loaded.args == [len(HISTORY)]


def test_a_new_filter_cancels_the_count_still_running_for_the_old_one(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    placed = EventFilter(types=("Placed",))
    workspace.held_filter = placed
    calls = len(workspace.timeline_calls)
    panel.set_filter(placed)
    qtbot.waitUntil(lambda: len(workspace.timeline_calls) == calls + 1, timeout=SIGNAL_TIMEOUT_MS)

    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        panel.set_filter(EventFilter(types=("Refunded",)))

    assert loaded.args == [3]
    qtbot.waitUntil(lambda: workspace.cancelled == [placed], timeout=SIGNAL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert not workspace.release.is_set()
    assert not panel.loading


def test_zooming_in_loads_narrower_buckets_of_the_visible_range(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    wide = panel.bucket_width_us
    assert wide is not None
    queries = len(workspace.timeline_calls)

    # The first ten minutes, as a user zooming in would leave the view.
    low, high = BASE + timedelta(minutes=2, seconds=30), BASE + timedelta(minutes=7, seconds=30)
    view = panel.plot_widget.getPlotItem().getViewBox()
    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        view.setXRange(low.timestamp(), high.timestamp(), padding=0)

    assert len(workspace.timeline_calls) == queries + 1
    start, end, _, _ = workspace.timeline_calls[-1]
    assert start <= low and end >= high
    narrow = panel.bucket_width_us
    assert narrow is not None and narrow < wide
    edges, counts = plotted(panel)
    assert edges[0] <= low.timestamp() and edges[-1] >= high.timestamp()
    times = [moment for *_, moment in HISTORY]
    in_range = [t for t in times if edges[0] <= t.timestamp() <= edges[-1]]
    assert loaded.args == [sum(counts)] == [len(in_range)]
    assert 0 < len(in_range) < len(HISTORY)
    assert nonzero(counts) == expected_buckets(edges, times)

    # Back out: the whole history is counted again, in wider buckets.
    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        panel.reload()
    assert loaded.args == [len(HISTORY)]
    assert panel.bucket_width_us == wide


def test_a_burst_of_pans_loads_once_and_shows_only_the_last_view(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    workspace = open_workspace(tmp_path / "store.db")
    panel = show_panel(qtbot, workspace, runner)
    queries = len(workspace.timeline_calls)
    view = panel.plot_widget.getPlotItem().getViewBox()

    last = BASE + timedelta(hours=5, minutes=40), BASE + timedelta(hours=5, minutes=50)
    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        for minutes in range(0, 300, 30):
            moment = BASE + timedelta(minutes=minutes)
            view.setXRange(moment.timestamp(), (moment + timedelta(minutes=10)).timestamp())
        view.setXRange(last[0].timestamp(), last[1].timestamp(), padding=0)

    assert len(workspace.timeline_calls) == queries + 1
    assert loaded.args == [3]
    assert not panel.loading


def test_clicking_the_chart_selects_that_time(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    plot = panel.plot_widget
    view = plot.getPlotItem().getViewBox()
    low, high = panel.visible_range()
    (x_low, x_high), (y_low, y_high) = view.viewRange()
    target_x = x_low + (x_high - x_low) * 0.3
    point = plot.mapFromScene(view.mapViewToScene(QPointF(target_x, (y_low + y_high) / 2)))

    with qtbot.waitSignal(panel.time_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=point)

    (moment,) = selected.args
    assert isinstance(moment, datetime) and moment.tzinfo == UTC
    assert low <= moment <= high
    seconds_per_pixel = (x_high - x_low) / view.width()
    assert abs(moment.timestamp() - target_x) <= 2 * seconds_per_pixel
    assert panel.cursor_time == moment


def test_dragging_the_cursor_selects_where_it_stops(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    line = panel.cursor_line
    stop = BASE + timedelta(hours=2, minutes=30, seconds=2)

    with qtbot.waitSignal(panel.time_selected, timeout=SIGNAL_TIMEOUT_MS) as selected:
        line.setValue(stop.timestamp())  # what a drag does while it moves
        line.sigPositionChangeFinished.emit(line)  # and when the button is let go

    assert selected.args == [stop]


def test_set_cursor_moves_the_cursor_quietly(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    panel = show_panel(qtbot, open_workspace(tmp_path / "store.db"), runner)
    moment = BASE + timedelta(minutes=3, microseconds=250)

    with qtbot.assertNotEmitted(panel.time_selected, wait=50):
        panel.set_cursor(moment)

    assert panel.cursor_time == moment
    assert panel.cursor_line.label.toPlainText() == "2026-03-01 10:03:00"


def test_an_empty_store_says_so(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    SqlEventStore.open(tmp_path / "empty.db").close()
    panel = show_panel(qtbot, open_workspace(tmp_path / "empty.db"), runner)

    assert panel.message == "no events"
    assert plotted(panel) == ([], [])
    assert panel.cursor_time is None
    assert panel.loaded_range is None


def test_a_failed_query_is_reported_and_the_panel_recovers(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    build_store(tmp_path / "store.db", HISTORY)
    workspace = open_workspace(tmp_path / "store.db")
    workspace.counting.fail_with = StoreError("the disk is on fire")
    panel = TimelinePanel(workspace.events, runner)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.load_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        panel.show()

    assert failed.args == ["the disk is on fire"]
    assert panel.isVisible()
    assert "the disk is on fire" in panel.message

    workspace.counting.fail_with = None
    with qtbot.waitSignal(panel.timeline_loaded, timeout=SIGNAL_TIMEOUT_MS) as loaded:
        panel.reload()
    assert loaded.args == [len(HISTORY)]
    assert panel.message == ""


def test_a_million_events_load_with_index_probes_not_a_scan(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, open_workspace: Any
) -> None:
    events = 1_000_000
    build_big_store(tmp_path / "big.db", events)
    workspace = open_workspace(tmp_path / "big.db")
    panel = show_panel(qtbot, workspace, runner)

    assert len(workspace.timeline_calls) == 1
    (_, _, buckets, where) = workspace.timeline_calls[0]
    assert where is None
    # One probe per bucket edge: a few hundred queries, whatever the store's size.
    assert workspace.counting.position_at_calls == buckets + 1 <= MAX_BUCKETS + 1
    assert workspace.counting.count_calls == 0
    edges, counts = plotted(panel)
    assert sum(counts) == events
    # Events are evenly spaced, so full buckets hold the same number of them.
    width_s = edges[1] - edges[0]
    assert max(counts) == round(width_s * 10)


@pytest.mark.parametrize(
    ("span_us", "target", "width"),
    [
        (6 * 3_600_000_000, 290, "2 min"),
        (90 * 86_400_000_000, 330, "12 h"),
        (5_000_000, 300, "20 ms"),
        (400 * 365 * 86_400_000_000, 300, "2 y"),
    ],
)
def test_buckets_have_widths_people_say_aloud(span_us: int, target: int, width: str) -> None:
    start = to_micros(BASE) + 123
    plan = plan_buckets(start, start + span_us, target)
    assert format_width(plan.width_us) == width
    assert plan.count <= target
    assert plan.start_us <= start and plan.end_us >= start + span_us
    assert plan.start_us % plan.width_us == 0
    assert from_micros(plan.start_us).tzinfo == UTC


def test_sub_second_ticks_read_as_times_of_day(qtbot: QtBot) -> None:
    axis = UtcDateAxis(orientation="bottom", utcOffset=0)
    plot = pg.PlotWidget(axisItems={"bottom": axis})
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    start = datetime(2026, 12, 2, 4, 28, 45, tzinfo=UTC).timestamp()
    plot.setXRange(start, start + 2.5, padding=0)  # a few seconds: the millisecond level
    plot.show()
    qtbot.waitExposed(plot)
    qtbot.wait(50)  # painted: the axis knows its font
    low, high = axis.range
    levels = axis.tickValues(low, high, axis.width())
    spacing, values = next((sp, v) for sp, v in levels if sp < 1 and v)
    labels = axis.tickStrings(values, 1.0, spacing)
    whole = [label for label in labels if ":" in label]
    assert whole and all(re.fullmatch(r"04:28:4\d", label) for label in whole)  # time of day
    parts = [label for label in labels if ":" not in label]
    assert parts and all(re.fullmatch(r"4\d\.\d{3}", label) for label in parts)
