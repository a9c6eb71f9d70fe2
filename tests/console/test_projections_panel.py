"""The projections panel over real SQLite stores: statuses, charts from the run history,
the audited actions, faults, a cancelled rebuild, and the window keeping it current."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from pytestqt.qtbot import QtBot

from console.main_window import MainWindow
from console.panels.projections import ProjectionsPanel
from console.panels.projections.actions import ACTIONS
from console.panels.projections.model import (
    COLUMN_CHECKPOINT,
    COLUMN_LAG,
    COLUMN_PROJECTION,
    COLUMN_STATE,
)
from console.panels.projections.panel import EMPTY_TEXT, READ_ONLY_TEXT
from console.workers import TaskRunner
from core.events import RecordedEvent
from core.services.writing import AUDIT_STREAM
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

TIMEOUT_MS = 20_000
SHOWN = "order_summary:1"
RUNS = 3  # runs of each projection before a panel opens


def seed(location: str, *, orders: int = 40, run: tuple[str, ...] = (SHOWN,)) -> int:
    """A demo history; the projections named run to the head in ``RUNS`` runs each.
    Returns the head."""
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.write_demo("orders", orders=orders, seed=7)
        head = workspace.events.head_position()
        for reference in run:
            for step in range(1, RUNS + 1):
                workspace.projections.run(reference, until=head * step // RUNS, worker="seed")
        return head


@pytest.fixture
def store(tmp_path: Path) -> str:
    location = str(tmp_path / "shop.db")
    seed(location)
    return location


@pytest.fixture
def open_panel(qtbot: QtBot, runner: TaskRunner, workspaces: list[Workspace]) -> Any:
    def open_(location: str, *, writable: bool = True, **options: Any) -> ProjectionsPanel:
        workspace = Workspace.open(location, read_only=not writable, **options)
        workspaces.append(workspace)
        panel = ProjectionsPanel(workspace.projections, runner, events=workspace.events)
        qtbot.addWidget(panel)
        panel.set_writable(writable)
        panel.resize(1180, 660)
        with qtbot.waitSignal(panel.statuses_shown, timeout=TIMEOUT_MS):
            panel.show()
        return panel

    return open_


def cell(panel: ProjectionsPanel, reference: str, column: int) -> str:
    row = panel.model.row_of(reference)
    assert row is not None, reference
    return str(panel.model.data(panel.model.index(row, column)))


def select(qtbot: QtBot, panel: ProjectionsPanel, reference: str) -> None:
    """Click the version's row and wait for its runs."""
    row = panel.model.row_of(reference)
    assert row is not None
    rect = panel.view.visualRect(panel.model.index(row, COLUMN_PROJECTION))
    if panel.selected_reference == reference:
        return
    with qtbot.waitSignal(panel.history_shown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def click(qtbot: QtBot, panel: ProjectionsPanel, name: str) -> None:
    button = panel.action_button(name)
    assert button.isEnabled(), name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_for_state(qtbot: QtBot, panel: ProjectionsPanel, reference: str, state: str) -> None:
    qtbot.waitUntil(lambda: cell(panel, reference, COLUMN_STATE) == state, timeout=TIMEOUT_MS)


_PROBES: dict[str, Workspace] = {}


def probe(location: str) -> Workspace:
    """One read-only workspace kept open per store (opening one again and again races
    SQLite's WAL files with the writers' closes)."""
    opened = _PROBES.get(location)
    if opened is None:
        opened = _PROBES[location] = Workspace.open(location)
    return opened


@pytest.fixture(autouse=True)
def _close_probes() -> Any:
    yield
    for opened in _PROBES.values():
        opened.close()
    _PROBES.clear()


def audited(location: str) -> list[RecordedEvent]:
    return list(probe(location).events.read_stream(AUDIT_STREAM))


def status(location: str, reference: str = SHOWN) -> Any:
    return probe(location).projections.status(reference)


def test_every_version_is_listed_with_its_state_checkpoint_and_lag(
    qtbot: QtBot, qtmodeltester: Any, store: str, open_panel: Any
) -> None:
    panel = open_panel(store, writable=False)
    head = status(store).head

    references = [
        str(panel.model.data(panel.model.index(row, COLUMN_PROJECTION)))
        for row in range(panel.model.rowCount())
    ]
    assert references == ["customer_stats:1", "daily_revenue:1", SHOWN, "order_summary:2"]
    assert cell(panel, SHOWN, COLUMN_STATE) == "caught up"
    assert cell(panel, SHOWN, COLUMN_CHECKPOINT) == f"{head:,} / {head:,}"
    assert cell(panel, SHOWN, COLUMN_LAG) == "0"
    assert cell(panel, "order_summary:2", COLUMN_STATE) == "never run"
    assert cell(panel, "order_summary:2", COLUMN_LAG).startswith(f"{head:,} ev · ")
    qtmodeltester.check(panel.model)


def test_the_selection_survives_a_refresh(qtbot: QtBot, store: str, open_panel: Any) -> None:
    panel = open_panel(store, writable=False)
    select(qtbot, panel, "order_summary:2")

    with qtbot.waitSignal(panel.statuses_shown, timeout=TIMEOUT_MS):
        panel.refresh()

    assert panel.selected_reference == "order_summary:2"
    assert panel.view.currentIndex().row() == panel.model.row_of("order_summary:2")


def test_the_charts_and_the_runs_come_from_the_history_stored_before_it_opened(
    qtbot: QtBot, qtmodeltester: Any, store: str, open_panel: Any
) -> None:
    panel = open_panel(store, writable=False)
    head = status(store).head
    select(qtbot, panel, "order_summary:2")  # then back: the runs load for the click
    select(qtbot, panel, SHOWN)

    assert panel.runs_model.rowCount() == RUNS
    newest = panel.runs_model.run_at(0)
    assert (newest.to_position, newest.worker, newest.outcome) == (head, "seed", "ok")
    times, lags = panel.chart.lag_curve.getData()
    # Every event was recorded before the first run: it started with all of them to do,
    # each run ended with less, and none is left now.
    assert len(times) == 2 * RUNS + 1
    assert list(lags[:2]) == [head, head - head // RUNS]
    assert lags[-1] == 0
    assert list(times) == sorted(times)
    _times, rates = panel.chart.rate_points.getData()
    assert len(rates) == RUNS and all(rate > 0 for rate in rates)
    assert panel.chart.message == ""
    qtmodeltester.check(panel.runs_model)


def test_a_version_never_run_says_so_over_its_chart(
    qtbot: QtBot, store: str, open_panel: Any
) -> None:
    panel = open_panel(store, writable=False)
    select(qtbot, panel, "order_summary:2")

    assert panel.runs_model.rowCount() == 0
    assert panel.chart.message == "order_summary:2: no runs in the last hour"


def test_pause_and_resume_change_the_state_and_are_audited(
    qtbot: QtBot, store: str, open_panel: Any
) -> None:
    panel = open_panel(store)
    select(qtbot, panel, SHOWN)
    assert not panel.action("resume").isEnabled()

    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS) as done:
        click(qtbot, panel, "pause")
    assert done.args == ["pause", SHOWN]
    wait_for_state(qtbot, panel, SHOWN, "paused")
    assert panel.action("resume").isEnabled()
    assert not panel.action("pause").isEnabled()
    last = audited(store)[-1]
    assert (last.type, last.data["projection"]) == ("ProjectionPaused", SHOWN)

    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        click(qtbot, panel, "resume")
    wait_for_state(qtbot, panel, SHOWN, "behind")  # the $audit events moved the head
    assert audited(store)[-1].type == "ProjectionResumed"
    assert panel.message_label.text() == f"Resume {SHOWN}: done"


def test_reset_asks_naming_what_is_lost_and_no_changes_nothing(
    qtbot: QtBot, store: str, open_panel: Any
) -> None:
    panel = open_panel(store)
    select(qtbot, panel, SHOWN)
    before = len(audited(store))
    questions: list[str] = []
    answer = [False]

    def confirm(_parent: object, _title: str, question: str) -> bool:
        questions.append(question)
        return answer[0]

    panel.confirm = confirm
    with qtbot.waitSignal(panel.action_cancelled, timeout=TIMEOUT_MS):
        click(qtbot, panel, "reset")
    assert questions[0].startswith(f"Reset {SHOWN}? Its ")
    assert "document versions and their history are dropped" in questions[0]
    assert "rebuilds from event 1" in questions[0]
    assert status(store).checkpoint == status(store).head  # untouched
    assert len(audited(store)) == before

    answer[0] = True
    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        click(qtbot, panel, "reset")
    assert status(store).checkpoint == 0
    wait_for_state(qtbot, panel, SHOWN, "behind")
    last = audited(store)[-1]
    assert (last.type, last.data["projection"]) == ("ProjectionReset", SHOWN)


def test_retain_asks_the_position_then_names_it_and_is_audited(
    qtbot: QtBot, store: str, open_panel: Any
) -> None:
    panel = open_panel(store)
    select(qtbot, panel, SHOWN)
    since = status(store).checkpoint // 2
    asked: list[str] = []
    panel.ask_position = lambda _parent, shown: asked.append(shown.reference) or since
    questions: list[str] = []
    panel.confirm = lambda _parent, _title, question: questions.append(question) or True

    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        panel.view.actions()[[a.text() for a in panel.view.actions()].index("Retain…")].trigger()

    assert asked == [SHOWN]
    assert questions[0].startswith(f"Keep {SHOWN}'s history from position {since} on?")
    last = audited(store)[-1]
    assert (last.type, last.data["since"]) == ("ProjectionHistoryRetained", since)
    qtbot.waitUntil(lambda: f"history kept from position {since:,}" in panel.details.toPlainText())


def test_retire_and_run_now_change_the_version(qtbot: QtBot, store: str, open_panel: Any) -> None:
    panel = open_panel(store)
    select(qtbot, panel, "order_summary:2")
    panel.confirm = lambda _parent, _title, question: question.startswith("Retire order_summary:2?")

    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        click(qtbot, panel, "retire")
    wait_for_state(qtbot, panel, "order_summary:2", "retired")
    assert not panel.action("run").isEnabled()
    assert audited(store)[-1].type == "ProjectionRetired"

    select(qtbot, panel, "customer_stats:1")
    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        click(qtbot, panel, "run")
    after = status(store, "customer_stats:1")
    assert after.checkpoint == after.head > 0
    assert probe(store).projections.runs("customer_stats:1", limit=1)[0].worker == panel.worker
    requested = audited(store)[-1]  # who asked for the run, before it ran
    assert requested.type == "ProjectionRunRequested"
    assert requested.data["projection"] == "customer_stats:1"
    assert requested.data["worker"] == panel.worker and requested.data["user"]


def test_not_writable_every_action_is_disabled(qtbot: QtBot, store: str, open_panel: Any) -> None:
    panel = open_panel(store, writable=False)
    select(qtbot, panel, SHOWN)

    assert not any(panel.action(spec.name).isEnabled() for spec in ACTIONS)
    assert panel.message_label.text() == READ_ONLY_TEXT

    panel.set_writable(True)
    assert panel.action("pause").isEnabled() and panel.action("rebuild").isEnabled()
    assert not panel.action("skip").isEnabled()  # nothing to skip: it is not faulted


def test_an_action_the_store_refuses_shows_one_line(
    qtbot: QtBot, store: str, open_panel: Any
) -> None:
    panel = open_panel(store, writable=False)
    select(qtbot, panel, SHOWN)
    panel.set_writable(True)  # as if the window thought so: the store says otherwise

    with qtbot.waitSignal(panel.action_failed, timeout=TIMEOUT_MS) as failed:
        click(qtbot, panel, "pause")

    assert failed.args[:2] == ["pause", SHOWN]
    text = panel.message_label.text()
    assert text.startswith(f"Pause {SHOWN} failed: ") and "read-only" in text
    assert "\n" not in text and "Traceback" not in text
    assert panel.action("pause").isEnabled()  # the panel is not stuck


def test_a_rebuild_another_worker_holds_says_who_in_one_line(
    qtbot: QtBot, store: str, open_panel: Any
) -> None:
    panel = open_panel(store)
    select(qtbot, panel, SHOWN)
    with Workspace.open(store, read_only=False) as other:
        other.projections.take_lease(SHOWN, "worker-7", 300)

    with qtbot.waitSignal(panel.action_failed, timeout=TIMEOUT_MS) as failed:
        click(qtbot, panel, "rebuild")

    assert "being run by worker worker-7" in failed.args[2]
    assert panel.message_label.text() == f"Rebuild {SHOWN} failed: {failed.args[2]}"
    assert not panel.progress_bar.isVisible()
    assert status(store).checkpoint == status(store).head  # nothing was reset


@pytest.fixture
def faulted(tmp_path: Path) -> tuple[str, RecordedEvent]:
    """A store whose order_summary:1 faulted on an OrderPlaced without data."""
    location = str(tmp_path / "faulted.db")
    seed(location)
    with Workspace.open(location, read_only=False) as workspace:
        bad = workspace.writing.append("order-bad", "OrderPlaced", {}, {"schema_version": 2})
        workspace.writing.append("order-later", "CustomerRegistered", {"customer_id": "X"})
        result = workspace.projections.run(SHOWN)
        assert result.fault is not None
    return location, bad


def test_a_faulted_version_shows_its_traceback_and_links_to_its_event(
    qtbot: QtBot, faulted: tuple[str, RecordedEvent], open_panel: Any
) -> None:
    location, bad = faulted
    panel = open_panel(location)
    select(qtbot, panel, SHOWN)

    assert cell(panel, SHOWN, COLUMN_STATE) == "faulted"
    assert panel.tabs.currentIndex() == 1  # the details, where the fault is
    details = panel.details.toPlainText()
    assert f"faulted at position {bad.position} (event {bad.event_id})" in details
    assert "Traceback (most recent call last)" in details
    assert "KeyError" in details
    assert panel.action("retry").isEnabled() and panel.action("skip").isEnabled()
    assert not panel.action("pause").isEnabled()

    with qtbot.waitSignal(panel.event_requested, timeout=TIMEOUT_MS) as requested:
        qtbot.mouseClick(panel.show_event_button, Qt.MouseButton.LeftButton)
    assert requested.args == [bad.event_id]


def test_skip_names_the_event_it_steps_over_and_goes_on(
    qtbot: QtBot, faulted: tuple[str, RecordedEvent], open_panel: Any
) -> None:
    location, bad = faulted
    panel = open_panel(location)
    select(qtbot, panel, SHOWN)
    questions: list[str] = []
    panel.confirm = lambda _parent, _title, question: questions.append(question) or True

    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        click(qtbot, panel, "skip")

    assert questions == [
        f"Skip event {bad.position} ({bad.event_id}) in {SHOWN}? The read model will never "
        "apply that event; it goes on with the next one."
    ]
    qtbot.waitUntil(lambda: cell(panel, SHOWN, COLUMN_STATE) != "faulted", timeout=TIMEOUT_MS)
    assert not panel.show_event_button.isEnabled()
    last = audited(location)[-1]
    assert last.type == "ProjectionEventSkipped"
    assert (last.data["position"], last.data["event_id"]) == (bad.position, bad.event_id)


def test_rebuild_shows_progress_and_cancel_stops_it_midway(
    qtbot: QtBot, tmp_path: Path, open_panel: Any
) -> None:
    location = str(tmp_path / "big.db")
    head = seed(location, orders=300)
    panel = open_panel(location)
    panel.batch_size = 1  # a commit per event: the cancel lands long before the end
    select(qtbot, panel, SHOWN)
    shown: list[str] = []

    def cancel_at_first_progress(value: int) -> None:
        if value > 0 and not shown:
            shown.append(panel.progress_label.text())
            qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)

    panel.progress_bar.valueChanged.connect(cancel_at_first_progress)
    panel.confirm = lambda _parent, _title, _question: pytest.fail("a rebuild asks nothing")
    with qtbot.waitSignal(panel.action_cancelled, timeout=TIMEOUT_MS) as cancelled:
        click(qtbot, panel, "rebuild")
    panel.progress_bar.valueChanged.disconnect(cancel_at_first_progress)

    assert cancelled.args == ["rebuild", SHOWN]
    total = head + 1  # the reset's $audit event is in the log too
    assert shown and f"/{total:,} events (" in shown[0] and "events/s" in shown[0]
    assert panel.progress_bar.maximum() == total
    after = status(location)
    assert 0 < after.checkpoint < after.head
    assert panel.message_label.text().startswith(f"Rebuild {SHOWN} cancelled (")
    assert not panel.progress_bar.isVisible()
    assert panel.action("rebuild").isEnabled()
    last = audited(location)[-1]
    assert (last.type, last.data["projection"], last.data["rebuild"]) == (
        "ProjectionReset",
        SHOWN,
        True,
    )


