"""Read models at a point, from history and by fold, and the diff between two of them."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.projections.history.sql as history_module
import core.store.sql.engines as engines_module
from core.events import NewEvent, format_time
from core.projections.fold import fold_projection
from core.registry import Registry
from core.store import EventFilter, SqlEventStore
from core.timetravel.diff import apply_diff, collect_diff
from core.workspace import Workspace
from tests.core.projections.test_history_migration import schema_7_ddl
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


def tally_workspace(location: Path | str, **options: Any) -> tuple[Workspace, SetClock]:
    """A workspace with the tally projection on a store at ``location`` (a SQLite path or
    a URL; ``options`` go to ``SqlEventStore.open``), and the store's clock."""
    registry = Registry()
    registry.projections[(Tally.name, Tally.version)] = Tally
    clock = SetClock()
    return Workspace(SqlEventStore.open(location, clock=clock, **options), registry), clock


def write(
    workspace: Workspace, clock: SetClock, history: list[tuple[int, str, int, int]]
) -> list[datetime]:
    """Append the history one event at a time; returns each event's time."""
    times, at = [], START
    for stream, kind, n, gap in history:
        at += timedelta(seconds=gap)
        times.append(at)
        clock.now = int(at.timestamp()) * 1_000_000
        workspace.writing.append(f"acct-{stream}", kind, {"n": n})
    return times


def fold_upto(workspace: Workspace, position: int) -> dict[str, Any]:
    return fold_projection(Tally, workspace.events.read(EventFilter(to_position=position)))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=steps, data=st.data())
def test_history_and_fold_agree_at_every_point(
    tmp_path_factory: Any,
    monkeypatch: Any,
    history: list[tuple[int, str, int, int]],
    data: st.DataObject,
) -> None:
    """The state at P is the fold of the first P events, from the fold and from history
    alike; the state at time T is the state at the last position recorded at or before T.
    (History answers early points from the valid_from index, later ones along the key:
    the threshold between them is drawn too.)"""
    monkeypatch.setattr(history_module, "SPARSE_VERSIONS", data.draw(st.integers(0, 40)))
    workspace, clock = tally_workspace(tmp_path_factory.mktemp("h") / "store.db")
    times = write(workspace, clock, history)
    head = workspace.events.head_position()
    points = data.draw(st.lists(st.integers(0, head + 3), min_size=1, max_size=5))
    folded_first = {
        p: dict(workspace.timetravel.iter_documents(workspace.timetravel.locate(f"tally@{p}")))
        for p in points
    }
    workspace.projections.run("tally")
    for point in points:
        at = workspace.timetravel.locate(f"tally@{point}")
        assert at.from_history and at.position == min(point, head)
        expected = fold_upto(workspace, min(point, head))
        assert dict(workspace.timetravel.iter_documents(at)) == expected == folded_first[point]
        for key in [*expected, "missing"]:
            assert workspace.timetravel.document(at, key) == expected.get(key)
    moment = data.draw(st.sampled_from(times)) + timedelta(
        microseconds=data.draw(st.integers(0, 1))
    )
    last = max(n + 1 for n, t in enumerate(times) if t <= moment)
    by_time = workspace.timetravel.locate(f"tally@{format_time(moment)}")
    assert by_time.position == last
    assert dict(workspace.timetravel.iter_documents(by_time)) == fold_upto(workspace, last)
    before_all = workspace.timetravel.locate(f"tally@{format_time(START - timedelta(seconds=1))}")
    assert dict(workspace.timetravel.iter_documents(before_all)) == {}
    workspace.close()


def test_pages_of_a_large_model_are_keyset_ranges(tmp_path: Path) -> None:
    workspace, clock = tally_workspace(tmp_path / "store.db")
    write(workspace, clock, [(n % 5, "Added", n, 0) for n in range(60)])
    workspace.projections.run("tally")
    history = workspace.projections.history()
    whole = list(history.iter_documents_at("tally:1", 30))
    paged = list(history.iter_documents_at("tally:1", 30, page_size=2))
    assert whole == paged and [k for k, _ in whole] == sorted(k for k, _ in whole)
    assert list(history.iter_documents_at("tally:1", 30, after_key="acct-2")) == [
        pair for pair in whole if pair[0] > "acct-2"
    ]
    workspace.close()


