"""The store contract for reads: streams, the log, filters, times, paging, listings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.events import NewEvent, from_micros
from core.store import EventFilter, EventStore, SqlEventStore

BASE = 1_700_000_000_000_000  # microseconds


@pytest.fixture
def clocked(make_store):  # type: ignore[no-untyped-def]
    """A store whose clock the test sets, and a helper that appends at a given second."""
    now = [BASE]
    store = make_store(clock=lambda: now[0])

    def append_at(second: int, stream_id: str, kind: str = "Happened", **data: object) -> None:
        now[0] = BASE + second * 1_000_000
        store.append_to_stream(stream_id, [NewEvent(kind, dict(data))])

    return store, append_at


@pytest.fixture
def history(clocked):  # type: ignore[no-untyped-def]
    """Ten events over three streams in two categories, one per second from t=0."""
    store, append_at = clocked
    plan = [
        ("order-1", "OrderPlaced"),
        ("order-2", "OrderPlaced"),
        ("order-1", "OrderPaid"),
        ("customer-9", "Registered"),
        ("order-1", "OrderShipped"),
        ("order-2", "OrderCancelled"),
        ("customer-9", "Renamed"),
        ("order-1", "OrderDelivered"),
        ("order-3", "OrderPlaced"),
        ("order-3", "OrderPaid"),
    ]
    for second, (stream_id, kind) in enumerate(plan):
        append_at(second, stream_id, kind, n=second)
    return store


def positions(events) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.position for e in events]


def test_read_stream_forward_backward_and_from_version(history: EventStore) -> None:
    assert [e.type for e in history.read_stream("order-1")] == [
        "OrderPlaced", "OrderPaid", "OrderShipped", "OrderDelivered",
    ]  # fmt: skip
    assert [e.version for e in history.read_stream("order-1", backwards=True)] == [3, 2, 1, 0]
    assert [e.version for e in history.read_stream("order-1", from_version=2)] == [2, 3]
    assert [e.version for e in history.read_stream("order-1", from_version=1, backwards=True)] == [
        1,
        0,
    ]
    assert [e.version for e in history.read_stream("order-1", limit=2)] == [0, 1]
    assert list(history.read_stream("missing-1")) == []


def test_read_all_from_a_position(history: EventStore) -> None:
    assert positions(history.read_all()) == list(range(1, 11))
    assert positions(history.read_all(from_position=8)) == [8, 9, 10]
    assert positions(history.read_all(from_position=11)) == []
    assert positions(history.read(EventFilter(from_position=4), backwards=True)) == [4, 3, 2, 1]


def test_read_by_category_and_types(history: EventStore) -> None:
    assert positions(history.read(EventFilter(category="customer"))) == [4, 7]
    assert positions(history.read(EventFilter(types=("OrderPlaced",)))) == [1, 2, 9]
    assert positions(history.read(EventFilter(types=("OrderPaid", "Renamed")))) == [3, 7, 10]
    assert positions(
        history.read(EventFilter(category="order", types=("OrderPlaced",)), backwards=True)
    ) == [9, 2, 1]
    assert positions(history.read(EventFilter(stream_id="order-2", from_position=3))) == [6]


def test_read_up_to_a_time(history: EventStore) -> None:
    at = from_micros(BASE + 4_500_000)
    assert positions(history.read(EventFilter(until=at))) == [1, 2, 3, 4, 5]
    assert positions(history.read(EventFilter(until=at, category="order"))) == [1, 2, 3, 5]
    before = from_micros(BASE - 1)
    assert positions(history.read(EventFilter(until=before))) == []


def test_position_at_a_time(history: EventStore) -> None:
    assert history.position_at(from_micros(BASE - 1)) == 0
    assert history.position_at(from_micros(BASE)) == 1
    assert history.position_at(from_micros(BASE + 2_999_999)) == 3
    assert history.position_at(from_micros(BASE + 3_000_000)) == 4
    assert history.position_at(datetime(2100, 1, 1, tzinfo=UTC)) == 10
    with pytest.raises(ValueError, match="zone"):
        history.position_at(datetime(2100, 1, 1))


def test_equal_times_resolve_to_the_last_position(clocked) -> None:  # type: ignore[no-untyped-def]
    store, append_at = clocked
    for stream_id in ("a-1", "a-2", "a-3"):
        append_at(5, stream_id)
    append_at(6, "a-4")
    assert store.position_at(from_micros(BASE + 5_000_000)) == 3


def test_limits_and_paging_across_page_boundaries(clocked, backend: str) -> None:  # type: ignore[no-untyped-def]
    store, append_at = clocked
    if isinstance(store, SqlEventStore):
        store.page_size = 7
    for second in range(50):
        append_at(second, f"s-{second % 3}")
    assert positions(store.read_all()) == list(range(1, 51))
    assert positions(store.read_all(limit=23)) == list(range(1, 24))
    assert positions(store.read(EventFilter(from_position=45), backwards=True, limit=9)) == list(
        range(45, 36, -1)
    )
    assert [e.version for e in store.read_stream("s-1")] == list(range(17))
    assert [e.version for e in store.read_stream("s-1", backwards=True, limit=10)] == list(
        range(16, 6, -1)
    )
    assert positions(store.read(EventFilter(stream_id="s-2"))) == list(range(3, 51, 3))


def test_stream_listing(history: EventStore) -> None:
    listed = list(history.list_streams())
    assert [s.stream_id for s in listed] == ["customer-9", "order-1", "order-2", "order-3"]
    order_1 = listed[1]
    assert (order_1.category, order_1.version, order_1.event_count) == ("order", 3, 4)
    assert (order_1.first_position, order_1.last_position) == (1, 8)
    assert order_1.first_recorded_at == from_micros(BASE)
    assert order_1.last_recorded_at == from_micros(BASE + 7_000_000)
    assert [s.stream_id for s in history.list_streams(prefix="order-")] == [
        "order-1", "order-2", "order-3",
    ]  # fmt: skip
    assert [s.stream_id for s in history.list_streams(category="customer")] == ["customer-9"]
    assert [s.stream_id for s in history.list_streams(after="order-1", limit=1)] == ["order-2"]
    assert history.stream_info("order-2") == listed[2]
    assert history.stream_info("missing") is None


def test_stream_listing_pages(clocked) -> None:  # type: ignore[no-untyped-def]
    store, append_at = clocked
    if isinstance(store, SqlEventStore):
        store.page_size = 4
    names = [f"item-{n:03d}" for n in range(30)]
    for second, name in enumerate(names):
        append_at(second, name)
    assert [s.stream_id for s in store.list_streams()] == names
    assert [s.stream_id for s in store.list_streams(prefix="item-01")] == names[10:20]


def test_reads_are_consistent_after_reopening(backend: str, make_store) -> None:  # type: ignore[no-untyped-def]
    if backend == "memory":
        pytest.skip("nothing to reopen")
    writer = make_store()
    writer.append_to_stream("order-1", [NewEvent("A", {"x": [1, 2, {"y": None}]})])
    reader = make_store(read_only=True)
    (event,) = reader.read_all()
    assert event.data == {"x": [1, 2, {"y": None}]}
    assert event.recorded_at > datetime.now(UTC) - timedelta(minutes=5)


def test_time_lookup_and_keyset_reads_use_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The store's own queries: position_at is an index probe, filtered pages index ranges."""
    from sqlalchemy import event as sa_event

    store = SqlEventStore.open(tmp_path / "plan.db")
    store.page_size = 2
    for n in range(5):
        store.append_to_stream(f"order-{n}", [NewEvent("A"), NewEvent("B")])
    captured: list[str] = []

    def trace(sql: str) -> None:
        if sql.startswith(("SELECT", "WITH")) and "FROM events" in sql:
            captured.append(sql)

    connections = store._connections
    connections.engine.dispose()  # new connections, each traced from its start
    sa_event.listen(
        connections.engine, "connect", lambda dbapi, record: dbapi.set_trace_callback(trace)
    )
    # Reads run on the store's own SQLite connections: new ones, traced too.
    connections._idle_readers.clear()
    opened = connections._sqlite_connect
    assert opened is not None

    def traced():  # type: ignore[no-untyped-def]
        connection = opened()
        connection.set_trace_callback(trace)
        return connection

    connections._sqlite_connect = traced

    def plans_of(action) -> list[str]:  # type: ignore[no-untyped-def]
        captured.clear()
        action()
        statements = list(captured)
        with store._connections.reading() as conn:
            return [
                " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
                for sql in statements
            ]

    time_plans = plans_of(lambda: store.position_at(datetime(2100, 1, 1, tzinfo=UTC)))
    type_plans = plans_of(lambda: list(store.read(EventFilter(types=("A",)))))
    category_plans = plans_of(lambda: list(store.read(EventFilter(category="order"))))
    # A projection runner's batch: several types over a bounded range scans that range.
    batch = EventFilter(types=("A", "B"), from_position=3, to_position=8)
    batch_plans = plans_of(lambda: list(store.read(batch)))
    batch_read = [e.position for e in store.read(batch)]
    store.close()
    assert batch_read == [3, 4, 5, 6, 7, 8]
    assert batch_plans and all("INTEGER PRIMARY KEY" in plan for plan in batch_plans)
    assert all("TEMP B-TREE" not in plan for plan in batch_plans)
    # position_at: a binary search whose probes are primary-key lookups (no time index).
    assert time_plans and all("INTEGER PRIMARY KEY" in plan for plan in time_plans)
    assert all("SCAN events" not in plan for plan in time_plans)
    assert len(type_plans) == 3  # pages of 2 over 5 matches: keyset pages, not one scan
    assert all("ix_events_type_position" in plan for plan in type_plans)
    assert all("TEMP B-TREE" not in plan for plan in type_plans + category_plans)
    assert all("ix_events_category_position" in plan for plan in category_plans)


