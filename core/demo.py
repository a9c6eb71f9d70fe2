"""A small, deterministic order-management history for the console's demo store.

The full demo domain (decided by the orders plugin's commands) comes with the plugin
system; this seed exists so that ``eventscope gui --demo`` opens on something real.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from core.events import NewEvent, to_micros
from core.store import EventStore, ImportRecord, ImportResult
from core.store.port import prepare_events

__all__ = ["seed_demo_history"]

_PRODUCTS = {
    "kettle": 39.0,
    "teapot": 24.5,
    "mug": 8.0,
    "grinder": 129.0,
    "scale": 45.0,
    "filter-papers": 4.5,
}
_CUSTOMERS = [f"customer-{n}" for n in range(1, 41)]
_END = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)


def seed_demo_history(store: EventStore, *, orders: int = 300, seed: int = 7) -> ImportResult:
    """Append a deterministic history of ``orders`` orders spread over ~90 days.

    The same seed gives the same events, ids and times; seeding twice appends nothing
    the second time (the ids are already stored).
    """
    return store.import_records(_records(orders, seed))


def _records(orders: int, seed: int) -> Iterator[ImportRecord]:
    rng = random.Random(seed)
    start = _END - timedelta(days=90)  # customers register in the month before
    span = (_END - start).total_seconds()
    # Orders start in the first 85 days, so their follow-ups end by the last day.
    moments = sorted(rng.uniform(0, span - 5 * 86_400) for _ in range(orders))
    pending: list[tuple[float, str, int, str, dict[str, Any], str]] = []
    for number, customer in enumerate(_CUSTOMERS, start=1):
        pending.append(
            (
                -rng.uniform(86_400, 30 * 86_400),
                customer,
                0,
                "CustomerRegistered",
                {"name": f"Customer {number}", "tier": rng.choice(["standard", "gold"])},
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
        )
    for number, offset in enumerate(moments, start=1):
        pending.extend(_order_events(rng, number, offset))
    pending.sort(key=lambda item: (item[0], item[1], item[2]))
    for line, (offset, stream_id, version, event_type, data, correlation) in enumerate(
        pending, start=1
    ):
        moment = start + timedelta(seconds=offset)
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        metadata = {"correlation_id": correlation, "schema_version": 2}
        (prepared,) = prepare_events([NewEvent(event_type, data, metadata, event_id)])
        yield ImportRecord(line, stream_id, prepared, version, to_micros(moment))


def _order_events(
    rng: random.Random, number: int, offset: float
) -> Iterator[tuple[float, str, int, str, dict[str, Any], str]]:
    stream_id = f"order-{number}"
    correlation = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    customer = rng.choice(_CUSTOMERS)
    product = rng.choice(list(_PRODUCTS))
    quantity = rng.randint(1, 3)
    total = round(_PRODUCTS[product] * quantity, 2)
    version = 0
    yield (
        offset,
        stream_id,
        version,
        "OrderPlaced",
        {
            "order_id": stream_id,
            "customer": customer,
            "items": [{"sku": product, "quantity": quantity, "price": _PRODUCTS[product]}],
            "total": total,
        },
        correlation,
    )
    for _ in range(rng.choice([0, 0, 1, 2])):
        offset += rng.uniform(30, 3600)
        version += 1
        extra = rng.choice(list(_PRODUCTS))
        total = round(total + _PRODUCTS[extra], 2)
        yield (
            offset,
            stream_id,
            version,
            "ItemAdded",
            {
                "sku": extra,
                "quantity": 1,
                "price": _PRODUCTS[extra],
                "total": total,
            },
            correlation,
        )
    offset += rng.uniform(60, 86_400)
    version += 1
    if rng.random() < 0.12:
        reason = rng.choice(["customer request", "out of stock", "payment declined"])
        yield offset, stream_id, version, "OrderCancelled", {"reason": reason}, correlation
        return
    yield (
        offset,
        stream_id,
        version,
        "OrderPaid",
        {"amount": total, "method": rng.choice(["card", "invoice", "paypal"])},
        correlation,
    )
    for event_type in ("OrderShipped", "OrderDelivered"):
        offset += rng.uniform(3600, 3 * 86_400)
        version += 1
        yield offset, stream_id, version, event_type, {"carrier": "postal"}, correlation
