"""A deterministic order-management history, lived by simulated shoppers.

Every event is decided by the domain's own command handlers on the state the
domain's own evolvers fold, so the history holds only what the domain allows: when
a shopper tries something it refuses (paying twice, removing an order's last item),
no event is written and the shopper gets on with their day.

The same seed gives the same history, down to event ids and microseconds: all
randomness comes from one ``random.Random(seed)`` and all times from the fixed
period below, never from the clock.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final

from core.api import DemoEvent, NewEvent, RecordedEvent, Rejected, demo_history
from plugins.orders.commands import (
    PAYMENT_METHODS,
    add_item,
    cancel_order,
    deliver_order,
    pay_order,
    place_order,
    register_customer,
    remove_item,
    ship_order,
)
from plugins.orders.events import LegacyLine, OrderPlacedV1Data
from plugins.orders.state import Customer, Order, evolve_customer, evolve_order

#: The history covers the first quarter of 2026: 90 days, to the second.
PERIOD_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD_END: Final = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
#: Customers register in the first two days of the period; orders come after.
SIGNUP_WINDOW: Final = timedelta(days=2)

#: What the shop sells: (sku, unit price in cents).
CATALOGUE: Final = (
    ("BEANS-ESPRESSO-1KG", 2390),
    ("BEANS-FILTER-500G", 1350),
    ("DECAF-250G", 990),
    ("FILTER-PAPERS-100", 499),
    ("MUG-CLASSIC", 1299),
    ("MUG-TRAVEL", 2499),
    ("MILK-JUG-350", 1899),
    ("FRENCH-PRESS", 3490),
    ("POUR-OVER-V60", 2250),
    ("KETTLE-GOOSENECK", 5999),
    ("SCALE-DIGITAL", 2999),
    ("TAMPER-58MM", 3900),
    ("GRINDER-BURR", 8950),
    ("ESPRESSO-MACHINE", 44900),
    ("DESCALER", 799),
    ("GIFT-CARD-25", 2500),
)
CARRIERS: Final = ("DHL", "DPD", "GLS", "UPS")
REASONS_BEFORE_PAYMENT: Final = ("changed my mind", "found it cheaper", "ordered by mistake")
REASONS_AFTER_PAYMENT: Final = ("out of stock", "delivery date too late", "duplicate order")
FIRST_NAMES: Final = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken")
LAST_NAMES: Final = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen")

# How shoppers behave.
GOLD_SHARE: Final = 0.15  # of customers
GOLD_ORDER_WEIGHT: Final = 3  # a gold customer orders three times as often
ABANDONED: Final = 0.05  # placed, never paid
CANCELLED_BEFORE_PAYMENT: Final = 0.06
CANCELLED_AFTER_PAYMENT: Final = 0.05  # of paid orders, refunded
ITEM_REMOVAL: Final = 0.15  # refused for a one-line order: the shopper keeps it
DOUBLE_CLICK: Final = 0.03  # pays twice; the second payment is refused

MICROSECOND: Final = timedelta(microseconds=1)
SECOND: Final = timedelta(seconds=1)
MINUTE: Final = timedelta(minutes=1)
HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: A command handler, as ``@command`` leaves it: ``(state, data) -> decided events``.
Handler = Callable[..., Sequence[Any]]


def as_schema_1(placed: Mapping[str, Any]) -> OrderPlacedV1Data:
    """OrderPlaced data (schema 2) as the shop wrote it before: schema 1, prices in euros."""
    return OrderPlacedV1Data(
        order_id=placed["order_id"],
        customer=placed["customer_id"],
        lines=[
            LegacyLine(sku=item["sku"], qty=item["quantity"], price=item["unit_price_cents"] / 100)
            for item in placed["items"]
        ],
    )


def _uuid7(rng: random.Random, at: datetime) -> str:
    """A time-ordered UUID (version 7) for a moment, its random bits drawn from ``rng``."""
    millis = (at - _EPOCH) // timedelta(milliseconds=1)
    value = (
        (millis << 80)
        | (0x7 << 76)
        | (rng.getrandbits(12) << 64)
        | (0b10 << 62)
        | rng.getrandbits(62)
    )
    return str(uuid.UUID(int=value))


def _between(rng: random.Random, low: timedelta, high: timedelta) -> timedelta:
    """A random duration from ``low`` to ``high``, to the microsecond."""
    return rng.randrange(low // MICROSECOND, high // MICROSECOND) * MICROSECOND


def _shopping_moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A moment from ``start`` to ``end``; shoppers shop by day, most of all in the evening."""
    first_midnight = datetime.combine(start.date(), time(), tzinfo=UTC)
    days = (end - first_midnight).days + 1
    while True:
        hours = rng.triangular(6, 24, 20)
        moment = first_midnight + timedelta(days=rng.randrange(days), hours=hours)
        if start <= moment <= end:
            return moment


