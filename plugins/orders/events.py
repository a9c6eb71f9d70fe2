"""The event catalogue of the order domain: each event type and the shape of its data.

Events are facts, named in the past tense, and carry everything a read model needs
about that fact (a payment says who paid and how much), so projections never have
to look anything up. Money is integer cents, so sums are exact.
"""

from __future__ import annotations

from typing import Final, TypedDict

#: The schema of OrderPlaced that command handlers write (``metadata.schema_version``).
ORDER_PLACED_SCHEMA: Final = 2
#: Every order is in euros; the field exists so that one day not every order has to be.
CURRENCY: Final = "EUR"


class LineItem(TypedDict):
    """One line of an order: a product, how many, and the price of one."""

    sku: str
    quantity: int
    unit_price_cents: int


class OrderPlacedData(TypedDict):
    """``OrderPlaced``, schema 2: a customer placed an order for these items."""

    order_id: str
    customer_id: str
    items: list[LineItem]
    currency: str


class LegacyLine(TypedDict):
    """One line of an order as schema 1 wrote it: ``price`` in euros, as a float."""

    sku: str
    qty: int
    price: float


class OrderPlacedV1Data(TypedDict):
    """``OrderPlaced``, schema 1 (stored by older versions of the shop; upcast on read)."""

    order_id: str
    customer: str
    lines: list[LegacyLine]


class ItemAddedData(TypedDict):
    """``ItemAdded``: units of a product were added to an open order."""

    order_id: str
    sku: str
    quantity: int
    unit_price_cents: int


class ItemRemovedData(TypedDict):
    """``ItemRemoved``: a whole line left an open order (with what it was worth)."""

    order_id: str
    sku: str
    quantity: int
    unit_price_cents: int


class OrderPaidData(TypedDict):
    """``OrderPaid``: the customer paid the order's total."""

    order_id: str
    customer_id: str
    amount_cents: int
    method: str


class OrderShippedData(TypedDict):
    """``OrderShipped``: the parcel left with a carrier."""

    order_id: str
    carrier: str


class OrderDeliveredData(TypedDict):
    """``OrderDelivered``: the carrier delivered the parcel."""

    order_id: str


class OrderCancelledData(TypedDict):
    """``OrderCancelled``: the order was called off; ``refund_cents`` is 0 if nothing was paid."""

    order_id: str
    customer_id: str
    reason: str
    refund_cents: int


class CustomerRegisteredData(TypedDict):
    """``CustomerRegistered``: a customer account was opened."""

    customer_id: str
    name: str
    tier: str
