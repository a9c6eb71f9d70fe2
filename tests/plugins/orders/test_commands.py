"""Given an order's (or a customer's) history, a command decides its events or is rejected."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from core.api import Rejected
from core.testkit import given
from plugins.orders.commands import (
    add_item,
    cancel_order,
    deliver_order,
    pay_order,
    place_order,
    register_customer,
    remove_item,
    ship_order,
)
from plugins.orders.state import Order, evolve_customer, evolve_order

MUG = {"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299}
BEANS = {"sku": "BEANS-ESPRESSO-1KG", "quantity": 1, "unit_price_cents": 2390}
TOTAL = 2 * 1299 + 2390  # 4988

PLACED = (
    "order-17",
    "OrderPlaced",
    {"order_id": "17", "customer_id": "C1", "items": [MUG, BEANS], "currency": "EUR"},
    {"schema_version": 2},
)
PAID = (
    "order-17",
    "OrderPaid",
    {"order_id": "17", "customer_id": "C1", "amount_cents": TOTAL, "method": "card"},
)
SHIPPED = ("order-17", "OrderShipped", {"order_id": "17", "carrier": "DHL"})
DELIVERED = ("order-17", "OrderDelivered", {"order_id": "17"})
CANCELLED = (
    "order-17",
    "OrderCancelled",
    {"order_id": "17", "customer_id": "C1", "reason": "changed my mind", "refund_cents": 0},
)
REFUNDED = (
    "order-17",
    "OrderCancelled",
    {"order_id": "17", "customer_id": "C1", "reason": "out of stock", "refund_cents": TOTAL},
)
REGISTERED = (
    "customer-C1",
    "CustomerRegistered",
    {"customer_id": "C1", "name": "Ada Lovelace", "tier": "gold"},
)


def decide(history: tuple[Any, ...], handler: Callable[..., Any], **data: Any) -> Any:
    """What ``handler`` decides on order 17, given ``history`` as its stream."""
    return given(*history).decide(handler, {"order_id": "17", **data}, evolve=evolve_order)


# Happy paths


def test_placing_an_order_decides_order_placed_in_schema_2() -> None:
    data = {"order_id": "17", "customer_id": "C1", "items": [MUG, BEANS]}
    placed = {**data, "currency": "EUR"}

    assert given().decide(place_order, data, evolve=evolve_order) == [("OrderPlaced", placed)]
    # The test kit leaves metadata out of decisions: ask the handler itself.
    assert place_order(Order(), data) == [("OrderPlaced", placed, {"schema_version": 2})]


def test_adding_an_item_decides_item_added() -> None:
    filters = {"sku": "FILTER-PAPERS-100", "quantity": 3, "unit_price_cents": 499}

    assert decide((PLACED,), add_item, **filters) == [("ItemAdded", {"order_id": "17", **filters})]


def test_adding_more_of_a_product_adds_to_its_line() -> None:
    more_mugs = ("order-17", "ItemAdded", {"order_id": "17", **MUG, "quantity": 1})

    assert decide((PLACED, more_mugs), remove_item, sku="MUG-CLASSIC") == [
        (
            "ItemRemoved",
            {"order_id": "17", "sku": "MUG-CLASSIC", "quantity": 3, "unit_price_cents": 1299},
        )
    ]


def test_removing_an_item_decides_item_removed_with_what_the_line_was_worth() -> None:
    assert decide((PLACED,), remove_item, sku="BEANS-ESPRESSO-1KG") == [
        ("ItemRemoved", {"order_id": "17", **BEANS})
    ]


def test_paying_the_exact_total_decides_order_paid() -> None:
    assert decide((PLACED,), pay_order, amount_cents=TOTAL, method="paypal") == [
        (
            "OrderPaid",
            {"order_id": "17", "customer_id": "C1", "amount_cents": 4988, "method": "paypal"},
        )
    ]


def test_the_total_to_pay_follows_added_and_removed_items() -> None:
    added = ("order-17", "ItemAdded", {"order_id": "17", **MUG, "quantity": 1})
    removed = ("order-17", "ItemRemoved", {"order_id": "17", **BEANS})

    decided = decide((PLACED, added, removed), pay_order, amount_cents=3 * 1299, method="card")

    assert decided[0][1]["amount_cents"] == 3897


def test_shipping_a_paid_order_decides_order_shipped() -> None:
    assert decide((PLACED, PAID), ship_order, carrier="DHL") == [
        ("OrderShipped", {"order_id": "17", "carrier": "DHL"})
    ]


def test_delivering_a_shipped_order_decides_order_delivered() -> None:
    assert decide((PLACED, PAID, SHIPPED), deliver_order) == [
        ("OrderDelivered", {"order_id": "17"})
    ]


def test_cancelling_an_unpaid_order_refunds_nothing() -> None:
    assert decide((PLACED,), cancel_order, reason="changed my mind") == [
        (
            "OrderCancelled",
            {"order_id": "17", "customer_id": "C1", "reason": "changed my mind", "refund_cents": 0},
        )
    ]


def test_cancelling_a_paid_order_refunds_what_was_paid() -> None:
    assert decide((PLACED, PAID), cancel_order, reason="out of stock") == [
        (
            "OrderCancelled",
            {"order_id": "17", "customer_id": "C1", "reason": "out of stock", "refund_cents": 4988},
        )
    ]


def test_registering_a_customer_decides_customer_registered() -> None:
    data = {"customer_id": "C1", "name": "Ada Lovelace", "tier": "gold"}

    assert given().decide(register_customer, data, evolve=evolve_customer) == [
        ("CustomerRegistered", data)
    ]


def test_a_customer_is_standard_unless_told_otherwise() -> None:
    data = {"customer_id": "C2", "name": "Alan Turing"}

    assert given().decide(register_customer, data, evolve=evolve_customer) == [
        ("CustomerRegistered", {**data, "tier": "standard"})
    ]


# Invariants

ORDER_REJECTIONS = [
    # (history, command, data, reason)
    ((PLACED,), place_order, {"customer_id": "C1", "items": [MUG]}, "already placed"),
    ((), place_order, {"customer_id": "C1", "items": []}, "needs at least one item"),
    (
        (),
        place_order,
        {"customer_id": "C1", "items": [{**MUG, "quantity": 0}]},
        "quantity must be a positive whole number, not 0",
    ),
    (
        (),
        place_order,
        {"customer_id": "C1", "items": [{**MUG, "unit_price_cents": -1299}]},
        "unit_price_cents must be a positive whole number, not -1299",
    ),
    (
        (),
        place_order,
        {"customer_id": "C1", "items": [{"sku": "MUG-CLASSIC", "quantity": 1}]},
        "an item lacks unit_price_cents",
    ),
    ((), place_order, {"customer_id": "C1", "items": [MUG, MUG]}, "on two lines"),
    ((), add_item, {**MUG}, "order 17 has not been placed"),
    ((PLACED,), add_item, {**MUG, "quantity": 0}, "quantity must be a positive"),
    ((PLACED,), add_item, {**MUG, "unit_price_cents": 0}, "unit_price_cents must be a positive"),
    ((PLACED,), add_item, {**MUG, "unit_price_cents": 999}, "at 1299 cents a unit, not 999"),
    ((PLACED, PAID), add_item, {**MUG}, "order 17 is paid"),
    ((PLACED, PAID, SHIPPED), add_item, {**MUG}, "order 17 has shipped"),
    ((PLACED, CANCELLED), add_item, {**MUG}, "order 17 is cancelled"),
    ((PLACED, PAID), remove_item, {"sku": "MUG-CLASSIC"}, "order 17 is paid"),
    ((PLACED, PAID, SHIPPED), remove_item, {"sku": "MUG-CLASSIC"}, "order 17 has shipped"),
    ((PLACED, CANCELLED), remove_item, {"sku": "MUG-CLASSIC"}, "order 17 is cancelled"),
    ((PLACED,), remove_item, {"sku": "KETTLE"}, "sku KETTLE is not in order 17"),
    (
        (PLACED, ("order-17", "ItemRemoved", {"order_id": "17", **BEANS})),
        remove_item,
        {"sku": "MUG-CLASSIC"},
        "the last item of order 17: cancel the order instead",
    ),
    ((), pay_order, {"amount_cents": TOTAL, "method": "card"}, "has not been placed"),
    (
        (PLACED,),
        pay_order,
        {"amount_cents": TOTAL - 1, "method": "card"},
        "must be the order total, 4988 cents, not 4987",
    ),
    ((PLACED,), pay_order, {"amount_cents": TOTAL + 1, "method": "card"}, "not 4989"),
    ((PLACED, PAID), pay_order, {"amount_cents": TOTAL, "method": "card"}, "already paid"),
    ((PLACED, CANCELLED), pay_order, {"amount_cents": TOTAL, "method": "card"}, "cancelled"),
    ((PLACED,), pay_order, {"amount_cents": TOTAL, "method": "cash"}, "method: must be one of"),
    ((PLACED,), ship_order, {"carrier": "DHL"}, "order 17 is not paid"),
    ((PLACED, PAID, REFUNDED), ship_order, {"carrier": "DHL"}, "order 17 is cancelled"),
    ((PLACED, PAID, SHIPPED), ship_order, {"carrier": "DHL"}, "already shipped"),
    ((PLACED, PAID), ship_order, {"carrier": " "}, "carrier must not be empty"),
    ((), cancel_order, {"reason": "no"}, "has not been placed"),
    ((PLACED, PAID, SHIPPED), cancel_order, {"reason": "late"}, "can no longer be cancelled"),
    (
        (PLACED, PAID, SHIPPED, DELIVERED),
        cancel_order,
        {"reason": "late"},
        "can no longer be cancelled",
    ),
    ((PLACED, CANCELLED), cancel_order, {"reason": "sure?"}, "already cancelled"),
    ((PLACED,), cancel_order, {"reason": ""}, "reason must not be empty"),
    ((PLACED,), deliver_order, {}, "only a shipped order is delivered"),
    ((PLACED, PAID), deliver_order, {}, "order 17 is paid: only a shipped order"),
    ((PLACED, CANCELLED), deliver_order, {}, "order 17 is cancelled: only a shipped order"),
    ((PLACED, PAID, SHIPPED, DELIVERED), deliver_order, {}, "already delivered"),
]


@pytest.mark.parametrize(
    ("history", "handler", "data", "reason"),
    ORDER_REJECTIONS,
    ids=[f"{case[1].__name__}-{case[3]}" for case in ORDER_REJECTIONS],
)
def test_an_order_command_that_breaks_an_invariant_is_rejected(
    history: tuple[Any, ...], handler: Callable[..., Any], data: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Rejected, match=re.escape(reason)):
        decide(history, handler, **data)


@pytest.mark.parametrize(
    ("history", "data", "reason"),
    [
        ((REGISTERED,), {"name": "Ada Lovelace", "tier": "gold"}, "already registered"),
        ((), {"name": "Ada Lovelace", "tier": "platinum"}, "tier: must be one of standard, gold"),
        ((), {"name": "  ", "tier": "gold"}, "name must not be empty"),
    ],
)
def test_a_customer_command_that_breaks_an_invariant_is_rejected(
    history: tuple[Any, ...], data: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Rejected, match=re.escape(reason)):
        given(*history).decide(
            register_customer, {"customer_id": "C1", **data}, evolve=evolve_customer
        )
