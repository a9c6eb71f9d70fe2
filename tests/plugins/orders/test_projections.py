"""Given these events, the order domain's read models are these documents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from core.api import Projection, RecordedEvent
from core.testkit import History, given, recorded
from plugins.orders.projections import CustomerStats, DailyRevenue, OrderSummary, OrderSummaryV2
from plugins.orders.upcasters import order_placed_v1_to_v2

UPCASTERS = [order_placed_v1_to_v2]
MUG = {"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299}
BEANS = {"sku": "BEANS-ESPRESSO-1KG", "quantity": 1, "unit_price_cents": 2390}
FILTERS = {"sku": "FILTER-PAPERS-100", "quantity": 1, "unit_price_cents": 499}
KETTLE = {"sku": "KETTLE-GOOSENECK", "quantity": 1, "unit_price_cents": 5999}
DESCALER = {"sku": "DESCALER", "quantity": 2, "unit_price_cents": 799}


def placed(order_id: str, customer_id: str, *items: dict[str, Any]) -> tuple[Any, ...]:
    data = {"order_id": order_id, "customer_id": customer_id, "items": list(items)}
    return (f"order-{order_id}", "OrderPlaced", {**data, "currency": "EUR"}, {"schema_version": 2})


def placed_in_schema_1(order_id: str, customer_id: str, *items: dict[str, Any]) -> tuple[Any, ...]:
    lines = [
        {"sku": item["sku"], "qty": item["quantity"], "price": item["unit_price_cents"] / 100}
        for item in items
    ]
    data = {"order_id": order_id, "customer": customer_id, "lines": lines}
    return (f"order-{order_id}", "OrderPlaced", data, {"schema_version": 1})


def event(order_id: str, event_type: str, **data: Any) -> tuple[str, str, dict[str, Any]]:
    return (f"order-{order_id}", event_type, {"order_id": order_id, **data})


def registered(customer_id: str, name: str, tier: str) -> tuple[str, str, dict[str, Any]]:
    data = {"customer_id": customer_id, "name": name, "tier": tier}
    return (f"customer-{customer_id}", "CustomerRegistered", data)


def at(minute: int) -> str:
    """The time the test kit gives the event at this position (a minute per event)."""
    return f"2026-01-01T00:{minute:02d}:00.000000Z"


Placer = Callable[..., tuple[Any, ...]]
PAID_2 = event("2", "OrderPaid", customer_id="C2", amount_cents=5999, method="paypal")
REFUNDED_2 = event("2", "OrderCancelled", customer_id="C2", reason="gone", refund_cents=5999)
CANCELLED_3 = event("3", "OrderCancelled", customer_id="C1", reason="oops", refund_cents=0)


def history(placing: Placer = placed) -> list[tuple[Any, ...]]:
    """Four orders: 1 delivered, 2 cancelled after payment, 3 cancelled unpaid, 4 open.

    The test kit records the event at position p at minute p of 2026-01-01.
    """
    return [
        registered("C1", "Ada", "gold"),  # 1
        registered("C2", "Al", "standard"),  # 2
        placing("1", "C1", MUG, BEANS),  # 3
        event("1", "ItemAdded", **FILTERS),  # 4
        placing("2", "C2", KETTLE),  # 5
        event("1", "ItemRemoved", **BEANS),  # 6
        event("1", "OrderPaid", customer_id="C1", amount_cents=3097, method="card"),  # 7
        PAID_2,  # 8
        placing("3", "C1", DESCALER),  # 9
        event("1", "OrderShipped", carrier="DHL"),  # 10
        REFUNDED_2,  # 11
        CANCELLED_3,  # 12
        event("1", "OrderDelivered"),  # 13
        placing("4", "C2", {**MUG, "quantity": 1}),  # 14
    ]


def summary(order_id: str, customer_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "paid_cents": 0,
        "refunded_cents": 0,
        "currency": "EUR",
        "carrier": None,
        **fields,
    }


ORDER_SUMMARY_V1 = {
    "1": summary(
        "1",
        "C1",
        status="delivered",
        item_count=3,
        total_cents=3097,
        paid_cents=3097,
        carrier="DHL",
        placed_at=at(3),
        updated_at=at(13),
    ),
    "2": summary(
        "2",
        "C2",
        status="cancelled",
        item_count=1,
        total_cents=5999,
        paid_cents=5999,
        refunded_cents=5999,
        placed_at=at(5),
        updated_at=at(11),
    ),
    "3": summary(
        "3",
        "C1",
        status="cancelled",
        item_count=2,
        total_cents=1598,
        placed_at=at(9),
        updated_at=at(12),
    ),
    "4": summary(
        "4",
        "C2",
        status="placed",
        item_count=1,
        total_cents=1299,
        placed_at=at(14),
        updated_at=at(14),
    ),
}


def test_order_summary_v1_has_one_document_per_order() -> None:
    assert given(*history()).project(OrderSummary) == ORDER_SUMMARY_V1


def test_order_summary_v2_reports_no_total_for_cancelled_orders() -> None:
    expected = {
        **ORDER_SUMMARY_V1,
        "2": {**ORDER_SUMMARY_V1["2"], "total_cents": 0},
        "3": {**ORDER_SUMMARY_V1["3"], "total_cents": 0},
    }

    assert given(*history()).project(OrderSummaryV2) == expected


def test_order_summary_v1_and_v2_differ_only_in_the_total_of_cancelled_orders() -> None:
    v1 = given(*history()).project(OrderSummary)
    v2 = given(*history()).project(OrderSummaryV2)

    differences = {
        key: {field for field in v1[key] if v1[key][field] != v2[key][field]}
        for key in v1
        if v1[key] != v2[key]
    }
    assert (OrderSummary.reference(), OrderSummaryV2.reference()) == (
        "order_summary:1",
        "order_summary:2",
    )
    assert set(v1) == set(v2)
    assert differences == {"2": {"total_cents"}, "3": {"total_cents"}}


def test_order_summary_skips_events_of_an_order_never_placed() -> None:
    stray = event("9", "OrderPaid", customer_id="C1", amount_cents=100, method="card")

    assert given(stray).project(OrderSummary) == {}


def test_customer_stats_count_orders_and_net_spending() -> None:
    assert given(*history()).project(CustomerStats) == {
        "C1": {
            "customer_id": "C1",
            "name": "Ada",
            "tier": "gold",
            "orders_placed": 2,
            "orders_paid": 1,
            "orders_cancelled": 1,
            "spent_cents": 3097,
            "first_order_at": at(3),
            "last_order_at": at(9),
        },
        "C2": {
            "customer_id": "C2",
            "name": "Al",
            "tier": "standard",
            "orders_placed": 2,
            "orders_paid": 1,
            "orders_cancelled": 1,
            "spent_cents": 0,  # paid 5999, refunded 5999
            "first_order_at": at(5),
            "last_order_at": at(14),
        },
    }


def test_daily_revenue_sums_payments_and_refunds_of_the_day() -> None:
    assert given(*history()).project(DailyRevenue) == {
        "2026-01-01": {
            "day": "2026-01-01",
            "revenue_cents": 3097 + 5999,
            "orders_paid": 2,
            "refunds_cents": 5999,
        }
    }


def test_daily_revenue_counts_each_event_on_its_own_utc_day() -> None:
    # given() spaces events a minute apart from 2026-01-01T00:00Z and ignores the times of
    # events given to it: a day's edge needs events recorded at chosen times.
    def on(moment: datetime, position: int, spec: tuple[Any, ...]) -> RecordedEvent:
        return recorded(*spec, position=position, version=position - 1, at=moment)

    last_moment_of_january = datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    first_moment_of_february = datetime(2026, 2, 1, tzinfo=UTC)
    events = History(
        [
            on(last_moment_of_january, 1, PAID_2),
            on(first_moment_of_february, 2, REFUNDED_2),
            on(datetime(2026, 2, 2, tzinfo=UTC), 3, CANCELLED_3),  # no refund, no money moved
        ]
    )

    assert events.project(DailyRevenue) == {
        "2026-01-31": {
            "day": "2026-01-31",
            "revenue_cents": 5999,
            "orders_paid": 1,
            "refunds_cents": 0,
        },
        "2026-02-01": {
            "day": "2026-02-01",
            "revenue_cents": 0,
            "orders_paid": 0,
            "refunds_cents": 5999,
        },
    }


@pytest.mark.parametrize("projection", [OrderSummary, OrderSummaryV2, CustomerStats, DailyRevenue])
def test_read_models_are_the_same_whichever_schema_orders_were_placed_in(
    projection: type[Projection],
) -> None:
    from_schema_1 = given(*history(placing=placed_in_schema_1)).project(
        projection, upcasters=UPCASTERS
    )
    from_schema_2 = given(*history(placing=placed)).project(projection, upcasters=UPCASTERS)

    assert from_schema_1 == from_schema_2
    assert from_schema_1  # the read model is not trivially empty
