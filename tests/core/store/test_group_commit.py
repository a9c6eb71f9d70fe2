"""Group commit: appends from several threads at once share one transaction, and each
still succeeds or fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from core.errors import DuplicateEventId, WrongExpectedVersion
from core.events import NewEvent, new_event_id
from core.store import EventFilter, SqlEventStore

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQL stores only: the in-memory store has no transactions to share."""
    return str(request.param)


def _queued(store: SqlEventStore) -> int:
    appends = store._appends
    with appends._queue_lock:
        return len(appends._queue)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_a_group_commits_together_and_each_append_fails_alone(make_store: Any) -> None:
    store = make_store()
    assert isinstance(store, SqlEventStore)
    stored_id = new_event_id()
    store.append_to_stream("taken", [NewEvent("A", {"n": 0}, event_id=stored_id)])
    store.append_to_stream("existing", [NewEvent("A", {"n": 0})])
    outcomes: dict[str, Any] = {}

    def append(name: str, stream_id: str, events: list[NewEvent], expected: Any) -> None:
        try:
            outcomes[name] = store.append_to_stream(stream_id, events, expected)
        except Exception as error:  # the outcome the test compares
            outcomes[name] = error

    appends = {
        # The first one leads: it commits alone while the others queue behind it.
        "leader": ("s-lead", [NewEvent("A", {"n": 1})], "any"),
        "good-1": ("s-1", [NewEvent("A", {"n": 1}), NewEvent("A", {"n": 2})], "no_stream"),
        "wrong-version": ("existing", [NewEvent("A", {"n": 9})], 5),
        "good-2": ("existing", [NewEvent("A", {"n": 1})], 0),
        # An event id stored in another stream: this append alone is refused.
        "stolen-id": (
            "s-3",
            [NewEvent("A", {"n": 1}), NewEvent("B", {}, event_id=stored_id)],
            "any",
        ),
        "good-3": ("s-4", [NewEvent("A", {"n": 1})], "any"),
    }
    threads = []
    with store.transaction():  # the writer is busy: the appends queue up
        for name, (stream_id, events, expected) in appends.items():
            thread = threading.Thread(target=append, args=(name, stream_id, events, expected))
            thread.start()
            threads.append(thread)
            if name == "leader":  # it took its group (itself) and waits for the writer
                _wait_for(lambda: store._appends._leading and _queued(store) == 0, "the leader")
        _wait_for(lambda: _queued(store) == len(appends) - 1, "the queue")
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)

    assert isinstance(outcomes["wrong-version"], WrongExpectedVersion)
    assert isinstance(outcomes["stolen-id"], DuplicateEventId)
    committed = {name: outcomes[name] for name in ("leader", "good-1", "good-2", "good-3")}
    for name, result in committed.items():
        assert not isinstance(result, Exception), f"{name}: {result!r}"
    # Gapless, commit-ordered positions: the leader's, then the group's in queue order.
    assert committed["leader"].first_position == 3
    assert [committed[name].first_position for name in ("good-1", "good-2", "good-3")] == [4, 6, 7]
    stored = [(e.stream_id, e.version, e.data) for e in store.read(EventFilter(from_position=3))]
    assert stored == [
        ("s-lead", 0, {"n": 1}),
        ("s-1", 0, {"n": 1}),
        ("s-1", 1, {"n": 2}),
        ("existing", 1, {"n": 1}),
        ("s-4", 0, {"n": 1}),
    ]
    assert store.stream_info("s-3") is None  # nothing of the refused append was kept
    assert store.check().ok


def test_many_threads_appending_lose_nothing(make_store: Any) -> None:
    store = make_store()
    threads_count, per_thread = 6, 60
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(per_thread):
                stream_id = f"w{worker}-{n % 3}"
                info = store.stream_info(stream_id)
                expected = "no_stream" if info is None else info.version
                store.append_to_stream(stream_id, [NewEvent("A", {"w": worker, "n": n})], expected)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    events = list(store.read())
    assert [e.position for e in events] == list(range(1, threads_count * per_thread + 1))
    seen = sorted((e.data["w"], e.data["n"]) for e in events)
    assert seen == [(w, n) for w in range(threads_count) for n in range(per_thread)]
    assert store.check().ok


class _Stop(Exception):
    """Raised by the test's alarm in the main thread, as Ctrl+C would be."""


