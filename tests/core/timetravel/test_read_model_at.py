"""Read models at a point, from history and by fold, and the diff between two of them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import format_time
from core.projections.fold import fold_projection
from core.registry import Registry
from core.store import EventFilter, SqlEventStore
from core.timetravel.diff import apply_diff, collect_diff
from core.workspace import Workspace
from tests.core.projections.test_runner import Tally

START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

#: One step of a history: (stream number, kind, n, seconds after the previous event).
steps = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.sampled_from(["Added", "Added", "Added", "Closed", "Ignored"]),
        st.integers(-50, 50),
        st.sampled_from([0, 0, 1, 7]),  # several events often share a time
    ),
    min_size=1,
    max_size=40,
)


class SetClock:
    """The store's clock, set by the test before each append (microseconds)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def tally_workspace(path: Path) -> tuple[Workspace, SetClock]:
    registry = Registry()
    registry.projections[(Tally.name, Tally.version)] = Tally
    clock = SetClock()
    return Workspace(SqlEventStore.open(path, clock=clock), registry), clock


def write(
    workspace: Workspace, clock: SetClock, history: list[tuple[int, str, int, int]]
) -> list[datetime]:
    """Append the history one event at a time; returns each event's time."""
    times, at = [], START
    for stream, kind, n, gap in history:
        at += timedelta(seconds=gap)
        times.append(at)
        clock.now = int(at.timestamp()) * 1_000_000
        workspace.append(f"acct-{stream}", kind, {"n": n})
    return times


def fold_upto(workspace: Workspace, position: int) -> dict[str, Any]:
    return fold_projection(Tally, workspace.read(EventFilter(to_position=position)))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=steps, data=st.data())
def test_history_and_fold_agree_at_every_point(
    tmp_path_factory: Any, history: list[tuple[int, str, int, int]], data: st.DataObject
) -> None:
    """The state at P is the fold of the first P events, from the fold and from history
    alike; the state at time T is the state at the last position recorded at or before T."""
    workspace, clock = tally_workspace(tmp_path_factory.mktemp("h") / "store.db")
    times = write(workspace, clock, history)
    head = workspace.head_position()
    points = data.draw(st.lists(st.integers(0, head + 3), min_size=1, max_size=5))
    folded_first = {
        p: dict(workspace.iter_documents(workspace.locate(f"tally@{p}"))) for p in points
    }
    workspace.run_projection("tally")
    for point in points:
        at = workspace.locate(f"tally@{point}")
        assert at.from_history and at.position == min(point, head)
        expected = fold_upto(workspace, min(point, head))
        assert dict(workspace.iter_documents(at)) == expected == folded_first[point]
        for key in [*expected, "missing"]:
            assert workspace.document(at, key) == expected.get(key)
    moment = data.draw(st.sampled_from(times)) + timedelta(
        microseconds=data.draw(st.integers(0, 1))
    )
    last = max(n + 1 for n, t in enumerate(times) if t <= moment)
    by_time = workspace.locate(f"tally@{format_time(moment)}")
    assert by_time.position == last
    assert dict(workspace.iter_documents(by_time)) == fold_upto(workspace, last)
    before_all = workspace.locate(f"tally@{format_time(START - timedelta(seconds=1))}")
    assert dict(workspace.iter_documents(before_all)) == {}
    workspace.close()


def test_pages_of_a_large_model_are_keyset_ranges(tmp_path: Path) -> None:
    workspace, clock = tally_workspace(tmp_path / "store.db")
    write(workspace, clock, [(n % 5, "Added", n, 0) for n in range(60)])
    workspace.run_projection("tally")
    history = workspace.require_history()
    whole = list(history.iter_documents_at("tally:1", 30))
    paged = list(history.iter_documents_at("tally:1", 30, page_size=2))
    assert whole == paged and [k for k, _ in whole] == sorted(k for k, _ in whole)
    assert list(history.iter_documents_at("tally:1", 30, after_key="acct-2")) == [
        pair for pair in whole if pair[0] > "acct-2"
    ]
    workspace.close()


def test_diff_of_two_versions_and_of_two_points(tmp_path: Path) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "shop.db"), Registry.discover([]))
    workspace.write_demo("orders", orders=150, seed=4)
    middle = workspace.head_position() // 2
    folded_diff = collect_diff(workspace.diff("order_summary:1", "order_summary:2"))
    workspace.run_projection("order_summary:1")
    workspace.run_projection("order_summary:2")
    versions = collect_diff(workspace.diff("order_summary:1", "order_summary:2"))
    assert versions == folded_diff  # history answers what the fold answered
    assert not versions["added"] and not versions["removed"]
    assert versions["changed"] and versions["unchanged"] > 0
    for change in versions["changed"].values():
        assert change["after"]["status"] == "cancelled"
        assert change["paths"] == ["total_cents"]  # the one rule version 2 changed
    a = workspace.replay(f"order_summary:1@{middle}").documents
    b = workspace.replay("order_summary:1").documents
    over_time = collect_diff(workspace.diff(f"order_summary:1@{middle}", "order_summary:1"))
    assert over_time["added"] and over_time["changed"]
    assert apply_diff(a, over_time) == b
    assert collect_diff(workspace.diff("order_summary:1", "order_summary:1")) == {
        "added": {},
        "removed": {},
        "changed": {},
        "unchanged": len(b),
    }
    first_page = list(
        itertools.islice(workspace.iter_documents(workspace.locate("order_summary:1")), 3)
    )
    assert [key for key, _ in first_page] == sorted(b)[:3]
    workspace.close()


class CountingTally(Tally):
    """Tally that counts the events its handlers apply (class-wide)."""

    applied = 0

    def apply(self, view: Any, event: Any) -> bool:
        CountingTally.applied += 1
        return super().apply(view, event)


def test_repeated_seeks_by_fold_start_from_the_nearest_snapshot(tmp_path: Path) -> None:
    workspace, clock = tally_workspace(tmp_path / "store.db")
    workspace.registry.projections[(Tally.name, Tally.version)] = CountingTally
    write(workspace, clock, [(n % 3, "Added", n, 0) for n in range(100)])
    CountingTally.applied = 0
    at_60 = workspace.replay("tally@60")
    assert CountingTally.applied == 60 and at_60.source == "fold"
    at_75 = workspace.replay("tally@75")
    assert CountingTally.applied == 60 + 15  # only the events after the snapshot at 60
    at_30 = workspace.replay("tally@30")
    assert CountingTally.applied == 75 + 30  # no snapshot at or before 30: from the start
    for replayed, position in ((at_60, 60), (at_75, 75), (at_30, 30)):
        assert replayed.documents == fold_upto(workspace, position)
    assert workspace.replay("tally@75").documents == at_75.documents
    assert CountingTally.applied == 105  # the same point again: straight from its snapshot
    workspace.snapshots.budget = 10  # a model bigger than the budget is not kept
    workspace.snapshots.keep("other:1", 5, {"k": {"big": "x" * 100}})
    assert workspace.snapshots.nearest("other:1", 9) == (0, {})
    workspace.close()
