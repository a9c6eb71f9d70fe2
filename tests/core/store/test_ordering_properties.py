"""Property tests: any sequence of appends keeps the store's ordering rules, on every backend.

The in-memory store is the model: SQLite must accept and refuse exactly the same appends
and end with exactly the same log.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import DuplicateEventId, WrongExpectedVersion
from core.events import NewEvent
from core.store import EventStore, InMemoryEventStore, SqlEventStore

STREAMS = ["a-1", "a-2", "b-1"]

expectations = st.one_of(
    st.sampled_from(["any", "no_stream", "stream_exists"]),
    st.integers(min_value=0, max_value=6),
)
operations = st.lists(
    st.tuples(
        st.sampled_from(STREAMS),
        st.integers(min_value=0, max_value=4),  # events in the append
        expectations,
        st.booleans(),  # re-send the previous append's events instead of new ones
        st.integers(min_value=0, max_value=3),  # clock step back (0) or forward
    ),
    max_size=25,
)


def batches_for(ops: list) -> list[list[NewEvent]]:  # type: ignore[type-arg]
    """The events each operation appends: new ones, or the previous append's again."""
    batches: list[list[NewEvent]] = []
    for n, (_stream, size, _expected, resend, _step) in enumerate(ops):
        if resend and batches and batches[-1]:
            batches.append(batches[-1])
        else:
            batches.append([NewEvent("Happened", {"op": n, "i": i}) for i in range(size)])
    return batches


def replay(store: EventStore, ops: list, batches: list, clock: list[int]) -> list[str]:  # type: ignore[type-arg]
    outcomes: list[str] = []
    for (stream_id, _size, expected, _resend, step), batch in zip(ops, batches, strict=True):
        clock[0] += (step - 1) * 1_000_000  # sometimes the wall clock goes backwards
        try:
            result = store.append_to_stream(stream_id, batch, expected)
            outcomes.append(f"ok {result.version} {result.duplicate}")
        except WrongExpectedVersion as error:
            outcomes.append(f"conflict {error.actual}")
        except DuplicateEventId:
            outcomes.append("duplicate id")
    return outcomes


def log_of(store: EventStore) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (e.position, e.stream_id, e.version, e.type, e.data, e.event_id, e.recorded_at)
        for e in store.read_all()
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_sqlite_behaves_like_the_model_and_keeps_the_rules(ops: list) -> None:  # type: ignore[type-arg]
    model_clock = [10**15]
    sqlite_clock = [10**15]
    model = InMemoryEventStore(clock=lambda: model_clock[0])
    with tempfile.TemporaryDirectory() as folder:
        store = SqlEventStore.open(Path(folder) / "p.db", clock=lambda: sqlite_clock[0])
        try:
            batches = batches_for(ops)
            expected_outcomes = replay(model, ops, batches, model_clock)
            assert replay(store, ops, batches, sqlite_clock) == expected_outcomes
            log = log_of(store)
            assert log == log_of(model)
            assert [row[0] for row in log] == list(range(1, len(log) + 1))  # gapless
            times = [row[6] for row in log]
            assert times == sorted(times)  # recorded_at never decreases
            for stream_id in STREAMS:
                versions = [row[2] for row in log if row[1] == stream_id]
                assert versions == list(range(len(versions)))  # contiguous
            assert store.check().ok
        finally:
            store.close()
