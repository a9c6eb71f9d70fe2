"""Reading old events in the current schema: OrderPlaced schema 1 -> schema 2.

Schema 1 (older versions of the shop) named the customer ``customer``, the lines
``lines`` and wrote each line's price as a float in euros::

    {"order_id": "17", "customer": "C0003",
     "lines": [{"sku": "MUG-CLASSIC", "qty": 2, "price": 12.99}]}

Schema 2 counts money in integer cents and says which currency it is in::

    {"order_id": "17", "customer_id": "C0003",
     "items": [{"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299}],
     "currency": "EUR"}

Schema 1 orders were all in euros. Anything else they carry passes through as it is.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.api import upcaster
from plugins.orders.events import CURRENCY

_CENT = Decimal("0.01")


def euros_to_cents(euros: float) -> int:
    """A price in euros, as schema 1 wrote it, in whole cents; a half cent rounds up.

    The float is read as the decimal it was written as (``19.99``, not
    ``19.989999…``), so ``19.99`` is 1999 cents, where ``int(19.99 * 100)`` is 1998.
    """
    return int(Decimal(repr(euros)).quantize(_CENT, rounding=ROUND_HALF_UP) / _CENT)


def _item_from_line(line: dict[str, Any]) -> dict[str, Any]:
    rest = {key: value for key, value in line.items() if key not in ("sku", "qty", "price")}
    return {
        "sku": line["sku"],
        "quantity": line["qty"],
        "unit_price_cents": euros_to_cents(line["price"]),
        **rest,
    }


@upcaster("OrderPlaced", from_version=1)
def order_placed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """OrderPlaced schema 1 -> 2: ``customer`` -> ``customer_id``, euro lines -> cent items."""
    rest = {
        key: value for key, value in data.items() if key not in ("order_id", "customer", "lines")
    }
    return {
        "order_id": data["order_id"],
        "customer_id": data["customer"],
        "items": [_item_from_line(line) for line in data["lines"]],
        "currency": CURRENCY,
        **rest,
    }
