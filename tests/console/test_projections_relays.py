"""The projections panel's Relays section over a real SQLite store and real relays (issue
18): one that published to the machine's NATS, one whose broker was down, what each column
shows while they run and after, a relay appearing later, the empty state, a failed read."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QSplitter
from pytestqt.qtbot import QtBot

from console.colours import error_colour, hint_colour
from console.main_window import MainWindow
from console.panels.projections import ProjectionsPanel
from console.panels.projections.relays import (
    EMPTY_TEXT,
    RELAY_COLUMN_CHECKPOINT,
    RELAY_COLUMN_ERROR,
    RELAY_COLUMN_LAG,
    RELAY_COLUMN_RATE,
    RELAY_COLUMN_STATE,
    RELAY_COLUMN_WORKER,
    RelaysSection,
)
from console.workers import TaskRunner
from core.errors import StoreBusy
from core.relay.relay import Relay, RelayFaulted, RelayStatus, relay_statuses
from core.workspace import Workspace
from tests.core.relay.brokers import (
    AMQP,
    NATS,
    delete_exchange,
    delete_stream,
    needs_nats,
    needs_rabbit,
    relay_to,
    run_until,
    seed,
)

TIMEOUT_MS = 20_000
EVENTS = 200
#: Nothing listens on port 1: every connection is refused at once.
DOWN = "nats://127.0.0.1:1"
TIME = r"\d\d:\d\d:\d\d"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    seed(path, EVENTS)
    return path


@pytest.fixture
def jetstream() -> Iterator[tuple[str, str]]:
    """A JetStream stream of its own (name, subject template), deleted afterwards."""
    name = f"T{uuid.uuid4().hex[:10].upper()}"
    yield name, f"t{name.lower()}.{{category}}.{{type}}"
    asyncio.run(delete_stream(name))


def to_nats(workspace: Workspace, jetstream: tuple[str, str], name: str, **options: Any) -> Relay:
    stream, subject = jetstream
    return relay_to(workspace, NATS, subject=subject, jetstream_stream=stream, name=name, **options)


def to_nowhere(workspace: Workspace, name: str, **options: Any) -> Relay:
    return relay_to(workspace, DOWN, name=name, timeout=0.5, backoff=(0.05, 0.2), **options)


def writable(store: Path) -> Workspace:
    return Workspace.open(str(store), read_only=False, load_plugins=False)


def publish_all(store: Path, jetstream: tuple[str, str], name: str) -> None:
    """A relay that publishes every event to NATS, then stops."""
    with writable(store) as workspace:
        relay = to_nats(workspace, jetstream, name, batch_size=50)
        head = workspace.events.head_position()
        run_until(relay, lambda: relay.checkpoint == head)


def fail_once(store: Path, name: str) -> None:
    """A relay whose broker is down, run until it failed, then stopped."""
    with writable(store) as workspace:
        relay = to_nowhere(workspace, name)
        run_until(relay, lambda: relay.last_error is not None)


@contextmanager
def running(relay: Relay, ready: Callable[[], bool]) -> Iterator[Relay]:
    """``relay`` running on a thread of its own, once ``ready``; stopped on the way out."""
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not ready() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready(), "the relay did not get there in time"
        yield relay
    finally:
        stop.set()
        thread.join(30)


@pytest.fixture
def open_panel(qtbot: QtBot, runner: TaskRunner, workspaces: list[Workspace]) -> Any:
    """A projections panel on ``store`` (read-only, as the console of another process),
    its relays read as the window reads them; shown once the relays are."""

    def open_(
        store: Path, relays: Callable[[Workspace], Sequence[RelayStatus]] = relay_statuses
    ) -> ProjectionsPanel:
        workspace = Workspace.open(str(store), load_plugins=False)
        workspaces.append(workspace)
        panel = ProjectionsPanel(
            workspace.projections,
            runner,
            events=workspace.events,
            relays=lambda: relays(workspace),
        )
        qtbot.addWidget(panel)
        panel.resize(1180, 660)
        with qtbot.waitSignals([section(panel).relays_shown, panel.statuses_shown]):
            panel.show()
        return panel

    return open_


def section(panel: ProjectionsPanel) -> RelaysSection:
    assert panel.relays is not None
    return panel.relays


def cells(panel: ProjectionsPanel, name: str) -> list[str]:
    model = section(panel).model
    row = model.row_of(name)
    assert row is not None, name
    return [str(model.data(model.index(row, column))) for column in range(model.columnCount())]


def cell(panel: ProjectionsPanel, name: str, column: int, role: int = 0) -> Any:
    model = section(panel).model
    row = model.row_of(name)
    assert row is not None, name
    return model.data(model.index(row, column), role)


def refreshed(qtbot: QtBot, panel: ProjectionsPanel) -> None:
    with qtbot.waitSignal(section(panel).relays_shown, timeout=TIMEOUT_MS):
        panel.refresh()


@needs_nats
def test_each_relay_shows_its_state_checkpoint_lag_rate_worker_and_last_error(
    qtbot: QtBot, qtmodeltester: Any, store: Path, jetstream: tuple[str, str], open_panel: Any
) -> None:
    publish_all(store, jetstream, "to-nats")
    fail_once(store, "to-nowhere")
    on_gui_thread: list[bool] = []

    def read(workspace: Workspace) -> list[RelayStatus]:
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return relay_statuses(workspace)

    panel = open_panel(store, read)
    relays = section(panel)

    assert on_gui_thread == [False]
    assert relays.view.isVisible()
    assert relays.summary_label.text() == "2 relay(s): 2 stopped"
    name, state, checkpoint, lag, lag_time, rate, worker, error = cells(panel, "to-nats")
    assert (name, state, checkpoint, lag, lag_time, worker, error) == (
        "to-nats", "stopped", f"{EVENTS} / {EVENTS}", "0", "0", "—", "—",
    )  # fmt: skip
    assert rate == "0"  # a stopped relay publishes nothing, whatever it did last minute
    name, state, checkpoint, lag, lag_time, rate, worker, error = cells(panel, "to-nowhere")
    assert (name, state, checkpoint, lag, rate, worker) == (
        "to-nowhere", "stopped", f"0 / {EVENTS}", f"{EVENTS}", "0", "—",
    )  # fmt: skip
    assert re.fullmatch(r"\d+ ms|\d+\.\d s|\d+ min \d+ s", lag_time), lag_time
    assert re.fullmatch(
        rf"{TIME} cannot connect to nats://127\.0\.0\.1:1: .*refused.*", error, re.I
    )
    tip = cell(panel, "to-nowhere", RELAY_COLUMN_ERROR, Qt.ItemDataRole.ToolTipRole)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z\ncannot connect to nats://127", tip)
    assert tip.split("\n", 1)[0][11:19] == error[:8]  # the same moment, in full
    grey = hint_colour(relays.palette())
    assert cell(panel, "to-nats", RELAY_COLUMN_STATE, Qt.ItemDataRole.ForegroundRole) == grey
    assert cell(panel, "to-nowhere", RELAY_COLUMN_ERROR, Qt.ItemDataRole.ForegroundRole) == grey
    qtmodeltester.check(relays.model)


@needs_nats
def test_running_relays_show_their_worker_and_a_broker_down_shows_unavailable_then_stopped(
    qtbot: QtBot, store: Path, jetstream: tuple[str, str], open_panel: Any
) -> None:
    panel = open_panel(store)
    assert section(panel).model.rowCount() == 0
    with writable(store) as publishing, writable(store) as failing:
        good = to_nats(publishing, jetstream, "to-nats", worker="relay:test:1")
        bad = to_nowhere(failing, "to-nowhere", worker="relay:test:2")
        with running(good, lambda: good.checkpoint == EVENTS):
            with running(bad, lambda: bad.last_error is not None):
                refreshed(qtbot, panel)
                qtbot.waitUntil(
                    lambda: cells(panel, "to-nats")[RELAY_COLUMN_RATE] != "0", timeout=TIMEOUT_MS
                )  # its first run record is written once it has caught up

                name, state, checkpoint, lag, lag_time, rate, worker, error = cells(
                    panel, "to-nats"
                )
                assert (name, state, checkpoint, lag, lag_time, worker, error) == (
                    "to-nats", "caught up", f"{EVENTS} / {EVENTS}", "0", "0", "relay:test:1", "—",
                )  # fmt: skip
                assert re.fullmatch(r"[\d,.]+ ev/s", rate), rate
                unavailable = cells(panel, "to-nowhere")
                assert unavailable[RELAY_COLUMN_STATE] == "broker unavailable"
                assert unavailable[RELAY_COLUMN_WORKER] == "relay:test:2"
                assert unavailable[RELAY_COLUMN_LAG] == f"{EVENTS}"
                assert "cannot connect to nats://127.0.0.1:1" in unavailable[RELAY_COLUMN_ERROR]
                red = error_colour(section(panel).palette())
                for column in (RELAY_COLUMN_STATE, RELAY_COLUMN_ERROR):
                    foreground = cell(panel, "to-nowhere", column, Qt.ItemDataRole.ForegroundRole)
                    assert foreground == red
                assert (
                    cell(panel, "to-nats", RELAY_COLUMN_STATE, Qt.ItemDataRole.ForegroundRole)
                    is None
                )
                assert section(panel).summary_label.text() == (
                    "2 relay(s): 1 broker unavailable, 1 caught up"
                )
                error = unavailable[RELAY_COLUMN_ERROR]

            refreshed(qtbot, panel)  # the failing relay has stopped
            after = cells(panel, "to-nowhere")
            assert after[RELAY_COLUMN_STATE] == "stopped"
            assert after[RELAY_COLUMN_WORKER] == "—"
            assert after[RELAY_COLUMN_ERROR] == error  # its last error stays, with when
            assert after[RELAY_COLUMN_CHECKPOINT] == f"0 / {EVENTS}"
            assert cells(panel, "to-nats")[RELAY_COLUMN_STATE] == "caught up"


def test_no_relay_ever_ran_says_how_to_start_one_in_one_muted_line(
    qtbot: QtBot, store: Path, open_panel: Any
) -> None:
    panel = open_panel(store)
    relays = section(panel)

    assert relays.summary_label.text() == EMPTY_TEXT
    assert "eventscope relay nats://host:port" in EMPTY_TEXT
    assert relays.summary_label.isVisible()
    assert not relays.view.isVisible()
    assert relays.height() < 2.5 * relays.fontMetrics().height()  # one line
    colour = relays.summary_label.palette().color(relays.summary_label.foregroundRole())
    assert colour == hint_colour(relays.palette())
    splitter = panel.findChild(QSplitter, "projectionsAndRelays")
    splitter.setSizes([300, 300])  # dragged down: no empty gap opens
    assert relays.height() < 2.5 * relays.fontMetrics().height()


def test_a_relay_that_runs_later_shows_at_the_next_beat_and_the_section_grows(
    qtbot: QtBot, store: Path, open_panel: Any
) -> None:
    panel = open_panel(store)
    relays = section(panel)
    empty_height = relays.height()

    fail_once(store, "to-nowhere")  # nobody asks the panel to refresh: its timer does
    with qtbot.waitSignal(
        relays.relays_shown, timeout=TIMEOUT_MS, check_params_cb=lambda shown: shown == 1
    ):
        pass

    assert cells(panel, "to-nowhere")[RELAY_COLUMN_STATE] == "stopped"
    assert relays.view.isVisible()
    assert relays.summary_label.text() == "1 relay(s): 1 stopped"
    qtbot.waitUntil(lambda: relays.height() > empty_height + relays.view.rowHeight(0))
    assert panel.view.isVisible() or panel.empty_label.isVisible()  # projections still there


def test_a_failed_read_shows_one_line_and_the_next_read_shows_the_relays(
    qtbot: QtBot, store: Path, runner: TaskRunner, workspaces: list[Workspace]
) -> None:
    fail_once(store, "to-nowhere")
    workspace = Workspace.open(str(store), load_plugins=False)
    workspaces.append(workspace)
    failures = [StoreBusy("the store is busy\ndatabase is locked")]

    def read() -> list[RelayStatus]:
        if failures:
            raise failures.pop()
        return relay_statuses(workspace)

    panel = ProjectionsPanel(workspace.projections, runner, relays=read)
    qtbot.addWidget(panel)
    relays = section(panel)
    with qtbot.waitSignal(relays.load_failed, timeout=TIMEOUT_MS) as failed:
        panel.show()

    assert failed.args == ["database is locked"]
    assert relays.summary_label.text() == "could not read the relays: database is locked"
    colour = relays.summary_label.palette().color(relays.summary_label.foregroundRole())
    assert colour == error_colour(relays.palette())
    assert QApplication.activeModalWidget() is None  # no dialog
    assert relays.height() < 2.5 * relays.fontMetrics().height()

    refreshed(qtbot, panel)
    assert cells(panel, "to-nowhere")[RELAY_COLUMN_STATE] == "stopped"
    assert relays.summary_label.text() == "1 relay(s): 1 stopped"
    colour = relays.summary_label.palette().color(relays.summary_label.foregroundRole())
    assert colour == hint_colour(relays.palette())


def test_the_window_shows_the_relays_below_the_projections(
    qtbot: QtBot, store: Path, runner: TaskRunner, workspaces: list[Workspace],
    windows: list[MainWindow],
) -> None:  # fmt: skip
    fail_once(store, "to-nowhere")
    workspace = Workspace.open(str(store), load_plugins=False)
    workspaces.append(workspace)
    window = MainWindow(workspace, runner)
    windows.append(window)
    window.show()
    relays = section(window.projections_panel)

    with qtbot.waitSignal(relays.relays_shown, timeout=TIMEOUT_MS):
        window.projections_dock.show()

    assert cells(window.projections_panel, "to-nowhere")[RELAY_COLUMN_STATE] == "stopped"
    assert relays.isVisible()
    panel = window.projections_panel
    above = panel.view if panel.view.isVisible() else panel.empty_label
    assert (
        above.mapTo(panel, above.rect().bottomLeft()).y()
        <= relays.mapTo(panel, relays.rect().topLeft()).y()
    )


@needs_rabbit
def test_a_faulted_relay_shows_in_red_first_in_the_summary_and_says_how_to_go_on(
    qtbot: QtBot, store: Path, open_panel: Any
) -> None:
    exchange = f"t-{uuid.uuid4().hex[:10]}"
    with writable(store) as workspace:
        workspace.writing.append("order-9", "T" * 256)  # a 262-byte routing key
        relay = relay_to(workspace, AMQP, exchange=exchange, name="to-rabbit")
        with pytest.raises(RelayFaulted):
            run_until(relay, lambda: False)
    asyncio.run(delete_exchange(exchange))
    fail_once(store, "to-nowhere")

    panel = open_panel(store)

    assert section(panel).summary_label.text() == "2 relay(s): 1 faulted, 1 stopped"
    name, state, checkpoint, lag, _time, rate, worker, error = cells(panel, "to-rabbit")
    assert (name, state, checkpoint, lag, rate, worker) == (
        "to-rabbit", "faulted", f"{EVENTS} / {EVENTS + 1}", "1", "0", "—",
    )  # fmt: skip
    assert re.fullmatch(
        rf"{TIME} position {EVENTS + 1}: routing key of 262 bytes: AMQP takes at most 255", error
    )
    red = error_colour(section(panel).palette())
    assert cell(panel, "to-rabbit", RELAY_COLUMN_ERROR, Qt.ItemDataRole.ForegroundRole) == red
    tip = cell(panel, "to-rabbit", RELAY_COLUMN_STATE, Qt.ItemDataRole.ToolTipRole)
    assert "--skip-fault" in tip
