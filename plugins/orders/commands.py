"""The commands of the order domain and the invariants they keep (decide, given the state).

Each handler gets the state its stream folds into (``state.evolve_order`` or
``state.evolve_customer``) and the command's checked data, and either decides the
events to append or raises ``Rejected`` with a reason an operator understands.
"""

from __future__ import annotations

from typing import Any, Final

from core.api import Field, Rejected, command
from plugins.orders.events import (
    CURRENCY,
    ORDER_PLACED_SCHEMA,
    CustomerRegisteredData,
    ItemAddedData,
    ItemRemovedData,
    LineItem,
    OrderCancelledData,
    OrderDeliveredData,
    OrderPaidData,
    OrderPlacedData,
    OrderShippedData,
)
from plugins.orders.state import Customer, Order, OrderStatus

PAYMENT_METHODS: Final = ("card", "paypal", "bank_transfer")
TIERS: Final = ("standard", "gold")

_SHIPPED: Final = frozenset({OrderStatus.SHIPPED, OrderStatus.DELIVERED})
_PAID: Final = frozenset({OrderStatus.PAID, *_SHIPPED})

ORDER_ID = Field(str, help="the order's id; the order's stream is order-<order_id>")
SKU = Field(str, help="the product's stock-keeping unit, e.g. MUG-CLASSIC")


def _text(name: str, value: str) -> str:
    if not value.strip():
        raise Rejected(f"{name} must not be empty")
    return value


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Rejected(f"{name} must be a positive whole number, not {value!r}")
    return value


def _line_item(item: object) -> LineItem:
    if not isinstance(item, dict):
        raise Rejected("each item is an object {sku, quantity, unit_price_cents}")
    missing = {"sku", "quantity", "unit_price_cents"} - item.keys()
    if missing:
        raise Rejected(f"an item lacks {', '.join(sorted(missing))}")
    if not isinstance(item["sku"], str):
        raise Rejected(f"sku must be text, not {item['sku']!r}")
    return LineItem(
        sku=_text("sku", item["sku"]),
        quantity=_positive("quantity", item["quantity"]),
        unit_price_cents=_positive("unit_price_cents", item["unit_price_cents"]),
    )


def _require_placed(order: Order, order_id: str) -> None:
    if order.status is OrderStatus.UNPLACED:
        raise Rejected(f"order {order_id} has not been placed")


def _require_changeable(order: Order, order_id: str) -> None:
    """Items can change until the order is paid (and never once it is cancelled)."""
    _require_placed(order, order_id)
    if order.status is OrderStatus.CANCELLED:
        raise Rejected(f"order {order_id} is cancelled")
    if order.status in _SHIPPED:
        raise Rejected(f"order {order_id} has shipped: it can no longer change")
    if order.status in _PAID:
        raise Rejected(f"order {order_id} is paid: its items can no longer change")


@command(
    "PlaceOrder",
    stream="order-{order_id}",
    fields={
        "order_id": ORDER_ID,
        "customer_id": Field(str, help="who orders: a registered customer's id"),
        "items": Field(list, help="the lines: a list of {sku, quantity, unit_price_cents}"),
    },
)
def place_order(
    order: Order, data: dict[str, Any]
) -> list[tuple[str, OrderPlacedData, dict[str, int]]]:
    """Place a new order of one or more items for a customer."""
    order_id = _text("order_id", data["order_id"])
    if order.status is not OrderStatus.UNPLACED:
        raise Rejected(f"order {order_id} is already placed")
    items = [_line_item(item) for item in data["items"]]
    if not items:
        raise Rejected("an order needs at least one item")
    skus = [item["sku"] for item in items]
    twice = sorted({sku for sku in skus if skus.count(sku) > 1})
    if twice:
        raise Rejected(f"sku {twice[0]} is on two lines: put its whole quantity on one")
    placed = OrderPlacedData(
        order_id=order_id,
        customer_id=_text("customer_id", data["customer_id"]),
        items=items,
        currency=CURRENCY,
    )
    return [("OrderPlaced", placed, {"schema_version": ORDER_PLACED_SCHEMA})]


@command(
    "AddItem",
    stream="order-{order_id}",
    fields={
        "order_id": ORDER_ID,
        "sku": SKU,
        "quantity": Field(int, help="how many units to add (more than 0)"),
        "unit_price_cents": Field(int, help="the price of one unit, in cents (more than 0)"),
    },
)
def add_item(order: Order, data: dict[str, Any]) -> list[tuple[str, ItemAddedData]]:
    """Add units of a product to an order that is not paid yet."""
    order_id = data["order_id"]
    _require_changeable(order, order_id)
    sku = _text("sku", data["sku"])
    quantity = _positive("quantity", data["quantity"])
    price = _positive("unit_price_cents", data["unit_price_cents"])
    line = order.line(sku)
    if line is not None and line.unit_price_cents != price:
        raise Rejected(
            f"sku {sku} is in order {order_id} at {line.unit_price_cents} cents a unit, not {price}"
        )
    added = ItemAddedData(order_id=order_id, sku=sku, quantity=quantity, unit_price_cents=price)
    return [("ItemAdded", added)]


