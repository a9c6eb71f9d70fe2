"""Issue 14's "done when", as a person at the console does it, in one real window on a
real SQLite file: switch to writable and watch the projections catch up, rebuild a new
version with progress while the old one keeps serving, place an order through its form,
fix a projection an event from another process faulted, and find every action in
``$audit``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

import console.main_window as main_window_module
from console.panels.projections.model import COLUMN_STATE
from core.services.writing import AUDIT_STREAM
from core.workspace import Workspace
from tests.console.test_commands_panel import ORDER, form_of, type_into
from tests.console.test_projections_panel import (  # noqa: F401 (fixtures)
    TIMEOUT_MS,
    _close_probes,
    cell,
    click,
    open_window,
    probe,
    seed,
    select,
)

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

OLD, NEW = "order_summary:1", "order_summary:2"


def all_caught_up(panel: Any) -> bool:
    rows = [panel.model.status_at(row) for row in range(panel.model.rowCount())]
    return len(rows) == 4 and all(
        cell(panel, status.reference, COLUMN_STATE) == "caught up" for status in rows
    )


def test_a_session_at_the_console_from_catching_up_to_a_fixed_fault(
    qtbot: QtBot,
    tmp_path: Path,
    open_window: Any,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = str(tmp_path / "shop.db")
    seed(location, orders=150, run=(OLD,))  # the other versions never ran
    asked: list[str] = []
    monkeypatch.setattr(
        main_window_module, "confirm_writable", lambda _parent, where: asked.append(where) or True
    )

    # Read-only, nothing runs; Store → Writable, and the console's scheduler catches up.
    window = open_window(location, writable=False)
    panel = window.projections_panel
    qtbot.waitUntil(lambda: cell(panel, NEW, COLUMN_STATE) == "never run", timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.writable_changed, timeout=TIMEOUT_MS) as switched:
        window.writable_action.trigger()
    assert switched.args == [True] and asked == [location]
    qtbot.waitUntil(lambda: all_caught_up(panel), timeout=TIMEOUT_MS)

    # Rebuild the new version with progress; the old one keeps serving meanwhile.
    select(qtbot, panel, NEW)
    panel.batch_size = 50
    served: list[int] = []
    timetravel = probe(location).timetravel

    def read_the_old_one(value: int) -> None:
        if value > 0 and not served:  # mid-rebuild
            served.append(sum(1 for _ in timetravel.iter_documents(timetravel.locate(OLD))))

    panel.progress_bar.valueChanged.connect(read_the_old_one)
    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        click(qtbot, panel, "rebuild")
    panel.progress_bar.valueChanged.disconnect(read_the_old_one)
    assert served == [150]  # every order, from the old version, while the new one rebuilt
    qtbot.waitUntil(lambda: all_caught_up(panel), timeout=TIMEOUT_MS)

    # Place an order through the commands panel's form.
    window.commands_dock.show()
    commands = window.commands_panel
    type_into(qtbot, form_of(commands, "PlaceOrder"), ORDER)
    with qtbot.waitSignal(commands.executed, timeout=TIMEOUT_MS) as executed:
        qtbot.mouseClick(commands.execute_button, Qt.MouseButton.LeftButton)
    (placed,) = executed.args[0].events
    qtbot.waitUntil(  # the scheduler applies it: the read models show the order
        lambda: timetravel.document(timetravel.locate(OLD), ORDER["order_id"]) is not None,
        timeout=TIMEOUT_MS,
    )

    # Another process appends an event the projections choke on: the old version faults.
    bad = subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", location, "append", "order-bad",
         "OrderPlaced", "--data", "{}", "--metadata", json.dumps({"schema_version": 2})],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 0, bad.stderr
    bad_event = json.loads(bad.stdout)
    qtbot.waitUntil(lambda: cell(panel, OLD, COLUMN_STATE) == "faulted", timeout=TIMEOUT_MS)
    select(qtbot, panel, OLD)
    assert "KeyError" in panel.details.toPlainText()
    qtbot.mouseClick(panel.show_event_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            window.inspector.event is not None
            and window.inspector.event.event_id == bad_event["event_id"]
        ),
        timeout=TIMEOUT_MS,
    )
    panel.confirm = lambda _parent, _title, question: str(bad_event["position"]) in question
    with qtbot.waitSignal(panel.action_finished, timeout=TIMEOUT_MS):
        click(qtbot, panel, "skip")
    qtbot.waitUntil(lambda: cell(panel, OLD, COLUMN_STATE) == "caught up", timeout=TIMEOUT_MS)

    # Every action is in $audit, with who did it.
    import os
    import sqlite3

    print("FILES", sorted(os.listdir(tmp_path)))
    raw = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
    try:
        print("RAW", raw.execute("select count(*) from events").fetchone())
    except Exception as e:
        print("RAWERR", e)
    with Workspace.open(location) as after:
        audit = list(after.events.read_stream(AUDIT_STREAM))
    kinds = [
        (event.type, event.data.get("projection") or event.data.get("command")) for event in audit
    ]
    assert kinds == [
        ("WritableModeEntered", None),
        ("ProjectionReset", NEW),
        ("CommandExecuted", "PlaceOrder"),
        ("ProjectionEventSkipped", OLD),
    ]
    assert audit[1].data["rebuild"] is True
    assert audit[2].data["event_ids"] == [placed.event_id]
    assert audit[3].data["event_id"] == bad_event["event_id"]
    assert all(event.data["user"] for event in audit)
