"""What the order and customer streams fold into: the state their commands decide on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from core.api import RecordedEvent, evolver


class OrderStatus(StrEnum):
    """Where an order is in its life.

    Placed, then paid, shipped and delivered, in that order; cancelled at any point
    before it ships.
    """

    UNPLACED = "unplaced"
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an order: a product, how many, and the price of one."""

    sku: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        """What the line costs."""
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class Order:
    """An order as its stream tells it; ``Order()`` is an order not placed yet."""

    order_id: str = ""
    customer_id: str = ""
    status: OrderStatus = OrderStatus.UNPLACED
    lines: tuple[Line, ...] = ()
    paid_cents: int = 0

    @property
    def total_cents(self) -> int:
        """What the order costs: the sum of its lines."""
        return sum(line.total_cents for line in self.lines)

    def line(self, sku: str) -> Line | None:
        """The line for ``sku``, or None if the order has none."""
        return next((line for line in self.lines if line.sku == sku), None)


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer as their stream tells it; ``Customer()`` is one not registered yet."""

    customer_id: str = ""
    name: str = ""
    tier: str = ""
    registered: bool = False


def added(lines: tuple[Line, ...], new: Line) -> tuple[Line, ...]:
    """The lines after adding ``new``: more of a product already there, or a new line."""
    if all(line.sku != new.sku for line in lines):
        return (*lines, new)
    return tuple(
        dataclasses.replace(line, quantity=line.quantity + new.quantity)
        if line.sku == new.sku
        else line
        for line in lines
    )


@evolver("order", initial=Order)
def evolve_order(order: Order, event: RecordedEvent) -> Order:
    """Fold one (upcast) event of an ``order-…`` stream into the order."""
    data = event.data
    match event.type:
        case "OrderPlaced":
            return Order(
                order_id=data["order_id"],
                customer_id=data["customer_id"],
                status=OrderStatus.PLACED,
                lines=tuple(
                    Line(item["sku"], item["quantity"], item["unit_price_cents"])
                    for item in data["items"]
                ),
            )
        case "ItemAdded":
            line = Line(data["sku"], data["quantity"], data["unit_price_cents"])
            return dataclasses.replace(order, lines=added(order.lines, line))
        case "ItemRemoved":
            kept = tuple(line for line in order.lines if line.sku != data["sku"])
            return dataclasses.replace(order, lines=kept)
        case "OrderPaid":
            return dataclasses.replace(
                order, status=OrderStatus.PAID, paid_cents=data["amount_cents"]
            )
        case "OrderShipped":
            return dataclasses.replace(order, status=OrderStatus.SHIPPED)
        case "OrderDelivered":
            return dataclasses.replace(order, status=OrderStatus.DELIVERED)
        case "OrderCancelled":
            return dataclasses.replace(order, status=OrderStatus.CANCELLED)
    # An event type this version does not know changes nothing it decides on.
    return order


@evolver("customer", initial=Customer)
def evolve_customer(customer: Customer, event: RecordedEvent) -> Customer:
    """Fold one event of a ``customer-…`` stream into the customer."""
    if event.type == "CustomerRegistered":
        data = event.data
        return Customer(data["customer_id"], data["name"], data["tier"], registered=True)
    return customer
