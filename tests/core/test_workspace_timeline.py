"""Counting events and the timeline of event rate, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.events import NewEvent, from_micros
from core.store import EventFilter, EventStore
from core.workspace import Workspace

BASE = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def workspace(make_store) -> Workspace:  # type: ignore[no-untyped-def]
    """Events at seconds 0,0,1,5,5,5,9 (two types, two categories)."""
    now = [BASE]
    store: EventStore = make_store(clock=lambda: now[0])
    for n, second in enumerate([0, 0, 1, 5, 5, 5, 9]):
        now[0] = BASE + second * 1_000_000
        kind = "Paid" if n % 2 else "Placed"
        store.append_to_stream(f"{'order' if n < 5 else 'cart'}-{n}", [NewEvent(kind, {"n": n})])
    return Workspace(store)


def at(second: float) -> object:
    return from_micros(BASE + int(second * 1_000_000))


def test_counts(workspace: Workspace) -> None:
    assert workspace.events.count() == 7
    assert workspace.events.count(EventFilter(types=("Paid",))) == 3
    assert workspace.events.count(EventFilter(category="cart")) == 2
    assert workspace.events.count(EventFilter(since=at(1), until=at(5))) == 4  # type: ignore[arg-type]
    assert (
        workspace.events.count(EventFilter(from_position=3, to_position=5, types=("Placed",))) == 2
    )


def test_timeline_buckets_count_every_event_once(workspace: Workspace) -> None:
    start, end = workspace.events.time_span()  # type: ignore[misc]
    assert (start, end) == (at(0), at(9))
    assert workspace.events.timeline(start, end, 9) == [2, 1, 0, 0, 0, 3, 0, 0, 1]
    assert workspace.events.timeline(start, end, 1) == [7]
    assert workspace.events.timeline(at(-10), at(-1), 3) == [0, 0, 0]  # type: ignore[arg-type]
    assert sum(workspace.events.timeline(start - timedelta(seconds=3), end, 7)) == 7


def test_filtered_timeline(workspace: Workspace) -> None:
    start, end = workspace.events.time_span()  # type: ignore[misc]
    paid = EventFilter(types=("Paid",))
    assert workspace.events.timeline(start, end, 3, paid) == [1, 2, 0]
    assert workspace.events.timeline(start, end, 3, EventFilter(category="cart")) == [0, 1, 1]
    # A filter's own position bounds (the log's "stream up to here") narrow each bucket.
    assert workspace.events.timeline(
        start, end, 3, EventFilter(to_position=4, types=("Paid",))
    ) == [
        1,
        1,
        0,
    ]
    assert workspace.events.timeline(
        start, end, 3, EventFilter(from_position=5, category="order")
    ) == [
        0,
        1,
        0,
    ]


def test_time_span_of_an_empty_store(make_store) -> None:  # type: ignore[no-untyped-def]
    assert Workspace(make_store()).events.time_span() is None


def test_reopening_switches_between_read_only_and_writable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.errors import StoreReadOnly
    from core.store import SqlEventStore

    path = tmp_path / "switch.db"
    SqlEventStore.open(path).close()
    workspace = Workspace(SqlEventStore.open(path, read_only=True))
    with pytest.raises(StoreReadOnly):
        workspace.writing.append("ops-1", "Tried", {})
    workspace.handle.switch(read_only=False)
    assert not workspace.read_only
    workspace.writing.append("ops-1", "SwitchedToWritable", {"by": "tests"})
    workspace.handle.switch(read_only=True)
    assert workspace.read_only and workspace.events.head_position() == 1
    with pytest.raises(StoreReadOnly):
        workspace.writing.append("ops-1", "Tried", {})
    workspace.close()
