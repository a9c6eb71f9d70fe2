"""The store contract for close(): final, on every backend, and for SQL without a single
new connection afterwards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from core.errors import StoreClosed
from core.events import NewEvent
from core.store import EventFilter, EventStore, SqlEventStore
from core.store.sql import display_location


def operations(store: EventStore) -> dict[str, Callable[[], Any]]:
    """Every operation of the store port (and the SQL store's own), each run to its end."""

    def in_transaction() -> None:
        with store.transaction() as unit:
            unit.append_to_stream("s-1", [NewEvent("B")])

    ops: dict[str, Callable[[], Any]] = {
        "append_to_stream": lambda: store.append_to_stream("s-1", [NewEvent("B")]),
        "empty append": lambda: store.append_to_stream("s-1", []),
        "transaction": in_transaction,
        "import_records": lambda: store.import_records([]),
        "read": lambda: list(store.read()),
        "read backwards": lambda: list(store.read(EventFilter(text="x"), backwards=True)),
        "read_all": lambda: list(store.read_all()),
        "iter_raw": lambda: list(store.iter_raw()),
        "read_stream": lambda: list(store.read_stream("s-1")),
        "count": lambda: store.count(),
        "count search": lambda: store.count(EventFilter(text="x")),
        "event_by_id": lambda: store.event_by_id("00000000-0000-7000-8000-000000000000"),
        "stream_info": lambda: store.stream_info("s-1"),
        "list_streams": lambda: list(store.list_streams()),
        "recent_streams": lambda: list(store.recent_streams()),
        "head_position": store.head_position,
        "position_at": lambda: store.position_at(datetime(2100, 1, 1, tzinfo=UTC)),
        "indexed_position": store.indexed_position,
        "update_index": store.update_index,
        "check": store.check,
    }
    if isinstance(store, SqlEventStore):

        def write_transaction() -> None:
            with store.write_transaction() as cursor:
                cursor.execute("SELECT 1")

        def read_transaction() -> None:
            with store.read_transaction() as cursor:
                cursor.execute("SELECT 1")

        ops["write_transaction"] = write_transaction
        ops["read_transaction"] = read_transaction
    return ops


def test_every_operation_of_a_closed_store_raises_store_closed(store: EventStore) -> None:
    store.append_to_stream("s-1", [NewEvent("A", {"x": 1})])
    for name, operation in operations(store).items():
        operation()  # each works while the store is open
        assert store.head_position() > 0, name
    store.close()
    store.close()  # closing again is fine
    expected = f"{display_location(store.location)}: the store is closed"
    for name, operation in operations(store).items():
        with pytest.raises(StoreClosed) as caught:
            operation()
        assert str(caught.value) == expected, name


def test_a_closed_store_stays_closed_after_resume(store: EventStore) -> None:
    store.close()
    store.resume()
    with pytest.raises(StoreClosed):
        store.head_position()


def test_a_closed_sql_store_opens_no_connection(make_store, backend: str) -> None:  # type: ignore[no-untyped-def]
    if backend == "memory":
        pytest.skip("the in-memory store has no connections")
    store = make_store()
    store.append_to_stream("s-1", [NewEvent("A", {"x": 1})])
    connections = store._connections
    engine = connections.engine
    used: list[str] = []
    sa_event.listen(engine, "connect", lambda *args: used.append("connect"))
    sa_event.listen(engine, "checkout", lambda *args: used.append("checkout"))
    if connections._sqlite_connect is not None:  # SQLite reads use connections of their own
        connections._idle_readers.clear()
        opened = connections._sqlite_connect

        def counted() -> Any:
            used.append("reader")
            return opened()

        connections._sqlite_connect = counted
    assert store.head_position() == 1
    assert used  # the listeners see the store's connections
    store.close()
    used.clear()
    for operation in operations(store).values():
        with pytest.raises(StoreClosed):
            operation()
    assert used == []
