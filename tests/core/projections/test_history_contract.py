"""The read-model history contract, run against SQLite, PostgreSQL and memory.

Every backend of ``HistoryStore`` (``open_history`` picks it for the store) must give
the same answers: the reference is a plain dict fold of the same changes.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import OlderSchema
from core.events import NewEvent
from core.projections.history import (
    ACTIVE,
    CURRENT,
    FAULTED,
    FIRST_PAGE,
    PAUSED,
    RETIRED,
    Change,
    Fault,
    HistoryStore,
    InMemoryHistoryStore,
    RunRecord,
    SqlHistoryStore,
    open_history,
)
from core.store import EventStore, InMemoryEventStore, SqlEventStore
from tests.core.projections.test_history_migration import schema_7_ddl

MODEL = "tally:1"
#: Keys whose code-point order differs from a locale's: case, accents, an astral
#: character (after every BMP one), the empty key.
KEYS = ["", "B", "a", "b", "z", "Z", "é", "ä", "ß", "日本", "\U0001d11e", "a b", "a-b"]


@pytest.fixture
def history(store: EventStore) -> HistoryStore:
    found = open_history(store)
    assert found is not None
    return found


def doc(value: Any) -> bytes:
    return orjson.dumps(value)


def put(key: str, position: int, value: Any) -> Change:
    return Change(key, position, doc(value))


def stored(history: HistoryStore, model: str = MODEL) -> list[tuple[str, Any]]:
    return list(history.iter_documents_at(model))


def test_open_history_picks_the_backend_of_the_store(backend: str, history: HistoryStore) -> None:
    expected = InMemoryHistoryStore if backend == "memory" else SqlHistoryStore
    assert type(history) is expected


# -- read models ----------------------------------------------------------------------------


def test_ensure_registers_a_model_once_and_status_reads_it(history: HistoryStore) -> None:
    assert history.status(MODEL) is None
    status = history.ensure("tally", 1)
    assert (status.model, status.name, status.version) == (MODEL, "tally", 1)
    assert (status.checkpoint, status.state, status.history_from) == (0, ACTIVE, 0)
    assert (status.fault_position, status.lease_owner, status.lease_expires) == (None, None, 0)
    assert history.commit(MODEL, 0, 5, [put("a", 3, 1)])
    again = history.ensure("tally", 1)  # an existing model is left as it is
    assert again.checkpoint == 5 and history.status(MODEL) == again


def test_statuses_are_by_name_then_version(history: HistoryStore) -> None:
    for name, version in [("b", 1), ("a", 10), ("a", 2)]:
        history.ensure(name, version)
    assert [s.model for s in history.statuses()] == ["a:2", "a:10", "b:1"]


# -- committing -----------------------------------------------------------------------------


def test_a_commit_moves_the_checkpoint_only_from_the_expected_one(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, 4, [put("a", 2, {"n": 1})])
    assert not history.commit(MODEL, 0, 9, [put("b", 7, {"n": 2})])  # another runner's
    assert history.status(MODEL).checkpoint == 4  # type: ignore[union-attr]
    assert stored(history) == [("a", {"n": 1})] and history.versions(MODEL) == 1
    assert not history.commit("never:1", 0, 1, [put("a", 1, 1)])
    assert history.versions("never:1") == 0


@pytest.mark.parametrize("state", [PAUSED, FAULTED, RETIRED])
def test_a_commit_to_an_inactive_model_writes_nothing(history: HistoryStore, state: str) -> None:
    history.ensure("tally", 1)
    assert history.change_state(MODEL, state, only_from=[ACTIVE])
    assert not history.commit(MODEL, 0, 3, [put("a", 1, 1)])
    status = history.status(MODEL)
    assert status is not None and (status.checkpoint, status.state) == (0, state)
    assert history.versions(MODEL) == 0


def test_a_commit_under_a_lease_needs_the_owner_and_extends_the_lease(
    history: HistoryStore,
) -> None:
    history.ensure("tally", 1)
    assert history.acquire_lease(MODEL, "worker-a", seconds=60)
    assert not history.commit(MODEL, 0, 3, [put("a", 1, 1)], lease=("worker-b", 10**18))
    assert history.versions(MODEL) == 0
    assert history.commit(MODEL, 0, 3, [put("a", 1, 1)], lease=("worker-a", 10**18))
    status = history.status(MODEL)
    assert status is not None and status.checkpoint == 3
    assert (status.lease_owner, status.lease_expires) == ("worker-a", 10**18)


def test_a_commit_with_a_fault_marks_the_model_in_the_same_step(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    fault = Fault(5, "event-5", "Traceback: boom")
    assert history.commit(MODEL, 0, 4, [put("a", 2, 1)], fault=fault)
    status = history.status(MODEL)
    assert status is not None
    assert (status.checkpoint, status.state) == (4, FAULTED)
    assert (status.fault_position, status.fault_event_id, status.fault_error) == (
        5,
        "event-5",
        "Traceback: boom",
    )
    assert stored(history) == [("a", 1)]


def test_versions_chain_within_a_batch_and_across_batches(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    first = [
        put("a", 1, {"v": 1}),
        put("b", 2, {"v": 1}),
        put("a", 3, {"v": 2}),
        put("a", 3, {"v": 3}),  # written twice by one event: one version, the last
        Change("b", 4, None),
    ]
    assert history.commit(MODEL, 0, 4, first)
    assert [(s, e, d) for s, e, d in history.versions_of(MODEL, "a")] == [
        (1, 3, {"v": 1}),
        (3, CURRENT, {"v": 3}),
    ]
    assert history.versions_of(MODEL, "b") == [(2, 4, {"v": 1})]
    assert history.current_doc(MODEL, "b") is None
    second = [Change("a", 6, None), put("b", 7, {"v": 2}), put("a", 8, {"v": 4})]
    assert history.commit(MODEL, 4, 8, second)
    assert history.versions_of(MODEL, "a") == [
        (1, 3, {"v": 1}),
        (3, 6, {"v": 3}),
        (8, CURRENT, {"v": 4}),
    ]
    assert history.versions_of(MODEL, "b") == [(2, 4, {"v": 1}), (7, CURRENT, {"v": 2})]
    assert history.versions(MODEL) == 5
    assert orjson.loads(history.current_doc(MODEL, "a") or b"") == {"v": 4}
    assert history.document_at(MODEL, "a", 5) == {"v": 3}
    assert history.document_at(MODEL, "a", 6) is None  # deleted at 6
    assert history.document_at(MODEL, "a", 0) is None
    assert history.document_at(MODEL, "a") == {"v": 4}
    assert history.document_at(MODEL, "missing") is None
    assert history.versions_of(MODEL, "missing") == []


def fold(batches: list[list[Change]], position: int) -> dict[str, Any]:
    """The read model after ``position``: every change up to it applied to a dict."""
    documents: dict[str, Any] = {}
    for change in itertools.chain.from_iterable(batches):
        if change.position > position:
            break
        if change.doc is None:
            documents.pop(change.key, None)
        else:
            documents[change.key] = orjson.loads(change.doc)
    return documents


#: A history: per event, the keys it writes (a value) or deletes (None); events that
#: change nothing leave gaps in the positions.
events = st.lists(
    st.lists(st.tuples(st.sampled_from(KEYS), st.none() | st.integers(0, 9)), max_size=3),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history_of_events=events, data=st.data())
def test_the_documents_at_every_position_are_the_fold_of_the_changes(
    history: HistoryStore, history_of_events: list[list[tuple[str, int | None]]], data: Any
) -> None:
    model = f"prop{next(_models)}:1"
    history.ensure(model.split(":")[0], 1)
    head = len(history_of_events)
    # Batches of whole events (as the runner commits them), cut anywhere in the log.
    cuts = sorted(data.draw(st.sets(st.integers(1, head - 1), max_size=3)) if head > 1 else [])
    batches = [
        [
            Change(key, position, None if value is None else doc({"n": value, "key": key}))
            for position in range(low + 1, high + 1)
            for key, value in history_of_events[position - 1]
        ]
        for low, high in itertools.pairwise([0, *cuts, head])
    ]
    for (low, high), batch in zip(itertools.pairwise([0, *cuts, head]), batches, strict=True):
        assert history.commit(model, low, high, batch)
    head = len(history_of_events)
    for position in [*range(head + 2), None]:
        expected = fold(batches, head + 1 if position is None else position)
        found = list(history.iter_documents_at(model, position, page_size=2))
        assert found == sorted(expected.items())  # code-point order, as Python sorts str
        assert history.documents_at(model, position) == expected
        after = data.draw(st.sampled_from(KEYS))
        assert list(history.iter_documents_at(model, position, after_key=after)) == [
            (key, value) for key, value in sorted(expected.items()) if key > after
        ]
        for key in KEYS:
            assert history.document_at(model, key, position) == expected.get(key)


_models = itertools.count()


def test_keys_come_in_code_point_order(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, 1, [put(key, 1, key) for key in reversed(KEYS)])
    assert [key for key, _ in stored(history)] == sorted(KEYS)
    assert [key for key, _ in history.iter_documents_at(MODEL, 1)] == sorted(KEYS)
    assert [key for key, _ in history.iter_documents_at(MODEL, after_key="a")] == [
        key for key in sorted(KEYS) if key > "a"
    ]
    assert history.current_keys(MODEL, limit=len(KEYS)) == set(KEYS)


@pytest.mark.parametrize("page_size", [1, 3, FIRST_PAGE, 1000])
def test_pages_of_any_size_give_the_whole_model_once(history: HistoryStore, page_size: int) -> None:
    """More documents than the first page and its double: every page boundary is met."""
    history.ensure("tally", 1)
    keys = [f"k{n:04d}" for n in range(FIRST_PAGE * 3 + 5)]
    changes = [put(key, 1, n) for n, key in enumerate(keys) if n % 2 == 0]
    changes += [put(key, 2, n) for n, key in enumerate(keys) if n % 2]
    assert history.commit(MODEL, 0, 2, changes)
    whole = [(key, n) for n, key in enumerate(keys)]
    assert list(history.iter_documents_at(MODEL, page_size=page_size)) == whole
    assert list(history.iter_documents_at(MODEL, 2, page_size=page_size)) == whole
    assert list(history.iter_documents_at(MODEL, 1, page_size=page_size)) == whole[::2]
    assert (
        list(history.iter_documents_at(MODEL, after_key=keys[100], page_size=page_size))
        == (whole[101:])
    )


def test_current_keys_up_to_a_limit(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    assert history.current_keys(MODEL, limit=5) == set()
    assert history.commit(MODEL, 0, 3, [put("a", 1, 1), put("b", 2, 1), put("c", 3, 1)])
    assert history.commit(MODEL, 3, 4, [Change("c", 4, None)])
    assert history.current_keys(MODEL, limit=2) == {"a", "b"}  # a deleted key is not current
    assert history.current_keys(MODEL, limit=1) is None


# -- operator actions -----------------------------------------------------------------------


def test_reset_forgets_documents_and_fault_and_retire_stops_commits(
    history: HistoryStore,
) -> None:
    history.ensure("tally", 1)
    history.ensure("other", 1)
    assert history.commit("other:1", 0, 1, [put("a", 1, 1)])
    assert history.commit(MODEL, 0, 3, [put("a", 1, 1)], fault=Fault(4, "e4", "boom"))
    assert history.retain(MODEL, 2) == 0
    history.reset(MODEL)
    status = history.status(MODEL)
    assert status is not None
    assert (status.checkpoint, status.state, status.history_from) == (0, ACTIVE, 0)
    assert (status.fault_position, status.fault_event_id, status.fault_error) == (None,) * 3
    assert history.versions(MODEL) == 0 and stored(history) == []
    assert stored(history, "other:1") == [("a", 1)]  # other models are untouched
    history.reset(MODEL, state=RETIRED)
    assert history.status(MODEL).state == RETIRED  # type: ignore[union-attr]
    assert not history.commit(MODEL, 0, 1, [put("a", 1, 1)])


def test_change_state_only_from_the_states_named(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    assert not history.change_state("never:1", PAUSED, only_from=[ACTIVE])
    assert not history.change_state(MODEL, ACTIVE, only_from=[PAUSED, FAULTED])
    assert not history.change_state(MODEL, PAUSED, only_from=[])
    assert history.change_state(MODEL, PAUSED, only_from=[ACTIVE, PAUSED])
    assert history.change_state(MODEL, PAUSED, only_from=[ACTIVE, PAUSED])  # already there
    assert history.status(MODEL).state == PAUSED  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        history.change_state(MODEL, ACTIVE, only_from=["a", "b", "c", "d", "e"])


def test_leaving_faulted_clears_the_fault(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, 2, [], fault=Fault(3, "e3", "boom"))
    assert history.change_state(MODEL, FAULTED, only_from=[FAULTED])  # stays: fault kept
    assert history.status(MODEL).fault_position == 3  # type: ignore[union-attr]
    assert history.change_state(MODEL, ACTIVE, only_from=[FAULTED])
    status = history.status(MODEL)
    assert status is not None and status.state == ACTIVE and status.checkpoint == 2
    assert (status.fault_position, status.fault_event_id, status.fault_error) == (None,) * 3


def test_skip_fault_steps_over_the_event_once(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    assert history.skip_fault(MODEL) is None  # not faulted
    assert history.skip_fault("never:1") is None
    assert history.commit(MODEL, 0, 4, [put("a", 2, 1)], fault=Fault(5, "e5", "boom"))
    skipped = history.skip_fault(MODEL)
    assert skipped is not None and (skipped.state, skipped.fault_position) == (FAULTED, 5)
    status = history.status(MODEL)
    assert status is not None and (status.checkpoint, status.state) == (5, ACTIVE)
    assert status.fault_position is None
    assert history.skip_fault(MODEL) is None  # a second skip finds nothing to skip
    assert history.commit(MODEL, 5, 6, [put("a", 6, 2)])


def test_a_skip_that_lost_the_race_changes_nothing(
    history: HistoryStore, store: EventStore
) -> None:
    """A retry came first in the same transaction: the skip sees it and returns None, so
    its caller can raise and take its audit event back."""
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, 4, [], fault=Fault(5, "e5", "boom"))
    with pytest.raises(LookupError), store.transaction() as unit:
        assert history.change_state(MODEL, ACTIVE, only_from=[FAULTED], within=unit)
        unit.append_to_stream("$audit", [NewEvent("ProjectionEventSkipped", {})])
        if history.skip_fault(MODEL, within=unit) is None:
            raise LookupError("retried meanwhile")
    status = history.status(MODEL)
    assert status is not None and (status.state, status.fault_position) == (FAULTED, 5)
    assert list(store.read()) == []


def test_retain_deletes_versions_that_ended_before_a_position(history: HistoryStore) -> None:
    history.ensure("tally", 1)
    changes = [put("a", 1, 1), put("a", 3, 2), put("b", 4, 1), Change("b", 6, None), put("a", 6, 3)]
    assert history.commit(MODEL, 0, 6, changes)
    assert history.retain(MODEL, 5) == 1  # a@[1,3); a@[3,6) and b@[4,6) are valid at 5
    assert history.status(MODEL).history_from == 5  # type: ignore[union-attr]
    assert history.versions_of(MODEL, "a") == [(3, 6, 2), (6, CURRENT, 3)]
    assert history.retain(MODEL, 6) == 2
    assert history.retain(MODEL, 2) == 0  # history_from never goes back
    assert history.status(MODEL).history_from == 6  # type: ignore[union-attr]
    assert stored(history) == [("a", 3)] and history.documents_at(MODEL, 6) == {"a": 3}


def test_a_key_deleted_and_created_again_reads_right_at_every_position(
    history: HistoryStore,
) -> None:
    """Deletes across and within batches, a delete and a put at one position, a delete
    repeated: the state at each position is the fold's."""
    history.ensure("tally", 1)
    batches = [
        [put("a", 1, 1), Change("a", 2, None), put("a", 3, 2)],
        [Change("a", 4, None), Change("a", 5, None), put("b", 5, 1)],
        [Change("a", 6, None), put("a", 6, 3), Change("b", 7, None)],
        [put("a", 8, 4), put("b", 9, 2)],
    ]
    checkpoint = 0
    for batch in batches:
        assert history.commit(MODEL, checkpoint, batch[-1].position, batch)
        checkpoint = batch[-1].position
    expected_a = [None, 1, None, 2, None, None, 3, 3, 4, 4]
    expected_b = [None, None, None, None, None, 1, 1, None, None, 2]
    for position in range(10):
        state = fold(batches, position)
        assert history.documents_at(MODEL, position) == state
        assert [state.get("a"), state.get("b")] == [expected_a[position], expected_b[position]]
        assert history.document_at(MODEL, "a", position) == expected_a[position]
        assert history.document_at(MODEL, "b", position) == expected_b[position]
    assert history.versions_of(MODEL, "a") == [(1, 2, 1), (3, 4, 2), (6, 8, 3), (8, CURRENT, 4)]
    assert history.versions_of(MODEL, "b") == [(5, 7, 1), (9, CURRENT, 2)]
    assert history.versions(MODEL) == 6  # documents; a deletion is no version
    assert history.current_keys(MODEL, limit=5) == {"a", "b"}
    assert history.commit(MODEL, 9, 10, [Change("a", 10, None)])
    assert history.current_doc(MODEL, "a") is None and history.document_at(MODEL, "a") is None
    assert history.current_keys(MODEL, limit=5) == {"b"}
    assert stored(history) == [("b", 2)]
    assert history.versions_of(MODEL, "a")[-1] == (8, 10, 4)


