"""Versions side by side, and the status figures operators watch (lag, throughput)."""

from __future__ import annotations

import time
from pathlib import Path

from core.events import NewEvent, wall_clock_micros
from core.registry import Registry
from core.scheduler import ProjectionScheduler
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace


def test_version_1_keeps_serving_while_version_2_builds_and_both_stay_current(
    tmp_path: Path,
) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "shop.db"), Registry.discover([]))
    workspace.writing.write_demo("orders", orders=400, seed=3)
    workspace.projections.run("order_summary:1")
    served = workspace.timetravel.replay("order_summary:1")
    assert served.source == "history"

    seen_while_building: list[tuple[str, str]] = []
    scheduler = ProjectionScheduler(
        workspace, references=["order_summary:2"], worker="builder", batch_size=100
    )
    scheduler.start()
    try:
        while workspace.projections.status("order_summary:2").lag > 0:
            # Version 1 answers from its history, unchanged, while version 2 builds.
            now = workspace.timetravel.replay("order_summary:1")
            seen_while_building.append(
                (now.source, workspace.projections.status("order_summary:2").state)
            )
            assert now.documents == served.documents
            time.sleep(0.01)
    finally:
        scheduler.shutdown()
    assert ("history", "catching up") in seen_while_building

    both = ProjectionScheduler(
        workspace, references=["order_summary:1", "order_summary:2"], worker="both"
    )
    both.start()
    try:
        open_order = next(k for k, d in served.documents.items() if d["status"] == "paid")
        workspace.commands.execute(
            "CancelOrder", {"order_id": open_order, "reason": "changed my mind"}
        )
        deadline = time.monotonic() + 20
        while any(s.lag for s in workspace.projections.statuses() if s.name == "order_summary"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        both.shutdown()
    v1, v2 = (workspace.timetravel.replay(f"order_summary:{v}") for v in (1, 2))
    assert v1.source == v2.source == "history"
    assert v1.documents.keys() == v2.documents.keys()
    differing = [k for k in v1.documents if v1.documents[k] != v2.documents[k]]
    assert open_order in differing  # the new cancellation reached both versions
    assert v1.documents[open_order]["total_cents"] > 0
    assert all(v2.documents[k]["status"] == "cancelled" for k in differing)
    assert all(v2.documents[k]["total_cents"] == 0 for k in differing)
    workspace.close()


def test_lag_in_events_and_seconds_and_throughput(
    tmp_path: Path, faulty_registry: Registry
) -> None:
    an_hour_ago = wall_clock_micros() - 3_600_000_000
    ticks = iter(range(an_hour_ago, an_hour_ago + 10_000_000, 1_000))
    store = SqlEventStore.open(tmp_path / "store.db", clock=lambda: next(ticks))
    for n in range(30):
        store.append_to_stream("account-a", [NewEvent("Booked", {"account": "a", "amount": n})])
    workspace = Workspace(store, faulty_registry)
    never = workspace.projections.status("ledger")
    assert (never.state, never.lag, never.throughput) == ("never run", 30, 0.0)
    assert 3_590 < never.lag_seconds < 3_700  # the oldest unapplied event is an hour old
    workspace.projections.run("ledger", until=10)
    behind = workspace.projections.status("ledger")
    assert (behind.state, behind.checkpoint, behind.lag) == ("behind", 10, 20)
    eleventh = next(workspace.events.read(EventFilter(from_position=11), limit=1))
    expected = time.time() - eleventh.recorded_at.timestamp()
    assert abs(behind.lag_seconds - expected) < 5
    assert behind.throughput > 0  # positions per second over the last minute's runs
    workspace.projections.run("ledger")
    done = workspace.projections.status("ledger")
    assert (done.state, done.lag, done.lag_seconds) == ("caught up", 0, 0.0)
    workspace.close()