def test_diff_of_two_versions_and_of_two_points(tmp_path: Path) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "shop.db"), Registry.discover([]))
    workspace.writing.write_demo("orders", orders=150, seed=4)
    middle = workspace.events.head_position() // 2
    folded_diff = collect_diff(workspace.timetravel.diff("order_summary:1", "order_summary:2"))
    workspace.projections.run("order_summary:1")
    workspace.projections.run("order_summary:2")
    versions = collect_diff(workspace.timetravel.diff("order_summary:1", "order_summary:2"))
    assert versions == folded_diff  # history answers what the fold answered
    assert not versions["added"] and not versions["removed"]
    assert versions["changed"] and versions["unchanged"] > 0
    for change in versions["changed"].values():
        assert change["after"]["status"] == "cancelled"
        assert change["paths"] == ["total_cents"]  # the one rule version 2 changed
    a = workspace.timetravel.replay(f"order_summary:1@{middle}").documents
    b = workspace.timetravel.replay("order_summary:1").documents
    over_time = collect_diff(
        workspace.timetravel.diff(f"order_summary:1@{middle}", "order_summary:1")
    )
    assert over_time["added"] and over_time["changed"]
    assert apply_diff(a, over_time) == b
    assert collect_diff(workspace.timetravel.diff("order_summary:1", "order_summary:1")) == {
        "added": {},
        "removed": {},
        "changed": {},
        "unchanged": len(b),
    }
    first_page = list(
        itertools.islice(
            workspace.timetravel.iter_documents(workspace.timetravel.locate("order_summary:1")), 3
        )
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
    at_60 = workspace.timetravel.replay("tally@60")
    assert CountingTally.applied == 60 and at_60.source == "fold"
    at_75 = workspace.timetravel.replay("tally@75")
    assert CountingTally.applied == 60 + 15  # only the events after the snapshot at 60
    at_30 = workspace.timetravel.replay("tally@30")
    assert CountingTally.applied == 75 + 30  # no snapshot at or before 30: from the start
    for replayed, position in ((at_60, 60), (at_75, 75), (at_30, 30)):
        assert replayed.documents == fold_upto(workspace, position)
    assert workspace.timetravel.replay("tally@75").documents == at_75.documents
    assert CountingTally.applied == 105  # the same point again: straight from its snapshot
    workspace.timetravel.snapshots.budget = 10  # a model bigger than the budget is not kept
    workspace.timetravel.snapshots.keep("other:1", 5, {"k": {"big": "x" * 100}})
    assert workspace.timetravel.snapshots.nearest("other:1", 9) == (0, {})
    workspace.close()


def sparse_store(workspace: Workspace, later: int) -> None:
    """Six events on five streams, then ``later`` more on two streams: a point early in
    the log has every key alive but few of the model's versions begun."""
    store = workspace.handle.store
    for n in range(5):
        store.append_to_stream(f"acct-{n}", [NewEvent("Added", {"n": n})])
    store.append_to_stream("acct-0", [NewEvent("Closed", {})])
    for stream in ("acct-1", "acct-2"):
        store.append_to_stream(stream, [NewEvent("Added", {"n": 1}) for _ in range(later // 2)])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_pages_at_a_point_before_most_versions_equal_the_fold(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: Any
) -> None:
    """Early points are read from the valid_from index (few versions begun there), later
    ones along the primary key: page by page, after a key, both give the fold."""
    monkeypatch.setattr(history_module, "SPARSE_VERSIONS", 30)
    if backend == "sqlite":
        location = str(tmp_path / "store.db")
    else:
        location = str(request.getfixturevalue("pg_location"))
    workspace, _ = tally_workspace(location)
    sparse_store(workspace, 80)
    workspace.projections.run("tally")
    history = workspace.projections.history()
    sparse_before = history._sparse_before("tally:1")
    assert sparse_before is not None and 6 < sparse_before < workspace.events.head_position()
    for point in (0, 1, 3, 6, sparse_before - 1, sparse_before, workspace.events.head_position()):
        expected = fold_upto(workspace, point)
        assert history._sparse("tally:1", point) == (point < sparse_before)
        assert list(history.iter_documents_at("tally:1", point)) == sorted(expected.items())
        assert list(history.iter_documents_at("tally:1", point, page_size=1)) == sorted(
            expected.items()
        )
        assert list(history.iter_documents_at("tally:1", point, after_key="acct-2")) == [
            (key, doc) for key, doc in sorted(expected.items()) if key > "acct-2"
        ]
    workspace.close()


def test_a_page_before_most_versions_does_not_read_them(tmp_path: Path, monkeypatch: Any) -> None:
    """The first page at a point where few versions had begun costs the same however many
    versions follow (SQLite virtual-machine steps, counted by the store's progress
    handler): the walk along the key would read every one of them."""
    steps: list[int] = []
    original = engines_module._sqlite_job_cancelled

    def counting() -> bool:
        steps.append(1)
        return original()

    monkeypatch.setattr(engines_module, "_SQLITE_CANCEL_CHECK_STEPS", 100)
    monkeypatch.setattr(engines_module, "_sqlite_job_cancelled", counting)
    monkeypatch.setattr(history_module, "SPARSE_VERSIONS", 50)
    cost = {}
    for later in (200, 4000):
        workspace, _ = tally_workspace(tmp_path / f"store-{later}.db")
        sparse_store(workspace, later)
        workspace.projections.run("tally")
        at = workspace.timetravel.locate("tally@6")
        assert at.from_history
        list(itertools.islice(workspace.timetravel.iter_documents(at), 50))  # the limit found once
        steps.clear()
        page = list(itertools.islice(workspace.timetravel.iter_documents(at), 50))
        cost[later] = len(steps)
        assert dict(page) == fold_upto(workspace, 6)
        workspace.close()
    assert cost[4000] <= cost[200] + 2, cost


def test_an_older_store_read_only_folds_from_the_log(tmp_path: Path) -> None:
    """A schema-7 store opened read-only (not migrated) has the history layout before the
    append-only one, which is not read: every point is folded from the log instead."""
    path = tmp_path / "store.db"
    workspace, _ = tally_workspace(path)
    sparse_store(workspace, 80)
    workspace.projections.run("tally")
    workspace.close()
    with sqlite3.connect(path) as raw:
        for statement in schema_7_ddl("sqlite"):
            raw.execute(statement)
        raw.execute("UPDATE eventscope_meta SET value = '7' WHERE key = 'schema_version'")
    raw.close()
    reader, _ = tally_workspace(path, read_only=True)
    assert reader.handle._opened.store.schema_version == 7
    for point in (1, 6, 20):
        at = reader.timetravel.locate(f"tally@{point}")
        assert not at.from_history
        assert dict(reader.timetravel.iter_documents(at)) == fold_upto(reader, point)
    reader.close()
