"""The inspector on demo events, alone and wired into the main window's event log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from console.main_window import MainWindow
from console.panels.inspector import InspectorPanel
from console.workers import TaskRunner
from core.events import RecordedEvent
from core.store import EventFilter
from core.store.port import search_words
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 5_000


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    location = str(tmp_path_factory.mktemp("demo") / "demo.db")
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.write_demo("orders", orders=120, seed=7)
    return location


@pytest.fixture
def workspace(demo_store: str) -> Iterator[Workspace]:
    with Workspace.open(demo_store) as opened:
        yield opened


@pytest.fixture
def runner(qapp: Any, workspace: Workspace) -> Iterator[TaskRunner]:
    runner = TaskRunner()
    yield runner
    assert runner.shutdown()


def schema_1_order_placed(workspace: Workspace) -> RecordedEvent:
    for event in workspace.events.read(EventFilter(types=("OrderPlaced",))):
        if event.metadata.get("schema_version") == 1:
            return event
    raise AssertionError("the demo has no schema-1 OrderPlaced")


def caused_event(workspace: Workspace) -> RecordedEvent:
    """An event of an order after its first: it names a causing event."""
    for event in workspace.events.read(EventFilter(category="order")):
        if event.metadata.get("causation_id"):
            return event
    raise AssertionError("the demo has no caused events")


def tree_keys(model: Any) -> list[str]:
    return [model.index(row, 0).data() for row in range(model.rowCount())]


def show_inspector(qtbot: QtBot, workspace: Workspace, runner: TaskRunner) -> InspectorPanel:
    panel = InspectorPanel(workspace.events, runner)
    qtbot.addWidget(panel)
    panel.resize(500, 700)
    panel.show()
    return panel


def test_a_schema_1_order_placed_shows_raw_and_upcast(
    qtbot: QtBot, qtmodeltester: Any, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = show_inspector(qtbot, workspace, runner)
    event = schema_1_order_placed(workspace)

    with qtbot.waitSignal(panel.causation_resolved, timeout=SIGNAL_TIMEOUT_MS):
        panel.show_event(event)
    header = panel.header_label.text()
    for part in (f"#{event.position:,}", event.stream_id, "@0", "OrderPlaced", event.event_id):
        assert part in header
    assert panel.schema_bar.isVisible()
    assert panel.upcast_button.isChecked()
    assert "customer_id" in tree_keys(panel.data_model)
    items = json.loads(panel.data_text.toPlainText())["items"]
    assert all("unit_price_cents" in item for item in items)
    qtmodeltester.check(panel.data_model)

    panel.raw_button.click()
    assert "customer" in tree_keys(panel.data_model)
    assert "customer_id" not in tree_keys(panel.data_model)
    assert json.loads(panel.data_text.toPlainText()) == event.data
    assert panel.shown_event == event

    # Small payloads open fully expanded.
    lines = panel.data_model.index(tree_keys(panel.data_model).index("lines"), 0)
    assert panel.data_tree.isExpanded(lines)


def test_an_event_no_upcaster_changes_has_no_toggle(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = show_inspector(qtbot, workspace, runner)
    event = next(workspace.events.read(EventFilter(types=("CustomerRegistered",)), limit=1))
    panel.show_event(event)
    assert not panel.schema_bar.isVisible()
    assert not panel.failure_label.isVisible()
    assert json.loads(panel.data_text.toPlainText()) == event.data


def test_copy_puts_the_event_as_json_on_the_clipboard(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = show_inspector(qtbot, workspace, runner)
    event = schema_1_order_placed(workspace)
    panel.show_event(event)

    panel.copy_button.click()
    assert json.loads(QGuiApplication.clipboard().text()) == event.to_dict()


def test_the_causation_link_is_disabled_without_a_cause_and_enabled_once_found(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = show_inspector(qtbot, workspace, runner)
    with qtbot.waitSignal(panel.causation_resolved, timeout=SIGNAL_TIMEOUT_MS) as resolved:
        panel.show_event(schema_1_order_placed(workspace))  # first of its order: no cause
    assert resolved.args == [False]
    assert not panel.causation_button.isEnabled()

    with qtbot.waitSignal(panel.causation_resolved, timeout=SIGNAL_TIMEOUT_MS) as resolved:
        panel.show_event(caused_event(workspace))
    assert resolved.args == [True]
    assert panel.causation_button.isEnabled()

    gone = caused_event(workspace)._replace(
        metadata={"causation_id": "00000000-0000-7000-8000-000000000000"}
    )
    with qtbot.waitSignal(panel.causation_resolved, timeout=SIGNAL_TIMEOUT_MS) as resolved:
        panel.show_event(gone)
    assert resolved.args == [False]
    assert not panel.causation_button.isEnabled()
    assert not panel.correlation_button.isEnabled()


# -- in the window --------------------------------------------------------------------------


@pytest.fixture
def window(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, windows: list[MainWindow]
) -> MainWindow:
    window = MainWindow(workspace, runner)
    windows.append(window)
    with qtbot.waitSignal(window.event_log.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        window.show()
    return window


def select(qtbot: QtBot, window: MainWindow, position: int) -> None:
    with qtbot.waitSignal(window.inspector.causation_resolved, timeout=SIGNAL_TIMEOUT_MS):
        window.event_log.jump_to_position(position)
    assert window.inspector.event is not None
    assert window.inspector.event.position == position


def all_shown(qtbot: QtBot, window: MainWindow) -> list[int]:
    model = window.event_log.model
    qtbot.waitUntil(lambda: model.exhausted, timeout=SIGNAL_TIMEOUT_MS)
    return [model.event_at(row).position for row in range(model.rowCount())]


def test_selecting_in_the_log_shows_the_event_in_the_inspector_dock(
    qtbot: QtBot, window: MainWindow, workspace: Workspace
) -> None:
    event = schema_1_order_placed(workspace)
    select(qtbot, window, event.position)
    assert window.inspector_dock.objectName() == "inspectorDock"
    assert window.inspector_dock.isVisible()
    assert window.inspector.event == event


def test_the_correlation_link_filters_the_log_to_exactly_that_correlation(
    qtbot: QtBot, window: MainWindow, workspace: Workspace
) -> None:
    event = caused_event(workspace)
    select(qtbot, window, event.position)
    correlation = event.metadata["correlation_id"]

    with qtbot.waitSignal(window.event_log.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        window.inspector.correlation_button.click()

    wanted = [
        e.position
        for e in workspace.events.read()
        if e.metadata.get("correlation_id") == correlation
    ]
    assert len(wanted) > 1
    assert all_shown(qtbot, window) == wanted
    assert window.event_log.filter_edit("correlation_id").text() == correlation


def test_following_a_correlation_from_a_search_shows_the_whole_chain(
    qtbot: QtBot, window: MainWindow, workspace: Workspace
) -> None:
    """Found by content, then followed: the text filter would hide the rest of the chain."""
    event = caused_event(workspace)
    correlation = event.metadata["correlation_id"]
    wanted = [
        e.position
        for e in workspace.events.read()
        if e.metadata.get("correlation_id") == correlation
    ]

    def found_by(word: str) -> set[int]:
        return {e.position for e in workspace.events.read(EventFilter(text=word))}

    # A word of the event that leaves part of its chain out of the search.
    word = next(w for w in search_words(json.dumps(event.data)) if set(wanted) - found_by(w))
    log = window.event_log
    with qtbot.waitSignal(log.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        log.filter_edit("text").setText(word)
        qtbot.keyClick(log.filter_edit("text"), Qt.Key.Key_Return)
    select(qtbot, window, event.position)

    with qtbot.waitSignal(log.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        window.inspector.correlation_button.click()

    assert all_shown(qtbot, window) == wanted
    assert log.filter_edit("text").text() == ""


def test_the_causation_link_selects_the_causing_event(
    qtbot: QtBot, window: MainWindow, workspace: Workspace
) -> None:
    event = caused_event(workspace)
    cause = workspace.handle.store.event_by_id(event.metadata["causation_id"])
    assert cause is not None
    select(qtbot, window, event.position)

    with qtbot.waitSignal(window.event_log.event_selected, timeout=SIGNAL_TIMEOUT_MS) as chosen:
        window.inspector.causation_button.click()
    assert chosen.args[0] == cause
    assert window.event_log.current_event() == cause
    qtbot.waitUntil(lambda: window.inspector.event == cause, timeout=SIGNAL_TIMEOUT_MS)


def test_the_stream_link_shows_the_stream_up_to_the_event(
    qtbot: QtBot, window: MainWindow, workspace: Workspace
) -> None:
    event = caused_event(workspace)
    select(qtbot, window, event.position)

    with qtbot.waitSignal(window.event_log.event_selected, timeout=SIGNAL_TIMEOUT_MS):
        window.inspector.stream_button.click()
    wanted = [e.position for e in workspace.handle.store.read_stream(event.stream_id)]
    assert all_shown(qtbot, window) == [p for p in wanted if p <= event.position]
    assert window.event_log.current_event() == event


def test_double_clicking_a_stream_filters_the_log_to_it(
    qtbot: QtBot, window: MainWindow, workspace: Workspace
) -> None:
    streams = window.streams_panel
    qtbot.waitUntil(lambda: streams.model.rowCount() > 0, timeout=SIGNAL_TIMEOUT_MS)
    stream_id = streams.model.stream_at(0).stream_id

    with qtbot.waitSignal(window.event_log.first_page_loaded, timeout=SIGNAL_TIMEOUT_MS):
        streams.stream_selected.emit(stream_id)
    wanted = [e.position for e in workspace.handle.store.read_stream(stream_id)]
    assert all_shown(qtbot, window) == wanted


def test_time_travel_opens_the_store_at_the_event_shown(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = show_inspector(qtbot, workspace, runner)
    assert not panel.time_travel_button.isEnabled()  # nothing shown yet
    event = next(workspace.events.read(limit=5, backwards=True))
    panel.show_event(event)
    with qtbot.waitSignal(panel.time_travel_requested, timeout=SIGNAL_TIMEOUT_MS) as asked:
        qtbot.mouseClick(panel.time_travel_button, Qt.MouseButton.LeftButton)
    assert asked.args == [event.position]
