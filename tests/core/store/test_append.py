"""The store contract for appends: expected versions, idempotency, validation, positions."""

from __future__ import annotations

import pytest

from core.errors import DuplicateEventId, InvalidEvent, StoreReadOnly, WrongExpectedVersion
from core.events import ANY, NO_STREAM, STREAM_EXISTS, ExpectedVersion, NewEvent, new_event_id
from core.store import EventStore


def events(n: int, kind: str = "Happened") -> list[NewEvent]:
    return [NewEvent(kind, {"n": i}) for i in range(n)]


def all_rows(store: EventStore) -> list[tuple[int, str, int, str]]:
    return [(e.position, e.stream_id, e.version, e.event_id) for e in store.read_all()]


def test_append_assigns_positions_and_versions(store: EventStore) -> None:
    first = store.append_to_stream("order-1", events(3), NO_STREAM)
    second = store.append_to_stream("order-2", events(2), NO_STREAM)
    third = store.append_to_stream("order-1", events(1), 2)

    assert (first.first_position, first.last_position, first.version) == (1, 3, 2)
    assert (second.first_position, second.last_position, second.version) == (4, 5, 1)
    assert (third.first_position, third.version) == (6, 3)
    read = list(store.read_all())
    assert [e.position for e in read] == [1, 2, 3, 4, 5, 6]
    assert [(e.stream_id, e.version) for e in read] == [
        ("order-1", 0), ("order-1", 1), ("order-1", 2),
        ("order-2", 0), ("order-2", 1), ("order-1", 3),
    ]  # fmt: skip
    assert [e.data for e in read][:3] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert store.head_position() == 6


def test_returned_events_equal_the_stored_ones(store: EventStore) -> None:
    result = store.append_to_stream(
        "account-7", [NewEvent("Deposited", {"amount": 12.5}, {"correlation_id": "c-1"})]
    )
    (stored,) = store.read_all()
    assert result.events == [stored]
    assert stored.metadata == {"correlation_id": "c-1"}
    assert stored.recorded_at.tzinfo is not None


@pytest.mark.parametrize(
    ("expected", "current_events", "ok"),
    [
        (ANY, 0, True),
        (ANY, 2, True),
        (NO_STREAM, 0, True),
        (NO_STREAM, 2, False),
        (STREAM_EXISTS, 0, False),
        (STREAM_EXISTS, 2, True),
        (ExpectedVersion.exact(1), 2, True),
        (ExpectedVersion.exact(0), 2, False),
        (ExpectedVersion.exact(2), 2, False),
        (ExpectedVersion.exact(0), 0, False),
    ],
)
def test_expected_version_kinds(
    store: EventStore, expected: ExpectedVersion, current_events: int, ok: bool
) -> None:
    if current_events:
        store.append_to_stream("s-1", events(current_events))
    before = all_rows(store)
    if ok:
        store.append_to_stream("s-1", events(1), expected)
        assert len(all_rows(store)) == len(before) + 1
    else:
        with pytest.raises(WrongExpectedVersion) as caught:
            store.append_to_stream("s-1", events(2), expected)
        assert caught.value.actual == (current_events - 1 if current_events else None)
        assert all_rows(store) == before


class TestKurrentDbIdempotencyTable:
    """Append events 0–5, then re-send some of them with various expectations."""

    @pytest.fixture
    def sent(self, store: EventStore) -> list[NewEvent]:
        batch = [NewEvent("Happened", {"n": i}) for i in range(6)]
        store.append_to_stream("stream-1", batch, NO_STREAM)
        return batch

    def test_resend_first_with_no_stream_is_idempotent(
        self, store: EventStore, sent: list[NewEvent]
    ) -> None:
        before = all_rows(store)
        result = store.append_to_stream("stream-1", sent[:1], NO_STREAM)
        assert result.duplicate
        assert result.events[0].event_id == sent[0].event_id
        assert result.events[0].version == 0
        assert all_rows(store) == before

    def test_resend_whole_batch_with_no_stream_is_idempotent(
        self, store: EventStore, sent: list[NewEvent]
    ) -> None:
        before = all_rows(store)
        assert store.append_to_stream("stream-1", sent, NO_STREAM).duplicate
        assert store.append_to_stream("stream-1", sent, ANY).duplicate
        assert all_rows(store) == before

    def test_resend_with_exact_version_before_them_is_idempotent(
        self, store: EventStore, sent: list[NewEvent]
    ) -> None:
        before = all_rows(store)
        assert store.append_to_stream("stream-1", sent[3:], 2).duplicate
        assert all_rows(store) == before

    def test_resend_expecting_six_is_a_conflict(
        self, store: EventStore, sent: list[NewEvent]
    ) -> None:
        before = all_rows(store)
        with pytest.raises(WrongExpectedVersion):
            store.append_to_stream("stream-1", sent[:1], 6)
        assert all_rows(store) == before

    def test_partial_overlap_is_a_conflict(self, store: EventStore, sent: list[NewEvent]) -> None:
        before = all_rows(store)
        overlapping = [*sent[4:], NewEvent("Happened", {"n": 6})]
        with pytest.raises(WrongExpectedVersion):
            store.append_to_stream("stream-1", overlapping, 3)
        with pytest.raises(WrongExpectedVersion):
            store.append_to_stream("stream-1", overlapping, NO_STREAM)
        assert all_rows(store) == before

    def test_stream_exists_on_a_missing_stream_is_a_conflict(self, store: EventStore) -> None:
        with pytest.raises(WrongExpectedVersion) as caught:
            store.append_to_stream("stream-missing", events(1), STREAM_EXISTS)
        assert caught.value.actual is None
        assert all_rows(store) == []


