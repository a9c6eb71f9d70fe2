"""The plugins service: a reload reads the plugin files again, and the others follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import EventscopeError
from core.registry import Registry
from core.store import SqlEventStore
from core.workspace import Workspace

PLUGIN = """
from core.api import Projection, handles


class Totals(Projection):
    name = "totals"
    version = {version}

    @handles("Booked")
    def booked(self, view, event):
        doc = view.get("all") or {{"sum": 0}}
        doc["sum"] += event.data["amount"] * {factor}
        view.put("all", doc)
"""


def test_a_reload_sees_the_files_as_they_are_now(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    plugin = folder / "totals.py"
    plugin.write_text(PLUGIN.format(version=1, factor=1))
    store = tmp_path / "store.db"
    SqlEventStore.open(store).close()
    with Workspace.open(str(store), read_only=False, plugin_dirs=[folder]) as workspace:
        workspace.writing.append("ledger-1", "Booked", {"amount": 5})
        assert "totals:1" in workspace.projections.references()
        workspace.projections.run("totals")
        assert workspace.timetravel.replay("totals").documents == {"all": {"sum": 5}}

        plugin.write_text(PLUGIN.format(version=2, factor=10))
        catalog = workspace.plugins.reload()

        (totals,) = [info for info in catalog if info.name == "totals"]
        assert [p.reference() for p in totals.projections] == ["totals:2"]
        assert "totals:2" in workspace.projections.references()
        assert "totals:1" not in workspace.projections.references()
        # The other services use the new code at once.
        assert workspace.timetravel.replay("totals").documents == {"all": {"sum": 50}}
        assert workspace.projections.run("totals").checkpoint == 1
        statuses = {s.reference: s.state for s in workspace.projections.statuses()}
        assert statuses["totals:2"] == "caught up"


def test_plugins_given_whole_cannot_be_reloaded(tmp_path: Path) -> None:
    with Workspace(SqlEventStore.open(tmp_path / "store.db"), Registry()) as workspace:
        with pytest.raises(EventscopeError, match="no reload"):
            workspace.plugins.reload()
