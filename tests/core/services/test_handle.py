"""The store handle: a swap drains what runs on the old store first; close is final."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import Cancelled, StoreBusy, StoreClosed, StoreReadOnly, StoreUnusable
from core.events import NewEvent
from core.services.handle import StoreHandle
from core.store import EventStore, SqlEventStore
from core.workspace import Workspace

#: A statement that never ends by itself: only an interrupt stops it.
ENDLESS = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(3600)",
}


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = str(tmp_path / "store.db")
    else:
        path = str(request.getfixturevalue("pg_location"))
    with SqlEventStore.open(path) as store:
        store.append_to_stream("order-1", [NewEvent("Placed", {"n": 1})])
    return path


@pytest.fixture
def handle(location: str) -> Iterator[StoreHandle]:
    opened = StoreHandle(SqlEventStore.open(location, read_only=True), drain_seconds=20)
    yield opened
    opened.close()


class EndlessQuery(threading.Thread):
    """Runs a statement that never ends on the handle's store, and records how it ended
    and when."""

    def __init__(self, handle: StoreHandle) -> None:
        super().__init__(daemon=True)
        self.handle = handle
        self.running = threading.Event()
        self.outcome: BaseException | None = None
        self.ended_at = 0.0
        self.store: EventStore | None = None

    def run(self) -> None:
        with self.handle.use() as opened:
            self.store = opened.store
            assert isinstance(opened.store, SqlEventStore)
            try:
                with opened.store.read_transaction() as cursor:
                    self.running.set()
                    cursor.execute(ENDLESS[opened.store.dialect])
            except BaseException as error:  # noted while the operation still holds the store
                self.outcome = error
            finally:
                self.ended_at = time.monotonic()


def started(handle: StoreHandle) -> EndlessQuery:
    query = EndlessQuery(handle)
    query.start()
    assert query.running.wait(10)
    time.sleep(0.2)  # inside the statement now (the statement itself never ends)
    return query


def test_a_switch_stops_a_running_query_before_the_new_store_is_used(
    handle: StoreHandle,
) -> None:
    query = started(handle)
    first_use: list[float] = []

    def prepare(store: EventStore) -> None:
        store.append_to_stream("$audit", [NewEvent("WritableModeEntered", {})])

    handle.switch(read_only=False, prepare=prepare)
    assert query.outcome is not None  # stopped by the time the switch returned
    with handle.use() as opened:
        first_use.append(time.monotonic())
        opened.store.append_to_stream("order-1", [NewEvent("Paid", {})])
    query.join(5)
    assert not query.is_alive()
    assert isinstance(query.outcome, Cancelled)  # stopped, not finished
    assert query.ended_at < first_use[0]
    assert query.store is not None
    with pytest.raises(StoreClosed):  # the old store was closed after the drain
        query.store.head_position()
    assert not handle.read_only
    with handle.use() as opened:
        assert [e.type for e in opened.store.read()] == ["Placed", "WritableModeEntered", "Paid"]


def test_an_operation_asked_for_during_a_swap_runs_on_the_new_store(
    handle: StoreHandle,
) -> None:
    query = started(handle)
    inside_prepare = threading.Event()
    release = threading.Event()
    seen: list[bool] = []
    stopped_before: list[bool] = []

    def prepare(store: EventStore) -> None:
        inside_prepare.set()
        release.wait(10)

    def later() -> None:
        with handle.use() as opened:
            seen.append(opened.store.read_only)
            stopped_before.append(query.outcome is not None)

    switcher = threading.Thread(target=lambda: handle.switch(read_only=False, prepare=prepare))
    switcher.start()
    assert inside_prepare.wait(10)
    asker = threading.Thread(target=later)
    release.set()
    time.sleep(0.05)
    asker.start()
    switcher.join(10)
    asker.join(10)
    query.join(5)
    assert seen == [False]  # the writable store, never the one being drained
    assert stopped_before == [True]  # the old query had stopped when it got the new one
    assert isinstance(query.outcome, Cancelled)


def test_a_drain_that_times_out_changes_nothing(location: str) -> None:
    handle = StoreHandle(SqlEventStore.open(location, read_only=True), drain_seconds=0.3)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:  # an operation between statements: nothing to interrupt
        with handle.use():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        with pytest.raises(StoreBusy, match="1 operation"):
            handle.switch(read_only=False)
        assert handle.read_only
        with handle.use() as opened:  # the old store goes on (resumed after the interrupt)
            assert opened.store.head_position() == 1
    finally:
        release.set()
        holder.join(10)
    handle.switch(read_only=False)
    assert not handle.read_only
    handle.close()


def test_a_failed_prepare_keeps_the_old_store(handle: StoreHandle) -> None:
    opened: list[EventStore] = []

    def refuse(store: EventStore) -> None:
        opened.append(store)
        raise StoreReadOnly("refused by the test")

    with pytest.raises(StoreReadOnly, match="refused"):
        handle.switch(read_only=False, prepare=refuse)
    assert handle.read_only
    with pytest.raises(StoreClosed):
        opened[0].head_position()  # the new store was closed
    with handle.use() as current:
        assert current.store.head_position() == 1


def test_a_store_that_cannot_be_reopened_keeps_the_old_one(handle: StoreHandle) -> None:
    def cannot(store: EventStore, *, read_only: bool) -> EventStore:
        raise StoreUnusable("gone")

    with pytest.raises(StoreUnusable):
        handle.switch(read_only=False, reopen=cannot)
    with handle.use() as opened:
        assert opened.store.read_only and opened.store.head_position() == 1


def test_close_stops_a_running_query_and_is_final(location: str) -> None:
    workspace = Workspace(SqlEventStore.open(location))
    query = started(workspace.handle)
    workspace.close()
    query.join(5)
    assert isinstance(query.outcome, Cancelled)
    with pytest.raises(StoreClosed):
        workspace.events.head_position()
    with pytest.raises(StoreClosed):
        list(workspace.events.read())
    with pytest.raises(StoreClosed):
        workspace.writing.append("order-1", "Paid", {})
    with pytest.raises(StoreClosed):
        workspace.handle.switch(read_only=True)
    workspace.close()  # again: nothing


def test_swapping_from_inside_an_operation_is_refused(handle: StoreHandle) -> None:
    with handle.use(), pytest.raises(RuntimeError, match="inside one of its operations"):
        handle.switch(read_only=False)


def test_no_service_keeps_the_store_across_a_switch(location: str) -> None:
    """Every service answers from the new store after a switch (none kept the old one)."""
    workspace = Workspace(SqlEventStore.open(location, read_only=True))
    try:
        reading = workspace.events.read()  # a generator made before the switch
        workspace.writing.set_writable(True)
        workspace.writing.append("order-1", "Paid", {})
        types = [e.type for e in reading]
        assert types == ["Placed", "WritableModeEntered", "Paid"]
        assert workspace.events.head_position() == 3
        workspace.writing.set_writable(False)
        with pytest.raises(StoreReadOnly):
            workspace.writing.append("order-1", "Shipped", {})
        audit: Any = [e.type for e in workspace.events.read() if e.stream_id == "$audit"]
        assert audit == ["WritableModeEntered", "WritableModeLeft"]
    finally:
        workspace.close()
