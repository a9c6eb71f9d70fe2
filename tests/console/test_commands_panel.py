"""The commands panel over a real SQLite store: the shipped orders plugin's commands and
a plugin folder written by the test, driven through the form as an operator would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QPlainTextEdit, QPushButton
from pytestqt.qtbot import QtBot

from console.colours import error_colour
from console.panels.commands import CommandsPanel
from console.panels.commands.form import CommandForm
from console.panels.commands.panel import EMPTY_TEXT, READ_ONLY_TIP, failure_text
from console.panels.commands.results import COLUMN_LINK, COLUMN_STREAM, COLUMN_TYPE, DUPLICATE_TEXT
from console.workers import TaskRunner
from core.commands.definition import Rejected
from core.errors import StoreReadOnly, WrongExpectedVersion
from core.registry import Registry, UnknownCommand
from core.services.writing import AUDIT_STREAM, operator_name
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 10_000

GADGETS = '''\
"""A command with one field of every kind."""

from core.api import Field, command


@command(
    "Tune",
    stream="gadget-{name}",
    fields={
        "name": Field(str, help="which gadget"),
        "level": Field(int, default=3, help="how far to turn it"),
        "ratio": float,
        "loud": Field(bool, required=False, default=True),
        "settings": Field(dict, required=False, help="anything else, as JSON"),
        "speed": Field(str, choices=("slow", "fast"), help="how quickly"),
    },
)
def tune(state, data):
    """Turn a gadget up or down."""
    return [("Tuned", data)]
'''

LATER = '''\
from core.api import command


@command("Polish", stream="gadget-{name}", fields={"name": str})
def polish(state, data):
    """Make it shine."""
    return [("Polished", data)]
'''

ORDER = {
    "order_id": "90001",
    "customer_id": "C0042",
    "items": '[{"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299}]',
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "gadgets"
    folder.mkdir()
    (folder / "gadgets.py").write_text(GADGETS)
    return folder


@pytest.fixture
def workspace(tmp_path: Path, folder: Path, workspaces: list[Workspace]) -> Workspace:
    """A writable store with the shipped plugins (orders) and the gadgets folder."""

    def discover() -> Registry:
        return Registry.discover([folder], environ={}, entry_points=False)

    opened = Workspace(SqlEventStore.open(tmp_path / "store.db"), discover(), rediscover=discover)
    workspaces.append(opened)
    return opened


def open_panel(qtbot: QtBot, workspace: Workspace, runner: TaskRunner) -> CommandsPanel:
    panel = CommandsPanel(workspace.commands, runner)
    qtbot.addWidget(panel)
    panel.resize(1100, 650)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_writable(True)
    return panel


def form_of(panel: CommandsPanel, name: str) -> CommandForm:
    assert panel.select_command(name)
    assert panel.form is not None and panel.form.definition.name == name
    return panel.form


def type_into(qtbot: QtBot, form: CommandForm, values: dict[str, str]) -> None:
    for name, text in values.items():
        widget = form.editor(name).widget
        assert isinstance(widget, QLineEdit | QPlainTextEdit)
        widget.clear()
        qtbot.keyClicks(widget, text)


def click(qtbot: QtBot, button: QPushButton) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def run(qtbot: QtBot, panel: CommandsPanel, *, dry_run: bool) -> Any:
    done = panel.dry_run_shown if dry_run else panel.executed
    with qtbot.waitSignal(done, timeout=SIGNAL_TIMEOUT_MS) as finished:
        click(qtbot, panel.dry_run_button if dry_run else panel.execute_button)
    return finished.args[0]


def audits(workspace: Workspace) -> list[Any]:
    return list(workspace.events.read(EventFilter(stream_id=AUDIT_STREAM)))


def test_each_field_gets_its_widget_default_choices_and_help(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    names = [panel.command_list.item(row).text() for row in range(panel.command_list.count())]
    assert names == sorted(names) and {"PlaceOrder", "PayOrder", "Tune"} <= set(names)

    form = form_of(panel, "Tune")
    assert panel.description_label.text() == "Turn a gadget up or down."
    assert panel.stream_label.text() == "stream: gadget-{name}"
    widgets = {editor.name: editor.widget for editor in form.editors()}
    assert isinstance(widgets["name"], QLineEdit) and widgets["name"].text() == ""
    assert isinstance(widgets["level"], QLineEdit) and widgets["level"].text() == "3"
    assert isinstance(widgets["ratio"], QLineEdit)
    assert isinstance(widgets["loud"], QCheckBox) and widgets["loud"].isChecked()
    assert isinstance(widgets["settings"], QPlainTextEdit)
    speed = widgets["speed"]
    assert isinstance(speed, QComboBox)
    assert [speed.itemText(i) for i in range(speed.count())] == ["slow", "fast"]
    help_line = form.editor("level").help_label
    assert help_line.text() == "how far to turn it" and help_line.isVisible()
    assert widgets["level"].toolTip() == "how far to turn it"
    labels = {label.text() for label in form.findChildren(type(help_line))}
    assert {"name *", "level", "ratio *", "loud", "settings", "speed *"} <= labels
    assert not form.editor("ratio").help_label.isVisible()  # no help: no empty grey line

    tier = form_of(panel, "RegisterCustomer").editor("tier").widget
    assert isinstance(tier, QComboBox) and tier.currentText() == "standard"  # the default


def test_an_invalid_int_shows_the_bus_error_inline_and_disables_the_buttons(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    form = form_of(panel, "PayOrder")
    assert form.editor("order_id").error_label.text() == "order_id: required"
    type_into(qtbot, form, {"order_id": "17", "amount_cents": "12x"})

    error = form.editor("amount_cents").error_label
    assert error.isVisible() and error.text() == "amount_cents: must be int, not str"
    red = error_colour(panel.palette())
    assert error.palette().color(QPalette.ColorRole.WindowText) == red
    assert not form.editor("order_id").error_label.isVisible()
    assert not panel.execute_button.isEnabled() and not panel.dry_run_button.isEnabled()

    type_into(qtbot, form, {"amount_cents": "1200"})
    assert not error.isVisible()
    assert panel.execute_button.isEnabled() and panel.dry_run_button.isEnabled()
    assert form.data == {"order_id": "17", "amount_cents": 1200, "method": "card"}

    type_into(qtbot, form, {"amount_cents": str(2**63)})  # beyond what the store keeps
    assert error.text() == "amount_cents: must fit in 64 bits"
    assert not panel.execute_button.isEnabled()


def test_a_list_field_is_json_checked_as_typed(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    form = form_of(panel, "PlaceOrder")
    type_into(qtbot, form, {**ORDER, "items": '[{"sku": '})
    assert form.editor("items").error_label.text().startswith("items: not valid JSON")
    type_into(qtbot, form, {"items": '{"sku": "MUG"}'})
    assert form.editor("items").error_label.text() == "items: must be list, not dict"
    type_into(qtbot, form, {"items": ORDER["items"]})
    assert not form.editor("items").error_label.isVisible() and panel.dry_run_button.isEnabled()


def test_a_dry_run_shows_the_proposed_events_and_writes_nothing(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    type_into(qtbot, form_of(panel, "PlaceOrder"), ORDER)
    head = workspace.events.head_position()

    result = run(qtbot, panel, dry_run=True)

    assert result.dry_run and [e.type for e in result.proposed] == ["OrderPlaced"]
    table = panel.results.table
    assert table.rowCount() == 1
    assert table.item(0, COLUMN_STREAM).text() == "order-90001"
    assert table.item(0, COLUMN_TYPE).text() == "OrderPlaced"
    assert table.isColumnHidden(COLUMN_LINK)  # nothing stored: nothing to show in the log
    assert '"sku": "MUG-CLASSIC"' in panel.results.details.toPlainText()
    assert "nothing was written" in panel.results.outcome_label.text()
    assert workspace.events.head_position() == head

    with qtbot.waitSignal(panel.dry_run_shown, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.keyClick(form_of_current(panel).editor("order_id").widget, Qt.Key.Key_Return)
    assert workspace.events.head_position() == head  # Return tries, it never executes


def form_of_current(panel: CommandsPanel) -> CommandForm:
    assert panel.form is not None
    return panel.form


def test_execute_appends_the_events_with_their_audit_record(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    type_into(qtbot, form_of(panel, "PlaceOrder"), ORDER)

    result = run(qtbot, panel, dry_run=False)

    (placed,) = workspace.events.read_stream("order-90001")
    assert placed.type == "OrderPlaced" and result.events == [placed]
    assert panel.results.table.item(0, 0).text() == str(placed.position)
    assert "appended 1 event(s) to order-90001" in panel.results.outcome_label.text()
    (record,) = audits(workspace)
    assert record.data["command"] == "PlaceOrder"
    assert record.data["data"]["items"][0]["sku"] == "MUG-CLASSIC"
    assert record.data["user"] == operator_name()
    assert record.data["event_ids"] == [placed.event_id]


def test_a_rejected_command_shows_the_reason_in_red_and_appends_nothing(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    type_into(qtbot, form_of(panel, "PayOrder"), {"order_id": "404", "amount_cents": "100"})

    with qtbot.waitSignal(panel.run_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        click(qtbot, panel.execute_button)

    outcome = panel.results.outcome_label
    assert failed.args[0] == outcome.text() == "rejected: order 404 has not been placed"
    assert outcome.palette().color(QPalette.ColorRole.WindowText) == error_colour(panel.palette())
    assert panel.results.table.rowCount() == 0
    assert workspace.events.head_position() == 0  # no event, no audit record either
    assert panel.execute_button.isEnabled()  # the operator may fix it and try again


def test_read_only_disables_execute_and_says_why_but_dry_run_works(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    type_into(qtbot, form_of(panel, "PlaceOrder"), ORDER)
    assert panel.execute_button.isEnabled()

    panel.set_writable(False)

    assert not panel.execute_button.isEnabled()
    assert panel.execute_button.toolTip() == READ_ONLY_TIP
    click(qtbot, panel.execute_button)  # a click on a disabled button does nothing
    assert panel.dry_run_button.isEnabled()
    run(qtbot, panel, dry_run=True)
    assert workspace.events.head_position() == 0


def test_a_repeated_key_shows_the_first_runs_events_and_appends_none(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    type_into(qtbot, form_of(panel, "PlaceOrder"), ORDER)
    click(qtbot, panel.new_key_button)
    key = panel.key_edit.text()
    assert len(key) == 36  # a uuid

    first = run(qtbot, panel, dry_run=False)
    again = run(qtbot, panel, dry_run=False)

    assert again.duplicate and again.events == first.events
    assert panel.results.outcome_label.text() == DUPLICATE_TEXT
    assert panel.results.table.item(0, 0).text() == str(first.events[0].position)
    assert len(list(workspace.events.read_stream("order-90001"))) == 1
    assert [r.data["duplicate"] for r in audits(workspace)] == [False, True]
    assert {r.data["idempotency_key"] for r in audits(workspace)} == {key}


def test_show_in_log_emits_the_appended_events_id(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    type_into(qtbot, form_of(panel, "PlaceOrder"), ORDER)
    result = run(qtbot, panel, dry_run=False)
    link = panel.results.table.cellWidget(0, COLUMN_LINK)
    assert isinstance(link, QPushButton) and link.isVisible()

    with qtbot.waitSignal(panel.event_requested, timeout=SIGNAL_TIMEOUT_MS) as requested:
        click(qtbot, link)

    assert requested.args == [result.events[0].event_id]


def test_reload_lists_a_command_added_to_the_plugin_folder_and_keeps_the_selection(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, folder: Path
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    form_of(panel, "Tune")
    (folder / "later.py").write_text(LATER)
    workspace.plugins.reload()

    with qtbot.waitSignal(panel.catalog_shown, timeout=SIGNAL_TIMEOUT_MS) as shown:
        panel.reload()

    names = [panel.command_list.item(row).text() for row in range(panel.command_list.count())]
    assert "Polish" in names and shown.args == [len(names)]
    assert panel.form is not None and panel.form.definition.name == "Tune"


def test_what_was_typed_survives_a_reload_unless_the_fields_changed(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, folder: Path
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    type_into(qtbot, form_of(panel, "Tune"), {"name": "g7"})
    (folder / "gadgets.py").write_text(GADGETS.replace("up or down", "up or down, gently"))
    workspace.plugins.reload()
    panel.reload()
    form = form_of_current(panel)
    assert form.data["name"] == "g7"
    assert panel.description_label.text() == "Turn a gadget up or down, gently."
    assert form.definition is workspace.registry.command("Tune")  # the new handler runs

    (folder / "gadgets.py").write_text(GADGETS.replace('"ratio": float', '"ratio": int'))
    workspace.plugins.reload()
    panel.reload()
    form = form_of_current(panel)
    assert "name" not in form.data  # a new form for the new fields
    ratio = form.editor("ratio").widget
    assert isinstance(ratio, QLineEdit) and ratio.placeholderText() == "a whole number"


def test_no_command_at_all_says_how_to_add_one(
    qtbot: QtBot, tmp_path: Path, runner: TaskRunner, workspaces: list[Workspace]
) -> None:
    empty = Workspace(SqlEventStore.open(tmp_path / "empty.db"), Registry())
    workspaces.append(empty)
    panel = open_panel(qtbot, empty, runner)
    assert panel.empty_label.isVisible() and panel.empty_label.text() == EMPTY_TEXT
    assert panel.form is None and not panel.execute_button.isEnabled()


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (Rejected("amount must be positive"), "rejected: amount must be positive"),
        (
            WrongExpectedVersion("order-1", "0", 3),
            "other writers kept changing order-1; nothing was appended: try again",
        ),
        (
            StoreReadOnly("store.db is open read-only"),
            "the store is read-only: nothing was appended",
        ),
        (
            UnknownCommand("unknown command 'Tune' (loaded: PayOrder, PlaceOrder)"),
            "unknown command 'Tune': no loaded plugin defines it any more (the plugins changed)",
        ),
        (
            RuntimeError('Traceback (most recent call last):\n  File "x.py"\nValueError: boom'),
            "ValueError: boom",
        ),
    ],
)
def test_a_failure_reads_as_one_plain_line(error: Exception, text: str) -> None:
    assert failure_text(error) == text


def test_a_real_number_field_takes_numbers_only(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, workspace, runner)
    form = form_of(panel, "Tune")
    type_into(qtbot, form, {"name": "g1", "ratio": "half"})
    assert form.editor("ratio").error_label.text() == "ratio: must be float, not str"
    type_into(qtbot, form, {"ratio": "inf"})
    assert form.editor("ratio").error_label.text() == "ratio: must be a finite number"
    type_into(qtbot, form, {"ratio": "0.5"})
    assert form.valid and form.data["ratio"] == 0.5 and form.data["loud"] is True