def test_retain_forgets_deletions_before_a_position_and_keeps_later_ones(
    history: HistoryStore,
) -> None:
    history.ensure("tally", 1)
    changes = [
        put("a", 1, 1),
        Change("a", 2, None),  # a is absent from 2 to 4
        put("a", 5, 2),
        put("b", 1, 1),
        Change("b", 3, None),  # b is gone for good from 3
        put("c", 1, 1),
        Change("c", 7, None),  # after the retained position: kept
    ]
    changes.sort(key=lambda change: change.position)
    assert history.commit(MODEL, 0, 8, changes)
    before = {position: history.documents_at(MODEL, position) for position in range(4, 9)}
    assert history.retain(MODEL, 4) == 2  # a@[1,2) and b@[1,3)
    for position in range(4, 9):
        assert history.documents_at(MODEL, position) == before[position]
    assert history.versions_of(MODEL, "a") == [(5, CURRENT, 2)]
    assert history.versions_of(MODEL, "b") == []
    assert history.versions_of(MODEL, "c") == [(1, 7, 1)]
    assert history.document_at(MODEL, "c", 8) is None and history.document_at(MODEL, "c", 6) == 1
    assert history.versions(MODEL) == 2
    assert history.retain(MODEL, 8) == 1  # c@[1,7)
    assert history.documents_at(MODEL, 8) == {"a": 2} and history.versions(MODEL) == 1


