"""TimeTravel.what_if_file: what a plugin file not installed yet would change, on a real store."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.registry import PLUGIN_MODULE_PREFIX, UnknownProjection
from core.services.timetravel import PluginFileFailed
from core.timetravel.diff import collect_diff, summarize_diff
from core.workspace import Workspace

# Version 3 voids cancelled orders: only their status differs from version 2.
CANDIDATE = """
from core.api import Projection, handles


class VoidingSummary(Projection):
    name = "order_summary"
    version = 3

    @handles("OrderPlaced")
    def placed(self, view, event):
        view.put(event.data["order_id"], {"status": "placed"})

    @handles("OrderCancelled")
    def cancelled(self, view, event):
        if view.get(event.data["order_id"]) is not None:
            view.put(event.data["order_id"], {"status": "void"})
"""

# Redefines a loaded version: the file's class is the candidate, not the loaded one.
REDEFINED = """
from core.api import handles
from plugins.orders.projections import OrderSummaryV2


class Redefined(OrderSummaryV2):
    version = 2

    @handles("OrderPaid")
    def order_paid(self, view, event):
        pass  # payments are forgotten
"""


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Workspace]:
    """80 demo orders with ``order_summary`` 1 and 2 run to the head."""
    workspace = Workspace.open(str(tmp_path / "shop.db"), read_only=False)
    workspace.writing.write_demo("orders", orders=80, seed=7)
    workspace.projections.run("order_summary:1")
    workspace.projections.run("order_summary:2")
    yield workspace
    workspace.close()


def test_a_file_projection_is_replayed_and_compared_with_the_live_one(
    shop: Workspace, tmp_path: Path
) -> None:
    plugin = tmp_path / "voiding.py"
    plugin.write_text(CANDIDATE)
    before = hashlib.sha256((tmp_path / "shop.db").read_bytes()).hexdigest()

    result = shop.timetravel.what_if_file(plugin, "order_summary:3", "order_summary:2")

    head = shop.events.head_position()
    assert result.candidate == "order_summary:3"
    assert result.against == f"order_summary:2@{head}" and result.position == head
    live = dict(shop.timetravel.replay("order_summary:2").documents)
    diff = result.diff
    assert diff["added"] == diff["removed"] == {} and diff["unchanged"] == 0
    assert sorted(diff["changed"]) == sorted(live)
    voided = {key for key, change in diff["changed"].items() if change["after"]["status"] == "void"}
    assert voided == {key for key, doc in live.items() if doc["status"] == "cancelled"}
    assert "order_summary:3" not in shop.projections.references()  # nothing installed
    assert not any(name.startswith(PLUGIN_MODULE_PREFIX) and "voiding" in name
                   for name in sys.modules)  # fmt: skip
    assert hashlib.sha256((tmp_path / "shop.db").read_bytes()).hexdigest() == before


def test_a_summary_at_a_point_counts_what_the_full_diff_holds(
    shop: Workspace, tmp_path: Path
) -> None:
    plugin = tmp_path / "_private_name.py"  # a leading _ must not hide the file
    plugin.write_text(CANDIDATE)

    early = shop.timetravel.what_if_file(
        plugin, "order_summary:3@150", "order_summary:2", summary=True
    )
    full = shop.timetravel.what_if_file(plugin, "order_summary:3@150", "order_summary:2")

    assert early.position == 150 and early.against == "order_summary:2@150"
    live = shop.timetravel.replay("order_summary:2@150").documents
    assert early.diff["changed"] == len(full.diff["changed"]) == len(live)
    # The candidate's status is "placed" or "void": every other live status differs.
    differing = sum(doc["status"] != "placed" for doc in live.values())
    assert early.diff["paths"]["status"] == differing


def test_a_file_may_redefine_a_loaded_version(shop: Workspace, tmp_path: Path) -> None:
    plugin = tmp_path / "redefined.py"
    plugin.write_text(REDEFINED)

    result = shop.timetravel.what_if_file(plugin, "order_summary:2", "order_summary:2")

    expected = collect_diff(shop.timetravel.diff("order_summary:2", "order_summary:2"))
    assert expected["changed"] == {}  # the loaded version against itself: nothing
    changed = result.diff["changed"]
    assert changed and all("paid_cents" in c["paths"] for c in changed.values())
    assert all(c["after"]["paid_cents"] == 0 for c in changed.values())
    assert summarize_diff(shop.timetravel.diff("order_summary:2", "order_summary:2")).changed == 0


def test_files_that_cannot_be_used_are_refused_in_one_line(shop: Workspace, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import nowhere\n")
    with pytest.raises(PluginFileFailed, match=r"broken\.py: .*No module named 'nowhere'") as info:
        shop.timetravel.what_if_file(broken, "order_summary:3", "order_summary:2")
    assert "\n" not in str(info.value)

    with pytest.raises(PluginFileFailed, match=r"not a plugin \.py file"):
        shop.timetravel.what_if_file(tmp_path / "missing.py", "order_summary:3", "order_summary:2")
    text = tmp_path / "notes.txt"
    text.write_text(CANDIDATE)
    with pytest.raises(PluginFileFailed, match=r"not a plugin \.py file"):
        shop.timetravel.what_if_file(text, "order_summary:3", "order_summary:2")

    plugin = tmp_path / "voiding.py"
    plugin.write_text(CANDIDATE)
    with pytest.raises(UnknownProjection, match="no version 4"):
        shop.timetravel.what_if_file(plugin, "order_summary:4", "order_summary:2")
