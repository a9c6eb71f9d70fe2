"""Write transactions: appends made in one commit together, or none of them does."""

from __future__ import annotations

import pytest

from core.errors import StoreReadOnly, WrongExpectedVersion
from core.events import NewEvent
from core.store import EventStore, SqlEventStore
from tests.conftest import StoreFactory


def test_appends_in_a_transaction_commit_together(store: EventStore) -> None:
    with store.transaction() as unit:
        first = unit.append_to_stream("a-1", [NewEvent("Opened", {"n": 1})], "no_stream")
        second = unit.append_to_stream("$audit", [NewEvent("Noted", {"n": 2})])
    assert (first.first_position, second.first_position) == (1, 2)
    stored = [(e.stream_id, e.type, e.version) for e in store.read()]
    assert stored == [("a-1", "Opened", 0), ("$audit", "Noted", 0)]
    assert store.check().ok


def test_a_transaction_that_raises_leaves_nothing(store: EventStore) -> None:
    store.append_to_stream("a-1", [NewEvent("Opened", {})])
    undone: list[str] = []
    with pytest.raises(WrongExpectedVersion), store.transaction() as unit:
        unit.on_rollback(lambda: undone.append("read model"))
        unit.append_to_stream("$audit", [NewEvent("Noted", {})])
        unit.append_to_stream("a-1", [NewEvent("Closed", {})], "no_stream")  # a conflict
    assert [e.type for e in store.read()] == ["Opened"]
    assert undone == ["read model"]
    # The store goes on from where it was: the next append takes position 2.
    assert store.append_to_stream("a-1", [NewEvent("Closed", {})], 0).first_position == 2
    assert store.check().ok


def test_an_exception_of_the_caller_rolls_back_too(store: EventStore) -> None:
    with pytest.raises(RuntimeError, match="crash"), store.transaction() as unit:
        unit.append_to_stream("$audit", [NewEvent("Noted", {})])
        raise RuntimeError("crash between the change and its audit")
    assert list(store.read()) == []


def test_a_read_only_store_refuses_a_transaction(backend: str, make_store: StoreFactory) -> None:
    if backend == "memory":
        pytest.skip("the in-memory store is never opened read-only")
    make_store().close()
    reader = make_store(read_only=True)
    with pytest.raises(StoreReadOnly), reader.transaction():
        pass


def test_postgres_transactions_lock_the_events_only_at_their_first_append(
    pg_location: str,
) -> None:
    """A transaction that has not appended yet does not hold appends up."""
    store = SqlEventStore.open(pg_location)
    other = SqlEventStore.open(pg_location)
    try:
        with store.transaction() as unit:
            other.append_to_stream("b-1", [NewEvent("Opened", {})])  # not blocked
            unit.append_to_stream("$audit", [NewEvent("Noted", {})])
        assert [e.stream_id for e in store.read()] == ["b-1", "$audit"]
    finally:
        store.close()
        other.close()