# -- leases ---------------------------------------------------------------------------------


def test_leases_are_held_renewed_refused_taken_over_and_released(history: HistoryStore) -> None:
    assert not history.acquire_lease(MODEL, "worker-a", seconds=60)  # no such model
    history.ensure("tally", 1)
    assert history.acquire_lease(MODEL, "worker-a", seconds=60)
    first = history.status(MODEL).lease_expires  # type: ignore[union-attr]
    assert history.acquire_lease(MODEL, "worker-a", seconds=120)  # renewed by its owner
    assert history.status(MODEL).lease_expires > first  # type: ignore[union-attr]
    assert not history.acquire_lease(MODEL, "worker-b", seconds=60)
    history.release_lease(MODEL, "worker-b")  # not the owner: nothing happens
    assert history.status(MODEL).lease_owner == "worker-a"  # type: ignore[union-attr]
    history.release_lease(MODEL, "worker-a")
    status = history.status(MODEL)
    assert status is not None and (status.lease_owner, status.lease_expires) == (None, 0)
    assert history.acquire_lease(MODEL, "worker-b", seconds=-1)  # expired as it is taken
    assert history.acquire_lease(MODEL, "worker-a", seconds=60)  # so it is taken over
    assert history.status(MODEL).lease_owner == "worker-a"  # type: ignore[union-attr]