def test_event_id_stored_in_another_stream_is_refused(store: EventStore) -> None:
    event = NewEvent("Happened", {})
    store.append_to_stream("a-1", [event])
    before = all_rows(store)
    with pytest.raises(DuplicateEventId) as caught:
        store.append_to_stream("b-1", [event])
    assert caught.value.stream_id == "a-1"
    assert all_rows(store) == before


def test_event_id_resent_at_the_head_with_a_matching_version_is_refused(
    store: EventStore,
) -> None:
    first = NewEvent("Happened", {})
    store.append_to_stream("a-1", [first, NewEvent("Happened", {})])
    with pytest.raises(DuplicateEventId):
        store.append_to_stream("a-1", [first], 1)
    assert len(all_rows(store)) == 2


def test_the_same_event_id_twice_in_one_append_is_refused(store: EventStore) -> None:
    event_id = new_event_id()
    with pytest.raises(InvalidEvent, match="twice"):
        store.append_to_stream(
            "a-1", [NewEvent("A", {}, {}, event_id), NewEvent("B", {}, {}, event_id)]
        )
    assert all_rows(store) == []


@pytest.mark.parametrize(
    ("stream_id", "event", "field"),
    [
        ("", NewEvent("A"), "stream_id"),
        ("x" * 257, NewEvent("A"), "stream_id"),
        ("order-\n1", NewEvent("A"), "stream_id"),
        ("order-\x001", NewEvent("A"), "stream_id"),
        ("order-1", NewEvent(""), "type"),
        ("order-1", NewEvent("A", [1, 2]), "data"),  # type: ignore[arg-type]
        ("order-1", NewEvent("A", "text"), "data"),  # type: ignore[arg-type]
        ("order-1", NewEvent("A", {}, [1]), "metadata"),  # type: ignore[arg-type]
        ("order-1", NewEvent("A", {"x": float("nan")}), "data"),
        ("order-1", NewEvent("A", {"x": {"y": [1, float("inf")]}}), "data"),
        ("order-1", NewEvent("A", {}, {"m": -float("inf")}), "metadata"),
        ("order-1", NewEvent("A", {"bad": "\udc80"}), "data"),
        ("order-1", NewEvent("A", {1: "key is not text"}), "data"),  # type: ignore[dict-item]
        ("order-1", NewEvent("A", {"big": "x" * (1024 * 1024)}), "data"),
    ],
)
def test_invalid_events_are_refused_naming_the_field(
    store: EventStore, stream_id: str, event: NewEvent, field: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        store.append_to_stream(stream_id, [NewEvent("Fine", {}), event])
    assert caught.value.field.endswith(field)
    assert all_rows(store) == []


def test_nan_error_names_the_path(store: EventStore) -> None:
    with pytest.raises(InvalidEvent, match=r"x\.y\[1\]"):
        store.append_to_stream("order-1", [NewEvent("A", {"x": {"y": [1, float("nan")]}})])


def test_a_stream_id_of_256_characters_and_unicode_is_fine(store: EventStore) -> None:
    store.append_to_stream("é" * 256, events(1))
    store.append_to_stream("order-ü-1", events(1))
    assert [e.stream_id for e in store.read_all()] == ["é" * 256, "order-ü-1"]


def test_payload_just_under_the_limit_is_accepted(store: EventStore) -> None:
    body = "x" * (1024 * 1024 - len('{"big":""}'))
    store.append_to_stream("order-1", [NewEvent("A", {"big": body})])
    (stored,) = store.read_all()
    assert len(stored.data["big"]) == len(body)


def test_recorded_at_never_decreases_when_the_clock_goes_back(make_store) -> None:  # type: ignore[no-untyped-def]
    now = [0]
    store = make_store(clock=lambda: now[0])
    for tick in (5_000_000, 3_000_000, 9_000_000, 1_000_000):
        now[0] = tick
        store.append_to_stream("clock-1", events(1))
    times = [e.recorded_at for e in store.read_all()]
    assert [round(t.timestamp()) for t in times] == [5, 5, 9, 9]


def test_empty_append_checks_the_expectation_and_writes_nothing(store: EventStore) -> None:
    store.append_to_stream("s-1", events(1))
    assert store.append_to_stream("s-1", [], 0).version == 0
    with pytest.raises(WrongExpectedVersion):
        store.append_to_stream("s-1", [], NO_STREAM)
    assert len(all_rows(store)) == 1


def test_read_only_store_refuses_writes_and_keeps_reading(backend: str, make_store) -> None:  # type: ignore[no-untyped-def]
    if backend == "memory":
        pytest.skip("the in-memory store has no read-only mode")
    make_store().append_to_stream("s-1", events(2))
    reader = make_store(read_only=True)
    with pytest.raises(StoreReadOnly):
        reader.append_to_stream("s-1", events(1))
    assert [e.version for e in reader.read_stream("s-1")] == [0, 1]