def test_an_append_interrupted_while_it_waits_is_dropped_and_the_writer_goes_on(
    make_store: Any,
) -> None:
    import signal

    store = make_store()
    results: list[Any] = []
    hold = threading.Event()
    held = threading.Event()

    def holder() -> None:
        with store.transaction():
            held.set()
            hold.wait(10)

    def leader() -> None:
        results.append(store.append_to_stream("s-lead", [NewEvent("A", {})]))

    threads = [threading.Thread(target=holder), threading.Thread(target=leader)]
    threads[0].start()
    held.wait(10)
    threads[1].start()
    _wait_for(lambda: store._appends._leading and _queued(store) == 0, "the leader")

    def stop(signum: int, frame: Any) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(_Stop):
            store.append_to_stream("s-interrupted", [NewEvent("A", {})])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _queued(store) == 0  # taken back before any group took it
    hold.set()
    for thread in threads:
        thread.join(timeout=10)
    assert [result.stream_id for result in results] == ["s-lead"]
    after: list[Any] = []  # in a thread: a writer left stuck would hang the test
    late = threading.Thread(
        target=lambda: after.append(store.append_to_stream("s-2", [NewEvent("A", {})]))
    )
    late.start()
    late.join(timeout=10)
    assert [result.first_position for result in after] == [2]
    assert store.stream_info("s-interrupted") is None


def test_the_lead_handed_to_an_interrupted_append_is_handed_on(make_store: Any) -> None:
    from core.events import ANY
    from core.store.sql.appends import _Append

    store = make_store()
    appends = store._appends
    interrupted = _Append("s-1", [], ANY)
    waiting = _Append("s-2", [], ANY)
    waiting.done = threading.Event()
    with appends._queue_lock:  # a leader has just handed the lead to `interrupted`
        appends._leading = True
        appends._queue = [interrupted, waiting]
        interrupted.leads = True
    appends._abandon(interrupted)
    assert appends._queue == [waiting]
    assert waiting.leads and waiting.done.is_set()
    assert appends._leading  # `waiting` leads now


def test_a_batched_group_chains_versions_and_decides_failed_expectations_alone(
    make_store: Any,
) -> None:
    store = make_store()
    resent = [NewEvent("A", {"n": 0}), NewEvent("A", {"n": 1})]
    store.append_to_stream("existing", resent)  # versions 0 and 1, positions 1 and 2
    outcomes: dict[str, Any] = {}

    def append(name: str, stream_id: str, events: list[NewEvent], expected: Any) -> None:
        try:
            outcomes[name] = store.append_to_stream(stream_id, events, expected)
        except Exception as error:  # the outcome the test compares
            outcomes[name] = error

    appends = {
        "leader": ("s-lead", [NewEvent("A", {})], "any"),
        "new-1": ("s-new", [NewEvent("A", {"n": 1})], "no_stream"),
        "new-2": ("s-new", [NewEvent("A", {"n": 2}), NewEvent("A", {"n": 3})], 0),
        "stale": ("s-new", [NewEvent("A", {"n": 9})], "no_stream"),
        "resent": ("existing", resent, "no_stream"),  # idempotent: already there
        "next": ("existing", [NewEvent("A", {"n": 2})], 1),
    }
    threads = []
    with store.transaction():
        for name, (stream_id, events, expected) in appends.items():
            thread = threading.Thread(target=append, args=(name, stream_id, events, expected))
            thread.start()
            threads.append(thread)
            if name == "leader":
                _wait_for(lambda: store._appends._leading and _queued(store) == 0, "the leader")
        _wait_for(lambda: _queued(store) == len(appends) - 1, "the queue")
    for thread in threads:
        thread.join(timeout=10)

    assert isinstance(outcomes["stale"], WrongExpectedVersion)
    again = outcomes["resent"]
    assert (again.duplicate, again.first_position, again.last_position) == (True, 1, 2)
    placed = {
        name: (outcomes[name].first_position, outcomes[name].last_position, outcomes[name].version)
        for name in ("leader", "new-1", "new-2", "next")
    }
    assert placed == {
        "leader": (3, 3, 0),
        "new-1": (4, 4, 0),
        "new-2": (5, 6, 2),
        "next": (7, 7, 2),
    }
    stored = [(e.stream_id, e.version, e.data) for e in store.read(EventFilter(from_position=4))]
    assert stored == [
        ("s-new", 0, {"n": 1}),
        ("s-new", 1, {"n": 2}),
        ("s-new", 2, {"n": 3}),
        ("existing", 2, {"n": 2}),
    ]
    assert store.stream_info("s-new").version == 2
    assert store.check().ok