def test_event_by_id(history: EventStore) -> None:
    third = list(history.read_all())[2]
    assert history.event_by_id(third.event_id) == third
    assert history.event_by_id("00000000-0000-7000-8000-000000000000") is None


def test_read_up_to_a_position(history: EventStore) -> None:
    assert positions(history.read(EventFilter(to_position=3))) == [1, 2, 3]
    assert positions(history.read(EventFilter(to_position=6, from_position=5))) == [5, 6]
    assert positions(history.read(EventFilter(to_position=6, category="customer"))) == [4]
    assert positions(history.read(EventFilter(to_position=7), backwards=True, limit=2)) == [7, 6]
    assert positions(history.read(EventFilter(stream_id="order-1", to_position=5))) == [1, 3, 5]


def test_filters_by_stream_prefix_time_range_correlation_and_text(make_store) -> None:  # type: ignore[no-untyped-def]
    now = [BASE]
    store = make_store(clock=lambda: now[0])
    plan = [
        ("order-1", {"sku": "Kettle", "note": "50% off"}, "flow-a"),
        ("order-10", {"sku": "mug"}, "flow-b"),
        ("orders-x", {"sku": "kettle lid"}, "flow-a"),
        ("cart-1", {"sku": "KETTLE"}, None),
        ("order-2", {"sku": "tea_pot"}, "flow-b"),
    ]
    times = []
    for second, (stream_id, data, correlation) in enumerate(plan):
        metadata = {"correlation_id": correlation} if correlation else {}
        now[0] = BASE + second * 1_000_000
        store.append_to_stream(stream_id, [NewEvent("Happened", data, metadata)])
        times.append(from_micros(BASE + second * 1_000_000))

    assert positions(store.read(EventFilter(stream_prefix="order-"))) == [1, 2, 5]
    assert positions(store.read(EventFilter(stream_prefix="order"))) == [1, 2, 3, 5]
    assert positions(store.read(EventFilter(since=times[1], until=times[3]))) == [2, 3, 4]
    assert positions(store.read(EventFilter(since=times[2]), backwards=True)) == [5, 4, 3]
    assert positions(store.read(EventFilter(correlation_id="flow-a"))) == [1, 3]
    assert positions(store.read(EventFilter(correlation_id="flow-b"), backwards=True)) == [5, 2]
    assert positions(store.read(EventFilter(text="kettle"))) == [1, 3, 4]  # any case
    assert positions(store.read(EventFilter(text="50%"))) == [1]  # % is not a wildcard
    assert positions(store.read(EventFilter(text="tea_"))) == [5]  # nor is _
    assert positions(store.read(EventFilter(text="ug*"))) == []  # a prefix starts a word
    assert positions(store.read(EventFilter(text="ket*"))) == [1, 3, 4]
    assert positions(store.read(EventFilter(text="kettle", stream_prefix="order"))) == [1, 3]


def test_streams_by_recent_activity(history: EventStore) -> None:
    if isinstance(history, SqlEventStore):
        history.page_size = 2
    recent = [s.stream_id for s in history.recent_streams()]
    assert recent == ["order-3", "order-1", "customer-9", "order-2"]  # last at 10, 8, 7, 6
    assert [s.stream_id for s in history.recent_streams(category="order", limit=2)] == [
        "order-3",
        "order-1",
    ]
    assert [s.stream_id for s in history.recent_streams(before_position=8)] == [
        "customer-9",
        "order-2",
    ]
    assert [s.stream_id for s in history.recent_streams(prefix="order-2")] == ["order-2"]
