"""Reads of one shape share statements compiled once, and each read gets its own values."""

from __future__ import annotations

import pytest

from core.events import NewEvent
from core.store import EventFilter, SqlEventStore

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQL stores only: the in-memory store compiles nothing."""
    return str(request.param)


def _store(make_store) -> SqlEventStore:  # type: ignore[no-untyped-def]
    store = make_store()
    assert isinstance(store, SqlEventStore)
    store.page_size = 3  # several keyset pages per read
    types = ["A", "B", "C", "D"]
    for n in range(24):
        stream = ("order", "customer", "shipment")[n % 3] + f"-{n % 4}"
        store.append_to_stream(stream, [NewEvent(types[n % 4], {"n": n})])
    return store


FILTERS = [
    (EventFilter(types=("A",)), EventFilter(types=("C",))),
    (EventFilter(types=("A", "B")), EventFilter(types=("C", "D"))),
    (EventFilter(category="order"), EventFilter(category="customer")),
    (EventFilter(stream_prefix="order-1"), EventFilter(stream_prefix="shipment-")),
    (EventFilter(category="order", types=("A",)), EventFilter(category="shipment", types=("C",))),
    (EventFilter(from_position=3, to_position=9), EventFilter(from_position=12, to_position=20)),
    # A projection runner's batch: several types over a narrow range.
    (
        EventFilter(types=("A", "B"), from_position=2, to_position=11),
        EventFilter(types=("C", "D"), from_position=10, to_position=23),
    ),
    (
        EventFilter(stream_id="order-0", from_position=2, to_position=20),
        EventFilter(stream_id="customer-1", from_position=5, to_position=24),
    ),
]


@pytest.mark.parametrize("backwards", [False, True])
@pytest.mark.parametrize(("first", "second"), FILTERS)
def test_a_read_of_a_compiled_shape_gets_its_own_values(
    make_store, first: EventFilter, second: EventFilter, backwards: bool
) -> None:  # type: ignore[no-untyped-def]
    store = _store(make_store)
    everything = list(store.read())

    def expected(where: EventFilter) -> list[int]:
        bounds = [where.from_position, where.to_position]
        if backwards:  # from_position is where a backwards read starts: an upper bound
            low, high = 1, min((b for b in bounds if b is not None), default=len(everything))
        else:
            low, high = where.from_position or 1, where.to_position or len(everything)
        found = [e.position for e in everything if where.matches(e) and low <= e.position <= high]
        return found[::-1] if backwards else found

    def read(where: EventFilter) -> list[int]:
        return [e.position for e in store.read(where, backwards=backwards)]

    assert read(first) == expected(first) != []
    compiled = dict(store._reads._plain)
    assert read(second) == expected(second) != []
    assert store._reads._plain == compiled  # the same statements, other values
    assert read(first) == expected(first)
    if not backwards:
        assert store.count(second) == len(expected(second))
