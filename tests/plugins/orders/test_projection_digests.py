"""The order read models are exactly what they were: every document version, byte for byte.

The digests below were recorded with the handlers as first written (deep copies, a
time formatted per handler), before they were rewritten for speed; any change to what
a handler stores, or to when it stores it, changes them. A deliberate change to the
read models (or to the demo history) records them again, in the same commit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from core.api import Projection, RecordedEvent
from core.demo import write_demo
from core.projections.fold import fold_projection
from core.store import EventFilter, InMemoryEventStore
from core.upcasting import Upcasters, upcaster_of
from plugins.orders.demo import generate_history
from plugins.orders.projections import CustomerStats, DailyRevenue, OrderSummary, OrderSummaryV2
from plugins.orders.upcasters import order_placed_v1_to_v2

#: (projection, digest of every stored version in order, digest of the folded read model)
#: on ``generate_history(orders=2000, seed=7)``.
GOLDEN = [
    (
        OrderSummary,
        "8475281c49b7b1b6c5d418ee43de31bbbe562cda350b9866b5b4e66f692ad073",
        "9b97fdc22af4952aa2743190fdf30783fdcc5a450f431f359814f0fd150a45d7",
    ),
    (
        OrderSummaryV2,
        "67d0100cae5069fff7e11eeed950bc485341a51faa420d17dc122a4fb98baf5f",
        "b22bc6a3ffcfd6db0c31b9787d12bd47a39b865278ade2cf16fb28ac661f9b22",
    ),
    (
        CustomerStats,
        "7ff378ae57cbbdce6a06740f1c7185105b84cf0f901730ef48c5efdfa9855f46",
        "e0cf4952842cc8a8674b9dede466cc7b52ce2ddec088850535d858c00732e12d",
    ),
    (
        DailyRevenue,
        "ed2b6217ac272a73ce9b814dc5a41b6e579f2b68169ada6bf20941c074224414",
        "76f4c07016d0773a2e60c581a9d32c91414508a90e0237cc36e8bd68e36242a9",
    ),
]


class RecordingView:
    """A view as the runner's: documents stored as sorted-key JSON, every change logged."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.digest = hashlib.sha256()
        self.position = 0

    def get(self, key: str) -> dict[str, Any] | None:
        stored = self.stored.get(key)
        return None if stored is None else orjson.loads(stored)

    def put(self, key: str, doc: dict[str, Any]) -> None:
        stored = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        if self.stored.get(key) != stored:
            self.stored[key] = stored
            self.digest.update(orjson.dumps([self.position, key]) + stored)

    def delete(self, key: str) -> None:
        if self.stored.pop(key, None) is not None:
            self.digest.update(orjson.dumps([self.position, key, None]))


@pytest.fixture(scope="module")
def events() -> list[RecordedEvent]:
    store = InMemoryEventStore()
    write_demo(store, generate_history(orders=2000, seed=7))
    upcasters = Upcasters([upcaster_of(order_placed_v1_to_v2)])

    def fail(failure: Exception) -> None:
        raise failure

    return list(upcasters.upcast_all(store.read(EventFilter()), fail))


@pytest.mark.parametrize(("projection", "versions", "folded"), GOLDEN)
def test_every_stored_version_is_unchanged(
    events: list[RecordedEvent], projection: type[Projection], versions: str, folded: str
) -> None:
    view, instance = RecordingView(), projection()
    for event in events:
        view.position = event.position
        instance.apply(view, event)

    assert view.digest.hexdigest() == versions


@pytest.mark.parametrize(("projection", "versions", "folded"), GOLDEN)
def test_the_folded_read_model_is_unchanged(
    events: list[RecordedEvent], projection: type[Projection], versions: str, folded: str
) -> None:
    documents = fold_projection(projection, events)

    digest = hashlib.sha256(orjson.dumps(documents, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert digest == folded
