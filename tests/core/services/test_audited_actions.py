"""Operator actions commit with their ``$audit`` event in one transaction: both or neither.

The audit is made to fail where it really would, in the database: a trigger in the
store refuses events of ``$audit``. A crash between the change and its audit event is a
real ``kill -9`` of a process in the middle of the action.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from core.errors import StoreError
from core.registry import Registry
from core.services.projections import ProjectionStateError
from core.services.writing import AUDIT_STREAM
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_location"))


@pytest.fixture
def workspace(location: str, faulty_registry: Registry) -> Iterator[Workspace]:
    opened = Workspace(SqlEventStore.open(location), faulty_registry)
    for n in range(12):
        data: dict[str, Any] = {"account": f"a{n % 3}", "amount": n + 1}
        if n == 7:
            data["poison"] = True
        opened.writing.append(f"account-a{n % 3}", "Booked", data)
    yield opened
    opened.close()


def refuse_audit_events(location: str, *, reopened: bool = False) -> None:
    """Make the database itself refuse every event of ``$audit`` (a trigger); on SQLite,
    for an action that reopens the store (which refuses a file holding triggers), a
    unique index that refuses any ``$audit`` event after the one already there."""
    if "://" not in location:
        connection = sqlite3.connect(location)
        try:
            connection.execute(
                "CREATE UNIQUE INDEX refuse_audit ON events (stream_id) WHERE stream_id = '$audit'"
                if reopened
                else "CREATE TRIGGER refuse_audit BEFORE INSERT ON events "
                "WHEN NEW.stream_id = '$audit' "
                "BEGIN SELECT RAISE(ABORT, 'the audit log refused it'); END"
            )
            connection.commit()
        finally:
            connection.close()
        return
    engine = create_engine(location)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'the audit log refused it'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON events FOR EACH ROW "
                    "WHEN (NEW.stream_id = '$audit') EXECUTE FUNCTION refuse_audit()"
                )
            )
    finally:
        engine.dispose()


def audit_types(workspace: Workspace) -> list[str]:
    return [e.type for e in workspace.events.read(EventFilter(stream_id=AUDIT_STREAM))]


def snapshot(workspace: Workspace) -> dict[str, Any]:
    """What an action may change: every read model's stored status and documents."""
    history = workspace.projections.history()
    return {
        status.model: (
            status.state,
            status.checkpoint,
            status.history_from,
            status.fault_position,
            history.versions(status.model),
        )
        for status in history.statuses()
    }


ACTIONS: dict[str, Callable[[Workspace], object]] = {
    "pause": lambda w: w.projections.pause("ledger"),
    "resume": lambda w: w.projections.resume("ledger"),
    "retry": lambda w: w.projections.retry("fragile"),
    "skip": lambda w: w.projections.skip("fragile"),
    "reset": lambda w: w.projections.reset("ledger"),
    "rebuild": lambda w: w.projections.run_leased("ledger", rebuild=True),
    "retire": lambda w: w.projections.retire("ledger"),
    "retain": lambda w: w.projections.retain("ledger", 6),
    "writable": lambda w: w.writing.set_writable(True),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_an_action_whose_audit_fails_changes_nothing(
    workspace: Workspace, location: str, action: str
) -> None:
    workspace.projections.run("ledger")
    assert workspace.projections.run("fragile").fault is not None
    if action == "resume":
        workspace.projections.pause("ledger")
    if action == "writable":
        workspace.writing.set_writable(False)
    before, audits_before = snapshot(workspace), audit_types(workspace)
    reopened = action == "writable" and "://" not in location
    refuse_audit_events(location, reopened=reopened)

    refused = "UNIQUE constraint failed" if reopened else "the audit log refused it"
    with pytest.raises(StoreError, match=refused):
        ACTIONS[action](workspace)

    assert snapshot(workspace) == before
    assert audit_types(workspace) == audits_before
    assert workspace.read_only == (action == "writable")


def test_each_action_commits_with_its_audit_event(workspace: Workspace) -> None:
    workspace.projections.run("ledger")
    workspace.projections.run("fragile")
    workspace.projections.pause("ledger")
    workspace.projections.resume("ledger")
    workspace.projections.retry("fragile")
    workspace.projections.run("fragile")
    workspace.projections.skip("fragile")
    workspace.projections.retain("ledger", 6)
    workspace.projections.run_leased("ledger", rebuild=True)
    workspace.projections.reset("ledger")
    workspace.projections.retire("ledger")
    assert audit_types(workspace) == [
        "ProjectionPaused",
        "ProjectionResumed",
        "ProjectionRetried",
        "ProjectionEventSkipped",
        "ProjectionHistoryRetained",
        "ProjectionReset",
        "ProjectionReset",
        "ProjectionRetired",
    ]
    events = list(workspace.events.read(EventFilter(stream_id=AUDIT_STREAM)))
    assert all(event.data["user"] for event in events)
    assert events[3].data["position"] == 8 and "poisoned" in events[3].data["error"]
    assert events[5].data.get("rebuild") is True and "rebuild" not in events[6].data


def _pause_and_die(location: str, plugin_dir: str) -> None:
    """In a child: pause ``ledger`` and be killed right after the change, before its
    audit event is appended."""
    registry = Registry.discover([plugin_dir], environ={}, builtin=False, entry_points=False)
    workspace = Workspace(SqlEventStore.open(location), registry)
    history = workspace.projections.history()
    change_state = history.change_state

    def change_then_die(*args: Any, **options: Any) -> bool:
        changed = change_state(*args, **options)
        os.kill(os.getpid(), 9)  # kill -9: no rollback, no cleanup, nothing flushed
        return changed

    history.change_state = change_then_die  # type: ignore[method-assign]
    workspace.projections.pause("ledger")


def test_a_crash_between_the_change_and_its_audit_leaves_neither(
    workspace: Workspace, location: str, tmp_path: Path, faulty_registry: Registry
) -> None:
    workspace.projections.run("ledger")
    before, audits_before = snapshot(workspace), audit_types(workspace)
    plugin_dir = str(Path(faulty_registry.plugins[0].location).parent)
    child = multiprocessing.get_context("spawn").Process(
        target=_pause_and_die, args=(location, plugin_dir)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -9
    assert snapshot(workspace) == before
    assert workspace.projections.status("ledger").state == "caught up"
    assert audit_types(workspace) == audits_before
    workspace.projections.pause("ledger")  # the store is fine: the next action commits
    assert workspace.projections.status("ledger").state == "paused"


def test_a_skip_that_loses_a_race_records_nothing(workspace: Workspace) -> None:
    workspace.projections.run("fragile")
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def skip() -> None:
        start.wait()
        try:
            outcomes.append(workspace.projections.skip("fragile"))
        except ProjectionStateError as error:
            outcomes.append(error)

    racers = [threading.Thread(target=skip) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    lost = [o for o in outcomes if isinstance(o, ProjectionStateError)]
    assert len(outcomes) == 2 and len(lost) == 1
    assert audit_types(workspace) == ["ProjectionEventSkipped"]
    assert workspace.projections.status("fragile").checkpoint == 8
