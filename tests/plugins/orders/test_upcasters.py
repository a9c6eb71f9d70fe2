"""OrderPlaced schema 1 reads as schema 2: names, euros to cents, everything else untouched."""

from __future__ import annotations

import pytest

from core.testkit import given
from plugins.orders.commands import pay_order
from plugins.orders.state import evolve_order
from plugins.orders.upcasters import order_placed_v1_to_v2

SCHEMA_1 = {
    "order_id": "17",
    "customer": "C1",
    "lines": [
        {"sku": "MUG-CLASSIC", "qty": 2, "price": 12.99},
        {"sku": "BEANS-ESPRESSO-1KG", "qty": 1, "price": 23.9},
    ],
}
SCHEMA_2 = {
    "order_id": "17",
    "customer_id": "C1",
    "items": [
        {"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299},
        {"sku": "BEANS-ESPRESSO-1KG", "quantity": 1, "unit_price_cents": 2390},
    ],
    "currency": "EUR",
}


def price_in_cents(euros: float) -> int:
    line = {"sku": "MUG-CLASSIC", "qty": 1, "price": euros}
    upcast = order_placed_v1_to_v2({"order_id": "1", "customer": "C1", "lines": [line]})
    cents: int = upcast["items"][0]["unit_price_cents"]
    return cents


def test_schema_1_becomes_schema_2() -> None:
    assert order_placed_v1_to_v2(SCHEMA_1) == SCHEMA_2


@pytest.mark.parametrize(
    ("euros", "cents"),
    [
        (19.99, 1999),  # int(19.99 * 100) is 1998
        (4.35, 435),  # 4.35 * 100 is 434.99999999999994
        (0.1, 10),
        (449.0, 44900),
        (12, 1200),  # some old events wrote whole euros as integers
        (0.285, 29),  # a half cent rounds up (round(0.285 * 100) gives 28)
        (1.005, 101),
        (2.994, 299),
    ],
)
def test_euro_prices_become_exact_cents(euros: float, cents: int) -> None:
    assert price_in_cents(euros) == cents


def test_anything_else_in_the_data_is_left_as_it_was() -> None:
    old = {
        **SCHEMA_1,
        "channel": "web",
        "lines": [{"sku": "MUG-CLASSIC", "qty": 2, "price": 12.99, "gift_wrap": True}],
    }

    new = order_placed_v1_to_v2(old)

    assert new["channel"] == "web"
    assert new["items"] == [
        {"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299, "gift_wrap": True}
    ]
    assert set(new) == {"order_id", "customer_id", "items", "currency", "channel"}


def test_commands_decide_on_schema_1_orders_once_upcast() -> None:
    history = given(("order-17", "OrderPlaced", SCHEMA_1, {"schema_version": 1}))

    decided = history.decide(
        pay_order,
        {"order_id": "17", "amount_cents": 4988, "method": "card"},
        evolve=evolve_order,
        upcasters=[order_placed_v1_to_v2],
    )

    assert decided == [
        (
            "OrderPaid",
            {"order_id": "17", "customer_id": "C1", "amount_cents": 4988, "method": "card"},
        )
    ]