# -- runs -----------------------------------------------------------------------------------


def run(model: str, n: int, worker: str | None = "w") -> RunRecord:
    return RunRecord(model, 1000 + n, 10, n, n + 1, 1, "ok", None, worker)


def test_runs_newest_first_and_trimmed_per_model(store: EventStore) -> None:
    history = open_history(store, keep_runs=3)
    assert history is not None and history.keep_runs == 3
    for n in range(6):
        history.record_run(run(MODEL, n))
        if n % 2:
            history.record_run(run("other:1", n, worker=None))
    assert [r.from_position for r in history.runs(MODEL)] == [5, 4, 3]
    assert history.runs(MODEL)[0] == run(MODEL, 5)
    assert [r.from_position for r in history.runs("other:1")] == [5, 3, 1]
    assert [(r.model, r.from_position) for r in history.runs(limit=4)] == [
        ("other:1", 5),
        (MODEL, 5),
        (MODEL, 4),
        ("other:1", 3),
    ]
    assert history.runs("never:1") == []


# -- within the caller's transaction --------------------------------------------------------

#: An operator action made in a transaction, and what shows that it happened.
Action = Callable[[HistoryStore, Any], object]
ACTIONS: dict[str, tuple[Action, Callable[[HistoryStore], bool]]] = {
    "ensure": (
        lambda h, unit: h.ensure("fresh", 1, within=unit),
        lambda h: h.status("fresh:1") is not None,
    ),
    "reset": (
        lambda h, unit: h.reset(MODEL, within=unit),
        lambda h: h.versions(MODEL) == 0,
    ),
    "retire": (
        lambda h, unit: h.reset(MODEL, state=RETIRED, within=unit),
        lambda h: h.status(MODEL).state == RETIRED,  # type: ignore[union-attr]
    ),
    "change_state": (
        lambda h, unit: h.change_state(MODEL, ACTIVE, only_from=[FAULTED], within=unit),
        lambda h: h.status(MODEL).state == ACTIVE,  # type: ignore[union-attr]
    ),
    "skip_fault": (
        lambda h, unit: h.skip_fault(MODEL, within=unit),
        lambda h: h.status(MODEL).checkpoint == 3,  # type: ignore[union-attr]
    ),
    "retain": (
        lambda h, unit: h.retain(MODEL, 3, within=unit),
        lambda h: h.versions(MODEL) == 1,
    ),
    "acquire_lease": (
        lambda h, unit: h.acquire_lease(MODEL, "worker-b", seconds=60, within=unit),
        lambda h: h.status(MODEL).lease_owner == "worker-b",  # type: ignore[union-attr]
    ),
    "release_lease": (
        lambda h, unit: h.release_lease(MODEL, "worker-a", within=unit),
        lambda h: h.status(MODEL).lease_owner is None,  # type: ignore[union-attr]
    ),
}


