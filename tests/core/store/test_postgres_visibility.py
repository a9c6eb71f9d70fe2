"""PostgreSQL: readers never see position N+1 while the transaction holding N is open."""

from __future__ import annotations

import threading

import pytest

from core.events import NewEvent, wall_clock_micros
from core.store import SqlEventStore

pytestmark = pytest.mark.postgres


def test_a_later_append_never_becomes_visible_before_an_open_earlier_one(
    pg_location: str,
) -> None:
    setup = SqlEventStore.open(pg_location)
    setup.append_to_stream("before-1", [NewEvent("Seeded")])
    setup.close()

    inside = threading.Event()
    release = threading.Event()

    def held_clock() -> int:
        # Called inside the write transaction, after the position is chosen: hold it open.
        inside.set()
        assert release.wait(30)
        return wall_clock_micros()

    slow = SqlEventStore.open(pg_location, clock=held_clock)
    fast = SqlEventStore.open(pg_location)
    reader = SqlEventStore.open(pg_location, read_only=True)
    outcomes: dict[str, object] = {}

    def append(name: str, store: SqlEventStore) -> None:
        outcomes[name] = store.append_to_stream(name, [NewEvent("Appended")])

    try:
        held = threading.Thread(target=append, args=("held-1", slow))
        held.start()
        assert inside.wait(30)
        later = [threading.Thread(target=append, args=(f"later-{n}", fast)) for n in range(3)]
        for thread in later:
            thread.start()
        for thread in later:
            thread.join(timeout=1.0)  # they cannot commit past the open transaction

        seen_while_open = [e.stream_id for e in reader.read_all()]
        assert seen_while_open == ["before-1"]
        assert reader.head_position() == 1

        release.set()
        held.join(timeout=30)
        for thread in later:
            thread.join(timeout=30)
        events = list(reader.read_all())
        assert [e.position for e in events] == [1, 2, 3, 4, 5]
        assert events[1].stream_id == "held-1"  # the open transaction kept position 2
        assert sorted(e.stream_id for e in events[2:]) == ["later-0", "later-1", "later-2"]
        assert len(outcomes) == 4
    finally:
        release.set()
        for store in (slow, fast, reader):
            store.close()
