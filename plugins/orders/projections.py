"""The read models of the order domain: order summaries, customer statistics, daily revenue.

Every handler is a pure function of (view, event): times come from the event's
``recorded_at``, never from the clock, so replaying, time travel and comparing
versions all give the same documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.api import Projection, RecordedEvent, View, format_time, handles

JsonDoc = dict[str, Any]


def _day(moment: datetime) -> str:
    """The UTC day of an event's time: ``2026-03-01``."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def _save_order(view: View, event: RecordedEvent, doc: JsonDoc) -> None:
    doc["updated_at"] = format_time(event.recorded_at)
    view.put(doc["order_id"], doc)


class OrderSummary(Projection):
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
        data, at = event.data, format_time(event.recorded_at)
        count = total = 0
        for item in data["items"]:  # one pass: two generator sums took twice as long
            quantity = item["quantity"]
            count += quantity
            total += quantity * item["unit_price_cents"]
        doc = {
            "order_id": data["order_id"],
            "customer_id": data["customer_id"],
            "status": "placed",
            "item_count": count,
            "total_cents": total,
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


class OrderSummaryV2(OrderSummary):
    """``order_summary`` version 2: the same documents, with one business rule changed.

    Version 2 business rule: a cancelled order bears no revenue, so its
    ``total_cents`` is 0 (what was paid back is in ``refunded_cents``). Orders never
    cancelled read exactly as in version 1.
    """

    version = 2

    def total_after_cancellation(self, doc: JsonDoc) -> int:
        """What ``total_cents`` says once the order is cancelled: version 2 zeroes it."""
        return 0


def _customer_doc(view: View, customer_id: str) -> JsonDoc:
    return view.get(customer_id) or {
        "customer_id": customer_id,
        "name": None,
        "tier": None,
        "orders_placed": 0,
        "orders_paid": 0,
        "orders_cancelled": 0,
        "spent_cents": 0,
        "first_order_at": None,
        "last_order_at": None,
    }


class CustomerStats(Projection):
    """One document per customer (key: customer_id): their orders and what they spent.

    ``spent_cents`` is what they paid minus what was refunded to them; ``orders_paid``
    counts payments, so an order paid and then cancelled counts as paid and cancelled.
    """

    name = "customer_stats"
    version = 1

    @handles("CustomerRegistered")
    def customer_registered(self, view: View, event: RecordedEvent) -> None:
        """Who the customer is."""
        doc = _customer_doc(view, event.data["customer_id"])
        doc["name"], doc["tier"] = event.data["name"], event.data["tier"]
        view.put(doc["customer_id"], doc)

    @handles("OrderPlaced")
    def order_placed(self, view: View, event: RecordedEvent) -> None:
        """One more order, and when."""
        doc = _customer_doc(view, event.data["customer_id"])
        at = format_time(event.recorded_at)
        doc["orders_placed"] += 1
        doc["first_order_at"] = doc["first_order_at"] or at
        doc["last_order_at"] = at
        view.put(doc["customer_id"], doc)

    @handles("OrderPaid")
    def order_paid(self, view: View, event: RecordedEvent) -> None:
        """One more order paid; the money spent goes up."""
        doc = _customer_doc(view, event.data["customer_id"])
        doc["orders_paid"] += 1
        doc["spent_cents"] += event.data["amount_cents"]
        view.put(doc["customer_id"], doc)

    @handles("OrderCancelled")
    def order_cancelled(self, view: View, event: RecordedEvent) -> None:
        """One more order cancelled; a refund comes off the money spent."""
        doc = _customer_doc(view, event.data["customer_id"])
        doc["orders_cancelled"] += 1
        doc["spent_cents"] -= event.data["refund_cents"]
        view.put(doc["customer_id"], doc)


def _day_doc(view: View, day: str) -> JsonDoc:
    return view.get(day) or {"day": day, "revenue_cents": 0, "orders_paid": 0, "refunds_cents": 0}


class DailyRevenue(Projection):
    """One document per UTC day (key: ``YYYY-MM-DD``): money paid in and paid back.

    A payment counts on the day it was recorded, a refund on the day of the
    cancellation that made it; cancellations of unpaid orders move no money.
    """

    name = "daily_revenue"
    version = 1

    @handles("OrderPaid")
    def order_paid(self, view: View, event: RecordedEvent) -> None:
        """Revenue on the day of the payment."""
        doc = _day_doc(view, _day(event.recorded_at))
        doc["revenue_cents"] += event.data["amount_cents"]
        doc["orders_paid"] += 1
        view.put(doc["day"], doc)

    @handles("OrderCancelled")
    def order_cancelled(self, view: View, event: RecordedEvent) -> None:
        """A refund on the day of the cancellation, if anything was paid."""
        refund = event.data["refund_cents"]
        if refund:
            doc = _day_doc(view, _day(event.recorded_at))
            doc["refunds_cents"] += refund
            view.put(doc["day"], doc)
