"""The orders plugin's ``order_summary:1`` and the fold's view as they were before issue 16:
the benchmark's baseline for what the handler changes gained, folded in the same run over
the same events (``tests/benchmarks/projections.py``, row 2d).

The handlers are ``plugins/orders/projections.py`` at commit 1af4901^ (``_iso`` formatting
the time in every handler); the view is ``DictView`` before commit 059ebc2 (``get`` and
``put`` each a ``copy.deepcopy`` of the whole document). Kept only as a baseline: the
benchmark checks that it folds the same documents as today's plugin.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from core.api import Projection, RecordedEvent, View, handles

JsonDoc = dict[str, Any]


class DeepCopyView:
    """``DictView`` before issue 16: whole-document deep copies in and out."""

    def __init__(self) -> None:
        self.documents: dict[str, JsonDoc] = {}

    def get(self, key: str) -> JsonDoc | None:
        doc = self.documents.get(key)
        return None if doc is None else copy.deepcopy(doc)

    def put(self, key: str, doc: JsonDoc) -> None:
        if not isinstance(key, str):
            raise TypeError(f"read-model keys are text, not {type(key).__name__}")
        if not isinstance(doc, dict):
            raise TypeError(f"read-model documents are JSON objects, not {type(doc).__name__}")
        self.documents[key] = copy.deepcopy(doc)

    def delete(self, key: str) -> None:
        self.documents.pop(key, None)


def _iso(moment: datetime) -> str:
    """An event's time as read models show it: ``2026-03-01T10:15:00.123456Z``."""
    if moment.tzinfo is not UTC:  # recorded times are UTC already: no conversion
        moment = moment.astimezone(UTC)
    # isoformat ends in "+00:00" here; it takes a third less time than strftime.
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def _save_order(view: View, event: RecordedEvent, doc: JsonDoc) -> None:
    doc["updated_at"] = _iso(event.recorded_at)
    view.put(doc["order_id"], doc)


class OrderSummaryBefore16(Projection):
    """One document per order (key: order_id): who, where it is, what it is worth.

    ``status`` is placed, paid, shipped, delivered or cancelled; ``item_count`` counts
    units; ``paid_cents`` is what was paid and ``refunded_cents`` what was paid back.
    An order's first event is OrderPlaced: events of an order without one (appended
    by hand) are skipped rather than invented into a document.

    Version 1 business rule: a cancelled order keeps its ``total_cents``, the value of
    the goods it was for, as if it still bore revenue.
    """

    name = "order_summary"
    version = 1

    def total_after_cancellation(self, doc: JsonDoc) -> int:
        """What ``total_cents`` says once the order is cancelled: version 1 keeps it."""
        return int(doc["total_cents"])

    @handles("OrderPlaced")
    def order_placed(self, view: View, event: RecordedEvent) -> None:
        """A new document for the order."""
        data, at = event.data, _iso(event.recorded_at)
        items = data["items"]
        doc = {
            "order_id": data["order_id"],
            "customer_id": data["customer_id"],
            "status": "placed",
            "item_count": sum(item["quantity"] for item in items),
            "total_cents": sum(item["quantity"] * item["unit_price_cents"] for item in items),
            "paid_cents": 0,
            "refunded_cents": 0,
            "currency": data["currency"],
            "carrier": None,
            "placed_at": at,
            "updated_at": at,
        }
        view.put(data["order_id"], doc)

    @handles("ItemAdded")
    def item_added(self, view: View, event: RecordedEvent) -> None:
        """More units, a higher total."""
        data = event.data
        if (doc := view.get(data["order_id"])) is not None:
            doc["item_count"] += data["quantity"]
            doc["total_cents"] += data["quantity"] * data["unit_price_cents"]
            _save_order(view, event, doc)

    @handles("ItemRemoved")
    def item_removed(self, view: View, event: RecordedEvent) -> None:
        """Fewer units, a lower total."""
        data = event.data
        if (doc := view.get(data["order_id"])) is not None:
            doc["item_count"] -= data["quantity"]
            doc["total_cents"] -= data["quantity"] * data["unit_price_cents"]
            _save_order(view, event, doc)

    @handles("OrderPaid")
    def order_paid(self, view: View, event: RecordedEvent) -> None:
        """Paid, and how much."""
        if (doc := view.get(event.data["order_id"])) is not None:
            doc["status"] = "paid"
            doc["paid_cents"] = event.data["amount_cents"]
            _save_order(view, event, doc)

    @handles("OrderShipped")
    def order_shipped(self, view: View, event: RecordedEvent) -> None:
        """Shipped, and with whom."""
        if (doc := view.get(event.data["order_id"])) is not None:
            doc["status"] = "shipped"
            doc["carrier"] = event.data["carrier"]
            _save_order(view, event, doc)

    @handles("OrderDelivered")
    def order_delivered(self, view: View, event: RecordedEvent) -> None:
        """Delivered."""
        if (doc := view.get(event.data["order_id"])) is not None:
            doc["status"] = "delivered"
            _save_order(view, event, doc)

    @handles("OrderCancelled")
    def order_cancelled(self, view: View, event: RecordedEvent) -> None:
        """Cancelled, with the refund; the total follows this version's rule."""
        if (doc := view.get(event.data["order_id"])) is not None:
            doc["status"] = "cancelled"
            doc["refunded_cents"] = event.data["refund_cents"]
            doc["total_cents"] = self.total_after_cancellation(doc)
            _save_order(view, event, doc)