@command("RemoveItem", stream="order-{order_id}", fields={"order_id": ORDER_ID, "sku": SKU})
def remove_item(order: Order, data: dict[str, Any]) -> list[tuple[str, ItemRemovedData]]:
    """Remove a product's whole line from an order that is not paid yet."""
    order_id, sku = data["order_id"], data["sku"]
    _require_changeable(order, order_id)
    line = order.line(sku)
    if line is None:
        raise Rejected(f"sku {sku} is not in order {order_id}")
    if len(order.lines) == 1:
        raise Rejected(f"{sku} is the last item of order {order_id}: cancel the order instead")
    removed = ItemRemovedData(
        order_id=order_id,
        sku=sku,
        quantity=line.quantity,
        unit_price_cents=line.unit_price_cents,
    )
    return [("ItemRemoved", removed)]


@command(
    "PayOrder",
    stream="order-{order_id}",
    fields={
        "order_id": ORDER_ID,
        "amount_cents": Field(int, help="the amount paid, in cents: exactly the order total"),
        "method": Field(str, help="how the customer paid", choices=PAYMENT_METHODS),
    },
)
def pay_order(order: Order, data: dict[str, Any]) -> list[tuple[str, OrderPaidData]]:
    """Record the customer's payment of the order's exact total."""
    order_id, amount = data["order_id"], data["amount_cents"]
    _require_placed(order, order_id)
    if order.status is OrderStatus.CANCELLED:
        raise Rejected(f"order {order_id} is cancelled: it cannot be paid")
    if order.status in _PAID:
        raise Rejected(f"order {order_id} is already paid")
    if amount != order.total_cents:
        raise Rejected(
            f"the payment must be the order total, {order.total_cents} cents, not {amount}"
        )
    paid = OrderPaidData(
        order_id=order_id,
        customer_id=order.customer_id,
        amount_cents=amount,
        method=data["method"],
    )
    return [("OrderPaid", paid)]


@command(
    "ShipOrder",
    stream="order-{order_id}",
    fields={"order_id": ORDER_ID, "carrier": Field(str, help="who carries the parcel, e.g. DHL")},
)
def ship_order(order: Order, data: dict[str, Any]) -> list[tuple[str, OrderShippedData]]:
    """Hand a paid order to a carrier."""
    order_id = data["order_id"]
    _require_placed(order, order_id)
    if order.status is OrderStatus.CANCELLED:
        raise Rejected(f"order {order_id} is cancelled: it cannot be shipped")
    if order.status in _SHIPPED:
        raise Rejected(f"order {order_id} has already shipped")
    if order.status is not OrderStatus.PAID:
        raise Rejected(f"order {order_id} is not paid: it cannot be shipped")
    carrier = _text("carrier", data["carrier"])
    return [("OrderShipped", OrderShippedData(order_id=order_id, carrier=carrier))]


@command(
    "CancelOrder",
    stream="order-{order_id}",
    fields={"order_id": ORDER_ID, "reason": Field(str, help="why, in the customer's words")},
)
def cancel_order(order: Order, data: dict[str, Any]) -> list[tuple[str, OrderCancelledData]]:
    """Call off an order before it ships, refunding whatever was paid."""
    order_id = data["order_id"]
    _require_placed(order, order_id)
    if order.status is OrderStatus.CANCELLED:
        raise Rejected(f"order {order_id} is already cancelled")
    if order.status in _SHIPPED:
        raise Rejected(f"order {order_id} has shipped: it can no longer be cancelled")
    cancelled = OrderCancelledData(
        order_id=order_id,
        customer_id=order.customer_id,
        reason=_text("reason", data["reason"]),
        refund_cents=order.paid_cents,
    )
    return [("OrderCancelled", cancelled)]


@command("DeliverOrder", stream="order-{order_id}", fields={"order_id": ORDER_ID})
def deliver_order(order: Order, data: dict[str, Any]) -> list[tuple[str, OrderDeliveredData]]:
    """Record that the carrier delivered a shipped order."""
    order_id = data["order_id"]
    _require_placed(order, order_id)
    if order.status is OrderStatus.DELIVERED:
        raise Rejected(f"order {order_id} is already delivered")
    if order.status is not OrderStatus.SHIPPED:
        raise Rejected(f"order {order_id} is {order.status}: only a shipped order is delivered")
    return [("OrderDelivered", OrderDeliveredData(order_id=order_id))]


@command(
    "RegisterCustomer",
    stream="customer-{customer_id}",
    fields={
        "customer_id": Field(str, help="the customer's id; their stream is customer-<id>"),
        "name": Field(str, help="the customer's full name"),
        "tier": Field(str, required=False, default="standard", help="loyalty tier", choices=TIERS),
    },
)
def register_customer(
    customer: Customer, data: dict[str, Any]
) -> list[tuple[str, CustomerRegisteredData]]:
    """Open an account for a new customer."""
    customer_id = _text("customer_id", data["customer_id"])
    if customer.registered:
        raise Rejected(f"customer {customer_id} is already registered")
    registered = CustomerRegisteredData(
        customer_id=customer_id, name=_text("name", data["name"]), tier=data["tier"]
    )
    return [("CustomerRegistered", registered)]