class _Stream:
    """One stream as the simulation writes it: its folded state, its clock, its events.

    Args:
        stream_id: the stream (``order-00017``).
        state: the evolver's initial state.
        evolve: the domain's evolver for the stream's category.
        rng: the history's one source of randomness.
        at: when the first command is tried.
        schema_1: whether OrderPlaced is stored as the shop wrote it before schema 2.
    """

    def __init__(
        self,
        stream_id: str,
        state: Any,
        evolve: Callable[[Any, RecordedEvent], Any],
        *,
        rng: random.Random,
        at: datetime,
        schema_1: bool = False,
    ) -> None:
        self.stream_id = stream_id
        self.state = state
        self.evolve = evolve
        self.rng = rng
        self.at = at
        self.schema_1 = schema_1
        self.correlation_id = _uuid7(rng, at)
        self.events: list[DemoEvent] = []
        self.over = False

    def attempt(
        self,
        handler: Handler,
        data: dict[str, Any],
        *,
        wait: tuple[timedelta, timedelta] | None = None,
    ) -> bool:
        """Try a command, some time (``wait``: shortest, longest) after the previous one.

        Returns whether the domain accepted it: a refused command leaves no event. A
        command that would come after the end of the period never happens, and neither
        does anything else on this stream.
        """
        at = self.at + (_between(self.rng, *wait) if wait else timedelta(0))
        if self.over or at > PERIOD_END:
            self.over = True
            return False
        self.at = at
        try:
            decided = handler(self.state, data)
        except Rejected:
            return False
        for decision in decided:
            self._record(*decision)
        return True

    def _record(
        self, event_type: str, data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> None:
        version, event_id = len(self.events), _uuid7(self.rng, self.at)
        metadata = {**(metadata or {}), "correlation_id": self.correlation_id}
        if self.events:
            metadata["causation_id"] = self.events[-1].event.event_id
        # The store assigns positions when it writes the history; evolvers never read them.
        decided = RecordedEvent(
            0, self.stream_id, version, event_type, dict(data), metadata, event_id, self.at
        )
        self.state = self.evolve(self.state, decided)
        if self.schema_1 and event_type == "OrderPlaced":
            data, metadata = as_schema_1(data), {**metadata, "schema_version": 1}
        self.events.append(
            DemoEvent(
                self.stream_id, NewEvent(event_type, data, metadata, event_id), version, self.at
            )
        )


def _register_customers(rng: random.Random, count: int) -> list[_Stream]:
    """``count`` customers, registered over the sign-up window in the order of their ids."""
    moments = sorted(
        PERIOD_START + _between(rng, timedelta(0), SIGNUP_WINDOW) for _ in range(count)
    )
    accounts = []
    for number, at in enumerate(moments, start=1):
        customer_id = f"C{number:04d}"
        account = _Stream(f"customer-{customer_id}", Customer(), evolve_customer, rng=rng, at=at)
        registration = {
            "customer_id": customer_id,
            "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "tier": "gold" if rng.random() < GOLD_SHARE else "standard",
        }
        account.attempt(register_customer, registration)
        accounts.append(account)
    return accounts


def _quantity(rng: random.Random) -> int:
    return rng.choices((1, 2, 3, 4), weights=(70, 20, 7, 3))[0]


def _edit_basket(order: _Stream, rng: random.Random, order_id: str) -> None:
    """Before paying, some shoppers add a product or two, and some remove one."""
    for _ in range(rng.choices((0, 1, 2), weights=(70, 22, 8))[0]):
        sku, price = rng.choice(CATALOGUE)
        adding = {"order_id": order_id, "sku": sku, "quantity": _quantity(rng)}
        order.attempt(add_item, {**adding, "unit_price_cents": price}, wait=(MINUTE, 2 * HOUR))
    if rng.random() < ITEM_REMOVAL:
        removing = {"order_id": order_id, "sku": rng.choice(order.state.lines).sku}
        order.attempt(remove_item, removing, wait=(MINUTE, HOUR))


def _live_order(order: _Stream, rng: random.Random, order_id: str, customer: Customer) -> None:
    """One order's life: placed, perhaps edited, then paid, shipped and delivered — or not."""
    lines = rng.randint(1, 5 if customer.tier == "gold" else 3)
    items = [
        {"sku": sku, "quantity": _quantity(rng), "unit_price_cents": price}
        for sku, price in rng.sample(CATALOGUE, lines)
    ]
    placing = {"order_id": order_id, "customer_id": customer.customer_id, "items": items}
    if not order.attempt(place_order, placing):
        return
    _edit_basket(order, rng, order_id)

    fate = rng.random()
    if fate < ABANDONED:
        return
    if fate < ABANDONED + CANCELLED_BEFORE_PAYMENT:
        cancelling = {"order_id": order_id, "reason": rng.choice(REASONS_BEFORE_PAYMENT)}
        order.attempt(cancel_order, cancelling, wait=(HOUR, 3 * DAY))
        return

    # The shopper pays what the shop shows: the total of the order as it stands.
    paying = {
        "order_id": order_id,
        "amount_cents": order.state.total_cents,
        "method": rng.choice(PAYMENT_METHODS),
    }
    if not order.attempt(pay_order, paying, wait=(2 * MINUTE, 2 * DAY)):
        return
    if rng.random() < DOUBLE_CLICK:
        order.attempt(pay_order, paying, wait=(SECOND, 5 * SECOND))
    if rng.random() < CANCELLED_AFTER_PAYMENT:
        cancelling = {"order_id": order_id, "reason": rng.choice(REASONS_AFTER_PAYMENT)}
        order.attempt(cancel_order, cancelling, wait=(HOUR, 2 * DAY))
        return

    shipping = {"order_id": order_id, "carrier": rng.choice(CARRIERS)}
    if order.attempt(ship_order, shipping, wait=(4 * HOUR, 3 * DAY)):
        order.attempt(deliver_order, {"order_id": order_id}, wait=(DAY, 6 * DAY))


@demo_history("orders")
def generate_history(
    orders: int = 1000, seed: int = 7, *, schema_1_days: int = 30
) -> Iterator[DemoEvent]:
    """A shop's first quarter of 2026, to 2026-03-31T23:59:59Z: customers, then orders.

    About one customer per ten orders registers first (some gold, who order more and
    bigger); then orders are placed, edited, paid, shipped and delivered, about one in
    ten cancelled (some after payment, refunded), and some left open when the period
    ends. Events come in non-decreasing ``recorded_at`` order, each stream's versions
    contiguous from 0; an order's events share a ``correlation_id`` and each names the
    one before it as its ``causation_id``.

    Args:
        orders: how many orders are placed.
        seed: the seed of the history's one random generator.
        schema_1_days: orders placed in the period's first that many days store their
            OrderPlaced in schema 1, as the shop wrote it then (0: none do).

    Raises:
        ValueError: ``orders`` is negative.
    """
    if orders < 0:
        raise ValueError(f"orders must be 0 or more, not {orders}")
    rng = random.Random(seed)
    accounts = _register_customers(rng, max(1, orders // 10) if orders else 0)
    for account in accounts:
        yield from account.events
    customers: list[Customer] = [account.state for account in accounts]
    cumulative_odds = list(
        itertools.accumulate(GOLD_ORDER_WEIGHT if c.tier == "gold" else 1 for c in customers)
    )
    schema_2_since = PERIOD_START + timedelta(days=schema_1_days)

    placements = sorted(
        _shopping_moment(rng, PERIOD_START + SIGNUP_WINDOW, PERIOD_END) for _ in range(orders)
    )
    # Orders are lived one at a time, in the order they are placed; their events wait
    # in a heap until no order placed later can come before them.
    waiting: list[tuple[datetime, int, DemoEvent]] = []
    arrival = itertools.count()
    for number, placed_at in enumerate(placements, start=1):
        while waiting and waiting[0][0] <= placed_at:
            yield heapq.heappop(waiting)[2]
        order_id = f"{number:05d}"
        order = _Stream(
            f"order-{order_id}",
            Order(),
            evolve_order,
            rng=rng,
            at=placed_at,
            schema_1=placed_at < schema_2_since,
        )
        _live_order(order, rng, order_id, rng.choices(customers, cum_weights=cumulative_odds)[0])
        for event in order.events:
            heapq.heappush(waiting, (event.recorded_at, next(arrival), event))
    while waiting:
        yield heapq.heappop(waiting)[2]
