"""The demo history: deterministic, well ordered, and only ever what the domain allows."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from core.api import DemoEvent, RecordedEvent
from core.demo import write_demo
from core.store import InMemoryEventStore
from core.testkit import given, recorded
from plugins.orders.demo import PERIOD_END, PERIOD_START, generate_history
from plugins.orders.projections import OrderSummary, OrderSummaryV2
from plugins.orders.state import Order, OrderStatus, evolve_order
from plugins.orders.upcasters import order_placed_v1_to_v2

ORDERS = 2000
#: The events each status lets follow: the order's life cycle, written out independently.
MAY_FOLLOW = {
    OrderStatus.UNPLACED: {"OrderPlaced"},
    OrderStatus.PLACED: {"ItemAdded", "ItemRemoved", "OrderPaid", "OrderCancelled"},
    OrderStatus.PAID: {"OrderShipped", "OrderCancelled"},
    OrderStatus.SHIPPED: {"OrderDelivered"},
    OrderStatus.DELIVERED: set(),
    OrderStatus.CANCELLED: set(),
}


@pytest.fixture(scope="module")
def history() -> list[DemoEvent]:
    return list(generate_history(orders=ORDERS, seed=7))


def is_schema_1(item: DemoEvent) -> bool:
    return item.event.type == "OrderPlaced" and item.event.metadata.get("schema_version") == 1


def upcast(item: DemoEvent) -> RecordedEvent:
    """The event as commands and projections read it (schema 1 upcast to 2)."""
    data = dict(item.event.data)
    if is_schema_1(item):
        data = order_placed_v1_to_v2(copy.deepcopy(data))
    return recorded(
        item.stream_id, item.event.type, data, position=0, version=item.version, at=item.recorded_at
    )


def of_type(history: list[DemoEvent], event_type: str) -> list[RecordedEvent]:
    """The events of one type, as the domain reads them."""
    return [upcast(item) for item in history if item.event.type == event_type]


def streams(history: list[DemoEvent], category: str) -> dict[str, list[DemoEvent]]:
    found: dict[str, list[DemoEvent]] = defaultdict(list)
    for item in history:
        if item.stream_id.startswith(f"{category}-"):
            found[item.stream_id].append(item)
    return found


def folded_orders(history: list[DemoEvent]) -> dict[str, Order]:
    """Every order stream folded by the domain's evolver, its invariants checked on the way."""
    orders = {}
    for stream_id, events in streams(history, "order").items():
        order = Order()
        for event in map(upcast, events):
            assert event.type in MAY_FOLLOW[order.status], (stream_id, order.status, event.type)
            if event.type == "OrderPaid":
                assert event.data["amount_cents"] == order.total_cents, stream_id
            if event.type == "OrderCancelled":
                assert event.data["refund_cents"] == order.paid_cents, stream_id
            order = evolve_order(order, event)
            assert order.lines, f"{stream_id} is empty"
            assert all(line.quantity > 0 and line.unit_price_cents > 0 for line in order.lines)
            assert len({line.sku for line in order.lines}) == len(order.lines)
        orders[stream_id] = order
    return orders


def test_the_same_seed_gives_the_same_history() -> None:
    first = list(generate_history(orders=300, seed=7))
    second = list(generate_history(orders=300, seed=7))

    assert first == second
    assert [e.event.event_id for e in first] == [e.event.event_id for e in second]


def test_another_seed_gives_another_history() -> None:
    one = list(generate_history(orders=300, seed=7))
    other = list(generate_history(orders=300, seed=8))

    assert [e.event.event_id for e in one] != [e.event.event_id for e in other]
    assert [e.event.data for e in one] != [e.event.data for e in other]


def test_times_never_go_back_and_span_the_period(history: list[DemoEvent]) -> None:
    times = [item.recorded_at for item in history]

    assert times == sorted(times)
    assert PERIOD_START <= times[0] < PERIOD_START + timedelta(days=1)
    assert PERIOD_END - timedelta(days=1) < times[-1] <= PERIOD_END
    assert PERIOD_END.isoformat() == "2026-03-31T23:59:59+00:00"


def test_each_streams_versions_count_from_zero(history: list[DemoEvent]) -> None:
    versions: dict[str, list[int]] = defaultdict(list)
    for item in history:
        versions[item.stream_id].append(item.version)

    assert all(found == list(range(len(found))) for found in versions.values())
    assert len(versions) == ORDERS + ORDERS // 10