def faulted_model(history: HistoryStore) -> None:
    """Two versions of "a" (the first ended at 2), faulted at 3, leased to worker-a (its
    lease already expired, so another worker may take it)."""
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, 2, [put("a", 1, 1), put("a", 2, 2)], fault=Fault(3, "e", "x"))
    assert history.acquire_lease(MODEL, "worker-a", seconds=-1)


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_within_a_transaction_commits_with_its_audit_event(
    history: HistoryStore, store: EventStore, action: str
) -> None:
    faulted_model(history)
    change, happened = ACTIONS[action]
    assert not happened(history)
    with store.transaction() as unit:
        change(history, unit)
        unit.append_to_stream("$audit", [NewEvent("Operated", {"action": action})])
    assert happened(history)
    assert [e.data for e in store.read()] == [{"action": action}]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_within_a_transaction_that_raises_is_taken_back(
    history: HistoryStore, store: EventStore, action: str
) -> None:
    faulted_model(history)
    before = (history.statuses(), history.versions_of(MODEL, "a"))
    change, happened = ACTIONS[action]
    with pytest.raises(RuntimeError, match="crash"), store.transaction() as unit:
        change(history, unit)
        unit.append_to_stream("$audit", [NewEvent("Operated", {"action": action})])
        raise RuntimeError("crash after the change and its audit")
    assert not happened(history)
    assert (history.statuses(), history.versions_of(MODEL, "a")) == before
    assert list(store.read()) == []