def test_no_projection_at_all_says_how_to_add_one(
    qtbot: QtBot, store: str, open_panel: Any
) -> None:
    panel = open_panel(store, writable=False, load_plugins=False)

    assert panel.model.rowCount() == 0
    assert panel.empty_label.isVisible()
    assert panel.empty_label.text() == EMPTY_TEXT


# -- in the window ---------------------------------------------------------------------------


@pytest.fixture
def open_window(
    qtbot: QtBot, runner: TaskRunner, workspaces: list[Workspace]
) -> Iterator[Callable[..., MainWindow]]:
    """Opens windows; each is closed and deleted on the GUI thread before the runner
    and the workspaces go (as ``console.app`` disposes of a window)."""
    opened: list[MainWindow] = []

    def open_(location: str, *, writable: bool) -> MainWindow:
        workspace = Workspace.open(location, read_only=not writable)
        workspaces.append(workspace)
        window = MainWindow(workspace, runner)
        opened.append(window)
        qtbot.addWidget(window)
        window.show()
        window.projections_dock.show()
        return window

    yield open_
    for window in opened:
        window.close()
        window.in_app_projections.shut_down()
        window.deleteLater()
    opened.clear()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def test_the_window_enables_the_actions_only_while_writable(
    qtbot: QtBot, store: str, open_window: Any
) -> None:
    window = open_window(store, writable=False)
    panel = window.projections_panel
    assert window.projections_dock.objectName() == "projectionsDock"
    assert window.projections_dock.toggleViewAction().text() == "Projections"
    qtbot.waitUntil(lambda: panel.selected_reference is not None, timeout=TIMEOUT_MS)
    assert not any(panel.action(spec.name).isEnabled() for spec in ACTIONS)

    other = open_window(store, writable=True)
    writable = other.projections_panel
    qtbot.waitUntil(lambda: writable.selected_reference is not None, timeout=TIMEOUT_MS)
    assert writable.action("rebuild").isEnabled()