def test_customers_register_before_anyone_orders(history: list[DemoEvent]) -> None:
    registrations = [i for i, item in enumerate(history) if item.event.type == "CustomerRegistered"]
    customers = {
        item.event.data["customer_id"]: item.event.data for item in history[: len(registrations)]
    }
    ordering = {
        upcast(item).data["customer_id"] for item in history if item.event.type == "OrderPlaced"
    }

    assert registrations == list(range(ORDERS // 10))
    assert ordering <= set(customers)
    gold = sum(customer["tier"] == "gold" for customer in customers.values())
    assert 0.05 * len(customers) < gold < 0.3 * len(customers)


def test_an_orders_events_share_a_correlation_and_name_their_cause(
    history: list[DemoEvent],
) -> None:
    event_ids = [item.event.event_id for item in history]
    correlations = set()
    for stream_id, events in streams(history, "order").items():
        (correlation,) = {item.event.metadata["correlation_id"] for item in events}
        causes = [item.event.metadata.get("causation_id") for item in events]
        assert causes == [None] + [item.event.event_id for item in events[:-1]], stream_id
        correlations.add(correlation)

    assert len(set(event_ids)) == len(event_ids)
    assert len(correlations) == ORDERS


def test_every_order_keeps_the_domains_invariants(history: list[DemoEvent]) -> None:
    orders = folded_orders(history)

    for stream_id, order in orders.items():
        if order.status in (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            assert order.paid_cents == order.total_cents > 0, stream_id
    assert len(orders) == ORDERS


def test_the_history_shows_every_part_of_an_orders_life(history: list[DemoEvent]) -> None:
    statuses = Counter(order.status for order in folded_orders(history).values())
    types = Counter(item.event.type for item in history)
    cancellations = [upcast(item).data for item in history if item.event.type == "OrderCancelled"]
    refunded = [data for data in cancellations if data["refund_cents"] > 0]
    lines = [
        len(upcast(item).data["items"]) for item in history if item.event.type == "OrderPlaced"
    ]

    assert 0.06 * ORDERS < len(cancellations) < 0.15 * ORDERS
    assert 0.2 * len(cancellations) < len(refunded) < 0.8 * len(cancellations)
    assert statuses[OrderStatus.DELIVERED] > 0.6 * ORDERS
    assert statuses[OrderStatus.PLACED] > 0.02 * ORDERS  # left open
    assert statuses[OrderStatus.SHIPPED] > 0  # on their way when the period ends
    assert types["ItemAdded"] > 0.1 * ORDERS
    assert types["ItemRemoved"] > 0.03 * ORDERS
    assert sum(count > 1 for count in lines) > 0.4 * ORDERS


def test_orders_of_the_first_thirty_days_are_stored_in_schema_1(history: list[DemoEvent]) -> None:
    placements = [item for item in history if item.event.type == "OrderPlaced"]
    legacy = [item for item in placements if is_schema_1(item)]
    cutoff = PERIOD_START + timedelta(days=30)

    assert 0.2 * ORDERS < len(legacy) < 0.4 * ORDERS
    assert all(item.recorded_at < cutoff for item in legacy)
    assert all(
        item.event.metadata["schema_version"] == 2 and item.recorded_at >= cutoff
        for item in placements
        if not is_schema_1(item)
    )
    assert set(legacy[0].event.data) == {"order_id", "customer", "lines"}


def test_schema_1_orders_upcast_to_exactly_what_the_domain_decided() -> None:
    stored = list(generate_history(orders=500, seed=7))
    decided = list(generate_history(orders=500, seed=7, schema_1_days=0))

    pairs = list(zip(stored, decided, strict=True))
    legacy = [(old, new) for old, new in pairs if is_schema_1(old)]
    assert len(legacy) > 100
    for old, new in legacy:
        assert order_placed_v1_to_v2(copy.deepcopy(dict(old.event.data))) == new.event.data
        assert {**old.event.metadata, "schema_version": 2} == new.event.metadata
    assert all(old == new for old, new in pairs if not is_schema_1(old))


def test_order_summary_v2_differs_from_v1_on_cancelled_orders_only(
    history: list[DemoEvent],
) -> None:
    events = given(*((e.stream_id, e.event.type, e.event.data, e.event.metadata) for e in history))
    v1 = events.project(OrderSummary, upcasters=[order_placed_v1_to_v2])
    v2 = events.project(OrderSummaryV2, upcasters=[order_placed_v1_to_v2])

    differing = {key for key in v1 if v1[key] != v2[key]}
    cancelled = {key for key, doc in v1.items() if doc["status"] == "cancelled"}
    assert differing == cancelled
    assert 0 < len(differing) < len(v1)


def test_the_store_takes_the_history_as_it_is(history: list[DemoEvent]) -> None:
    store = InMemoryEventStore()

    result = write_demo(store, history)

    assert (result.appended, result.duplicates) == (len(history), 0)
    assert [e.recorded_at for e in store.read_all()] == [e.recorded_at for e in history]


def test_no_orders_means_no_history() -> None:
    assert list(generate_history(orders=0)) == []
    with pytest.raises(ValueError, match="orders must be 0 or more"):
        list(generate_history(orders=-1))