def test_a_change_within_a_transaction_shows_in_it_before_the_commit(
    history: HistoryStore, store: EventStore
) -> None:
    with store.transaction() as unit:
        status = history.ensure("fresh", 1, within=unit)
        assert status.checkpoint == 0 and status.state == ACTIVE
        assert history.change_state("fresh:1", PAUSED, only_from=[ACTIVE], within=unit)
    assert history.status("fresh:1").state == PAUSED  # type: ignore[union-attr]


def test_a_transaction_of_another_store_is_refused(backend: str, history: HistoryStore) -> None:
    if backend == "memory":
        pytest.skip("the in-memory history joins any transaction of its store's kind")
    other = InMemoryEventStore()
    with pytest.raises(ValueError), other.transaction() as unit:
        history.ensure("tally", 1, within=unit)


# -- older stores ---------------------------------------------------------------------------


def test_an_older_store_opened_read_only_keeps_no_read_models(tmp_path: Path) -> None:
    """Before schema 8 the history had another layout (valid_to stored, updated by each
    commit): a read-only open (not migrated) keeps no read models, time travel folds from
    the log there; before schema 4 there were none. A writable open migrates it (see
    test_history_migration.py)."""
    path = tmp_path / "store.db"
    store = SqlEventStore.open(path)
    history = open_history(store)
    assert history is not None
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, 2, [put("a", 1, 1), put("b", 2, 2)])
    store.close()
    with sqlite3.connect(path) as raw:
        for statement in schema_7_ddl("sqlite"):
            raw.execute(statement)
    raw.close()
    for version in ("7", "4", "3"):
        with sqlite3.connect(path) as raw:
            raw.execute(
                "UPDATE eventscope_meta SET value = ? WHERE key = 'schema_version'", (version,)
            )
        raw.close()
        reader = SqlEventStore.open(path, read_only=True)
        assert reader.schema_version == int(version) and open_history(reader) is None
        with pytest.raises(OlderSchema, match="after a migration to 8"):
            SqlHistoryStore(reader)
        reader.close()


def test_postgres_keeps_code_point_order_under_a_language_collation(pg_location: str) -> None:
    """PostgreSQL sorts by the column's collation unless told otherwise: a database whose
    default is a language's (here the key column's, set to ICU English) still pages in
    code-point order, as SQLite and memory do."""
    store = SqlEventStore.open(pg_location)
    with store.write_transaction() as cursor:
        cursor.execute(
            'ALTER TABLE read_model_docs ALTER COLUMN key TYPE VARCHAR COLLATE "en-x-icu"'
        )
    history = open_history(store)
    assert history is not None
    history.ensure("tally", 1)
    assert history.commit(MODEL, 0, 1, [put(key, 1, key) for key in KEYS])
    for position in (None, 1):
        for page_size in (2, 1000):
            found = history.iter_documents_at(MODEL, position, page_size=page_size)
            assert [key for key, _ in found] == sorted(KEYS)
    assert [key for key, _ in history.iter_documents_at(MODEL, after_key="a")] == [
        key for key in sorted(KEYS) if key > "a"
    ]
    store.close()
