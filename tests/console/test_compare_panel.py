"""The compare panel over a real SQLite store and the shipped order plugins, driven as a user."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QComboBox
from pytestqt.qtbot import QtBot

from console.panels.compare import ComparePanel
from console.panels.compare import panel as compare_module
from console.workers import TaskRunner
from core.jobs import checkpoint
from core.services.timetravel import TimeTravel
from core.timetravel.diff import DiffEntry, DocumentDiff, collect_diff, summarize_diff
from core.timetravel.reference import ReadModelRef
from core.workspace import Workspace

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIGNAL_TIMEOUT_MS = 10_000
V1, V2 = "order_summary:1", "order_summary:2"

# Version 3 voids cancelled orders; everything else reads as version 2.
CANDIDATE = """
from core.api import handles
from plugins.orders.projections import OrderSummaryV2


class VoidingSummary(OrderSummaryV2):
    version = 3

    @handles("OrderCancelled")
    def order_cancelled(self, view, event):
        super().order_cancelled(view, event)
        doc = view.get(event.data["order_id"])
        if doc is not None:
            doc["status"] = "void"
            view.put(doc["order_id"], doc)
"""


class GatedDiff:
    """A real diff that stops after ``after`` entries until ``gate`` is set, checking for
    cancellation while it waits (as a store's reads do between pages)."""

    def __init__(self, diff: DocumentDiff, gate: threading.Event, after: int) -> None:
        self._diff = diff
        self._gate = gate
        self._after = after
        self._given = 0
        self.closed = False
        self.cancelled = False

    def __iter__(self) -> GatedDiff:
        return self

    def __next__(self) -> DiffEntry:
        if self._given == self._after:
            while not self._gate.wait(0.01):
                try:
                    checkpoint()
                except BaseException:
                    self.cancelled = True
                    raise
        self._given += 1
        return next(self._diff)

    @property
    def unchanged_so_far(self) -> int:
        return self._diff.unchanged_so_far

    def close(self) -> None:
        self.closed = True
        self._diff.close()


class GatedTimeTravel(TimeTravel):
    """The real service, whose next ``diff`` is gated after ``after`` entries."""

    def __init__(self, workspace: Workspace, after: int) -> None:
        super().__init__(workspace.handle, workspace.plugins)
        self.gate = threading.Event()
        self.after = after
        self.gated: list[GatedDiff] = []

    def diff(self, before: ReadModelRef | str, after: ReadModelRef | str) -> Any:
        real = super().diff(before, after)
        if self.gated:
            return real  # only the first diff is held
        gated = GatedDiff(real, self.gate, self.after)
        self.gated.append(gated)
        return gated


@pytest.fixture
def shop(tmp_path: Path, workspaces: list[Workspace]) -> Workspace:
    """80 demo orders; ``order_summary`` 1 and 2 run to the head."""
    workspace = Workspace.open(str(tmp_path / "shop.db"), read_only=False)
    workspaces.append(workspace)
    workspace.writing.write_demo("orders", orders=80, seed=7)
    workspace.projections.run(V1)
    workspace.projections.run(V2)
    return workspace


def open_panel(
    qtbot: QtBot,
    shop: Workspace,
    runner: TaskRunner,
    timetravel: TimeTravel | None = None,
    **options: Any,
) -> ComparePanel:
    panel = ComparePanel(timetravel or shop.timetravel, shop.projections, runner, **options)
    qtbot.addWidget(panel)
    panel.resize(1100, 650)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def type_reference(qtbot: QtBot, edit: Any, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def compare(qtbot: QtBot, panel: ComparePanel) -> dict[str, Any]:
    with qtbot.waitSignal(panel.compared, timeout=SIGNAL_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    summary: dict[str, Any] = blocker.args[0]
    return summary


def shown_keys(panel: ComparePanel) -> list[str]:
    shown = panel.entries_filter
    return [str(shown.data(shown.index(row, 0))) for row in range(shown.rowCount())]


def click_row(qtbot: QtBot, view: QAbstractItemView, row: int, *, double: bool = False) -> None:
    rect = view.visualRect(view.model().index(row, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    if double:  # a double click follows a press on the same row, as it does for a user
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def pick(qtbot: QtBot, box: QComboBox, text: str) -> None:
    """Choose an entry of a combo with the arrow keys, as a user would."""
    wanted = box.findText(text)
    assert wanted >= 0
    key = Qt.Key.Key_Down if wanted > box.currentIndex() else Qt.Key.Key_Up
    while box.currentIndex() != wanted:
        qtbot.keyClick(box, key)


def test_two_versions_compared_show_the_summary_and_the_differing_documents(
    qtbot: QtBot, qtmodeltester: Any, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner)
    type_reference(qtbot, panel.a_edit, V1)
    type_reference(qtbot, panel.b_edit, V2)

    summary = compare(qtbot, panel)

    assert summary == summarize_diff(shop.timetravel.diff(V1, V2)).to_dict()
    assert summary["changed"] == 11 and summary["paths"] == {"total_cents": 11}
    head = shop.events.head_position()
    text = panel.summary_label.text()
    assert f"order_summary:1@{head} → order_summary:2@{head}" in text
    assert "0 added · 0 removed · 11 changed · 69 unchanged" in text
    expected = collect_diff(shop.timetravel.diff(V1, V2))
    assert shown_keys(panel) == sorted(expected["changed"])
    assert panel.paths_list.item(0).text().split() == ["total_cents", "11"]
    assert panel.shown_label.text() == "11 differing document(s)"
    assert panel.export_button.isEnabled() and not panel.cancel_button.isEnabled()
    qtmodeltester.check(panel.entries_model)
    qtmodeltester.check(panel.entries_filter)


def test_one_version_at_two_points_picked_with_the_pickers(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner)
    pick(qtbot, panel.a_picker.projection_box, V2)
    qtbot.keyClicks(panel.a_picker.point_edit, "150")
    pick(qtbot, panel.b_picker.projection_box, V2)
    assert panel.a_edit.text() == "order_summary:2@150"
    assert panel.b_edit.text() == V2

    summary = compare(qtbot, panel)

    assert summary == summarize_diff(shop.timetravel.diff("order_summary:2@150", V2)).to_dict()
    assert summary["added"] > 0 and summary["changed"] > 0
    assert f"order_summary:2@150 → order_summary:2@{shop.events.head_position()}" in (
        panel.summary_label.text()
    )


def test_set_point_b_moves_b_to_a_position_and_typing_moves_the_pickers(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner)
    panel.set_references(V2, V2)
    panel.set_point_b(200)
    assert panel.b_edit.text() == "order_summary:2@200"
    assert panel.b_picker.point_edit.text() == "200"
    type_reference(qtbot, panel.a_edit, "order_summary:1@2026-01-20T00:00:00Z")
    assert panel.a_picker.projection_box.currentText() == V1
    assert panel.a_picker.point_edit.text() == "2026-01-20T00:00:00.000000Z"
    summary = compare(qtbot, panel)
    expected = shop.timetravel.diff("order_summary:1@2026-01-20T00:00:00Z", "order_summary:2@200")
    assert summary == summarize_diff(expected).to_dict()


def test_partial_summaries_arrive_before_the_final_one(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    gated = GatedTimeTravel(shop, after=4)
    panel = open_panel(qtbot, shop, runner, gated, chunk_entries=2)
    panel.set_references("order_summary:2@150", V2)
    partial: list[dict[str, Any]] = []
    finals: list[dict[str, Any]] = []
    panel.summary_updated.connect(partial.append)
    panel.compared.connect(finals.append)

    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.entries_model.rowCount() == 4, timeout=SIGNAL_TIMEOUT_MS)

    assert [sum(s[k] for k in ("added", "removed", "changed")) for s in partial] == [2, 4]
    assert "so far" in panel.summary_label.text() and not finals
    assert panel.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.compared, timeout=SIGNAL_TIMEOUT_MS):
        gated.gate.set()
    assert finals == [summarize_diff(shop.timetravel.diff("order_summary:2@150", V2)).to_dict()]
    assert panel.entries_model.rowCount() == sum(finals[0][k] for k in ("added", "changed"))
    assert "so far" not in panel.summary_label.text()


def test_cancel_stops_the_diff_and_says_so(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    gated = GatedTimeTravel(shop, after=4)
    panel = open_panel(qtbot, shop, runner, gated, chunk_entries=2)
    panel.set_references("order_summary:2@150", V2)
    finals: list[object] = []
    panel.compared.connect(finals.append)
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.entries_model.rowCount() == 4, timeout=SIGNAL_TIMEOUT_MS)

    with qtbot.waitSignal(panel.compare_cancelled, timeout=SIGNAL_TIMEOUT_MS):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)

    assert "cancelled" in panel.summary_label.text()
    assert gated.gated[0].cancelled and gated.gated[0].closed  # its store reads released
    assert not panel.cancel_button.isEnabled() and not panel.export_button.isEnabled()
    assert runner.pending == 0 and not finals


def test_a_new_compare_cancels_the_running_one(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    gated = GatedTimeTravel(shop, after=2)
    panel = open_panel(qtbot, shop, runner, gated, chunk_entries=1)
    panel.set_references("order_summary:2@150", V2)
    finals: list[dict[str, Any]] = []
    panel.compared.connect(finals.append)
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.entries_model.rowCount() == 2, timeout=SIGNAL_TIMEOUT_MS)

    panel.set_references(V1, V2)
    summary = compare(qtbot, panel)

    qtbot.waitUntil(lambda: runner.pending == 0, timeout=SIGNAL_TIMEOUT_MS)
    assert gated.gated[0].cancelled and gated.gated[0].closed
    assert finals == [summary] == [summarize_diff(shop.timetravel.diff(V1, V2)).to_dict()]
    assert shown_keys(panel) == sorted(collect_diff(shop.timetravel.diff(V1, V2))["changed"])


def test_the_table_keeps_a_bounded_number_of_documents(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner, max_entries=5, chunk_entries=3)
    panel.set_references("order_summary:2@150", V2)
    summary = compare(qtbot, panel)
    differing = summary["added"] + summary["removed"] + summary["changed"]
    assert differing > 5 and panel.entries_model.rowCount() == 5
    assert panel.shown_label.text() == f"first 5 of {differing} shown"
    assert summary == summarize_diff(shop.timetravel.diff("order_summary:2@150", V2)).to_dict()


def test_kind_and_path_filters_leave_exactly_the_matching_documents(
    qtbot: QtBot, qtmodeltester: Any, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner)
    panel.set_references("order_summary:2@150", V2)
    compare(qtbot, panel)
    expected = collect_diff(shop.timetravel.diff("order_summary:2@150", V2))
    changed = expected["changed"]

    qtbot.mouseClick(panel.kind_boxes["added"], Qt.MouseButton.LeftButton)
    assert shown_keys(panel) == sorted(changed)

    qtbot.keyClicks(panel.path_filter_edit, "carrier")
    qtbot.keyClick(panel.path_filter_edit, Qt.Key.Key_Return)
    with_carrier = sorted(k for k, c in changed.items() if any("carrier" in p for p in c["paths"]))
    assert with_carrier and shown_keys(panel) == with_carrier
    qtmodeltester.check(panel.entries_filter)

    qtbot.mouseClick(panel.kind_boxes["changed"], Qt.MouseButton.LeftButton)
    assert shown_keys(panel) == []
    panel.path_filter_edit.clear()
    qtbot.keyClick(panel.path_filter_edit, Qt.Key.Key_Return)
    qtbot.mouseClick(panel.kind_boxes["added"], Qt.MouseButton.LeftButton)
    assert shown_keys(panel) == sorted(expected["added"])


def test_selecting_a_changed_document_shows_both_sides_with_its_fields_tinted(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner)
    panel.set_references("order_summary:2@150", V2)
    compare(qtbot, panel)
    changed = collect_diff(shop.timetravel.diff("order_summary:2@150", V2))["changed"]
    key = next(k for k, c in changed.items() if len(c["paths"]) >= 3)
    row = shown_keys(panel).index(key)

    with qtbot.waitSignal(panel.document_selected) as selected:
        click_row(qtbot, panel.entries_view, row)

    head = shop.events.head_position()
    assert selected.args == [f"order_summary:2@{head}", key]
    assert orjson.loads(panel.detail_before.toPlainText()) == changed[key]["before"]
    assert orjson.loads(panel.detail_after.toPlainText()) == changed[key]["after"]
    for side in (panel.detail_before, panel.detail_after):
        tinted = side.highlighted_lines()
        assert sorted(line.strip().split(":")[0].strip('"') for line in tinted) == sorted(
            changed[key]["paths"]
        )
        assert side.isReadOnly()
    assert panel.detail_before.tint_color() != panel.detail_after.tint_color()

    added = next(iter(collect_diff(shop.timetravel.diff("order_summary:2@150", V2))["added"]))
    click_row(qtbot, panel.entries_view, shown_keys(panel).index(added))
    assert panel.detail_before.toPlainText() == ""
    whole = panel.detail_after.toPlainText().splitlines()
    assert panel.detail_after.highlighted_lines() == whole  # all of it is new


def test_double_click_asks_for_the_lineage_at_the_compared_point(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner)
    panel.set_references(V1, V2)
    compare(qtbot, panel)
    key = shown_keys(panel)[0]
    with qtbot.waitSignal(panel.lineage_requested) as requested:
        click_row(qtbot, panel.entries_view, 0, double=True)
    assert requested.args == [f"order_summary:2@{shop.events.head_position()}", key]


def test_export_writes_the_whole_diff_as_the_contract_object(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner, tmp_path: Path, monkeypatch: Any
) -> None:
    target = tmp_path / "out" / "diff.json"
    target.parent.mkdir()
    asked: list[str] = []

    def choose(_parent: Any, suggested: str) -> str:
        asked.append(suggested)
        return str(target)

    monkeypatch.setattr(compare_module, "choose_export_file", choose)
    panel = open_panel(qtbot, shop, runner, max_entries=3)
    assert not panel.export_button.isEnabled()
    panel.set_references(V1, V2)
    compare(qtbot, panel)

    with qtbot.waitSignal(panel.exported, timeout=SIGNAL_TIMEOUT_MS) as done:
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)

    assert done.args == [str(target)] and asked[0].endswith(".json")
    expected = orjson.dumps(collect_diff(shop.timetravel.diff(V1, V2)), option=orjson.OPT_SORT_KEYS)
    assert target.read_bytes() == expected  # every document, though the table holds 3


def test_a_bad_reference_shows_an_error_and_runs_nothing(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    panel = open_panel(qtbot, shop, runner)
    before = panel.summary_label.text()
    type_reference(qtbot, panel.a_edit, "order_summary:x")
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)

    error = panel.a_picker.error_label
    assert error.isVisible() and "version 'x'" in error.text() and "\n" not in error.text()
    assert runner.pending == 0 and not panel.running
    assert panel.summary_label.text() == before

    type_reference(qtbot, panel.a_edit, V1)
    assert not error.isVisible()
    qtbot.keyClicks(panel.b_picker.point_edit, "yesterday")
    assert panel.b_picker.error_label.isVisible()
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    assert runner.pending == 0 and not panel.running


def test_what_if_from_a_plugin_file_shows_what_it_would_change(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner, tmp_path: Path, monkeypatch: Any
) -> None:
    plugin = tmp_path / "voiding.py"
    plugin.write_text(CANDIDATE)
    monkeypatch.setattr(compare_module, "choose_plugin_file", lambda _parent: str(plugin))
    monkeypatch.setattr(compare_module, "ask_candidate", lambda _p, _s: "order_summary:3")
    panel = open_panel(qtbot, shop, runner)
    panel.set_references(V2, V2)

    with qtbot.waitSignal(panel.compared, timeout=SIGNAL_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(panel.what_if_button, Qt.MouseButton.LeftButton)

    expected = shop.timetravel.what_if_file(plugin, "order_summary:3", V2, summary=True).diff
    cancelled = [
        key for key, doc in shop.timetravel.replay(V2).documents.items()
        if doc["status"] == "cancelled"
    ]  # fmt: skip
    assert blocker.args[0] == expected
    assert expected["changed"] == len(cancelled) > 0 and expected["paths"] == {
        "status": len(cancelled)
    }
    assert shown_keys(panel) == sorted(cancelled)
    assert "order_summary:3" in panel.summary_label.text()
    assert "voiding.py" in panel.summary_label.text()
    click_row(qtbot, panel.entries_view, 0)
    assert [line.strip() for line in panel.detail_after.highlighted_lines()] == [
        '"status": "void",'
    ]


def test_a_what_if_that_fails_says_why_in_one_line(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner, tmp_path: Path, monkeypatch: Any
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import nowhere\n")
    monkeypatch.setattr(compare_module, "choose_plugin_file", lambda _parent: str(broken))
    monkeypatch.setattr(compare_module, "ask_candidate", lambda _p, _s: "order_summary:3")
    panel = open_panel(qtbot, shop, runner)
    with qtbot.waitSignal(panel.compare_failed, timeout=SIGNAL_TIMEOUT_MS) as failed:
        qtbot.mouseClick(panel.what_if_button, Qt.MouseButton.LeftButton)
    assert "No module named 'nowhere'" in failed.args[0]
    assert panel.summary_label.text().startswith("compare failed: broken.py:")


def test_chunks_reach_the_gui_thread_while_the_diff_runs_on_a_worker(
    qtbot: QtBot, shop: Workspace, runner: TaskRunner
) -> None:
    threads: list[bool] = []

    class Recording(TimeTravel):
        def diff(self, before: Any, after: Any) -> DocumentDiff:
            threads.append(threading.current_thread() is threading.main_thread())
            return super().diff(before, after)

    panel = open_panel(qtbot, shop, runner, Recording(shop.handle, shop.plugins), chunk_entries=1)
    panel.set_references(V1, V2)
    updates: list[float] = []
    panel.summary_updated.connect(lambda _summary: updates.append(time.monotonic()))
    compare(qtbot, panel)
    assert threads == [False] and len(updates) >= 10