def test_the_event_link_selects_the_event_in_the_log(
    qtbot: QtBot, faulted: tuple[str, RecordedEvent], open_window: Any
) -> None:
    location, bad = faulted
    window = open_window(location, writable=False)
    panel = window.projections_panel
    qtbot.waitUntil(lambda: panel.model.row_of(SHOWN) is not None, timeout=TIMEOUT_MS)
    select(qtbot, panel, SHOWN)

    qtbot.mouseClick(panel.show_event_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(
        lambda: (
            window.inspector.event is not None and window.inspector.event.event_id == bad.event_id
        ),
        timeout=TIMEOUT_MS,
    )


def test_an_event_appended_by_another_process_shows_as_the_new_head_then_caught_up(
    qtbot: QtBot, store: str, open_window: Any
) -> None:
    window = open_window(store, writable=True)
    panel = window.projections_panel
    qtbot.waitUntil(
        lambda: (
            panel.model.rowCount() == 4
            and all(
                cell(panel, panel.model.status_at(row).reference, COLUMN_LAG) == "0"
                for row in range(4)
            )
        ),
        timeout=TIMEOUT_MS,
    )
    head = status(store).head

    placed = {
        "order_id": "99999",
        "customer_id": "C0001",
        "items": [{"sku": "KETTLE-GOOSENECK", "quantity": 1, "unit_price_cents": 4500}],
        "currency": "EUR",
    }
    appended = subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", store, "append", "order-99999",
         "OrderPlaced", "--data", json.dumps(placed), "--metadata", '{"schema_version": 2}'],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert appended.returncode == 0, appended.stderr

    new_head = head + 1
    qtbot.waitUntil(
        lambda: (
            cell(panel, SHOWN, COLUMN_CHECKPOINT) == f"{new_head:,} / {new_head:,}"
            and cell(panel, SHOWN, COLUMN_LAG) == "0"
            and cell(panel, SHOWN, COLUMN_STATE) == "caught up"
        ),
        timeout=TIMEOUT_MS,
    )
    timetravel = probe(store).timetravel
    assert timetravel.document(timetravel.locate(SHOWN), "99999") is not None
