"""The store contract for interrupt() and resume(): draining a store before it is swapped.

A statement running when the store is interrupted stops mid-statement (SQLite's progress
handler, PostgreSQL's query cancel) and its thread gets Cancelled; every operation
started afterwards fails at once, until resume().
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.errors import Cancelled
from core.events import NewEvent
from core.store import EventFilter, EventStore, SqlEventStore
from tests.core.store.test_close import operations

#: How long a test waits for a thread to reach its statement or to stop (a deadline
#: against hanging, never a measurement).
DEADLINE = 30.0


def test_an_interrupted_store_refuses_new_work_until_resumed(store: EventStore) -> None:
    store.append_to_stream("s-1", [NewEvent("A", {"x": 1})])
    store.interrupt()
    for operation in operations(store).values():
        with pytest.raises(Cancelled):
            operation()
    store.resume()
    for operation in operations(store).values():
        operation()
    assert [event.type for event in store.read_stream("s-1")][:2] == ["A", "B"]
    assert store.check().ok


def test_an_interrupt_stops_a_read_between_pages(store: EventStore) -> None:
    if isinstance(store, SqlEventStore):
        store.page_size = 10
    store.append_to_stream("s-1", [NewEvent("Happened", {"n": n}) for n in range(2500)])
    seen = 0
    with pytest.raises(Cancelled):
        for _event in store.read(EventFilter(text="n")):
            seen += 1
            if seen == 5:
                store.interrupt()
    # SQL: the rest of the page already fetched; memory: it checks every 1,000 events.
    assert seen == (10 if isinstance(store, SqlEventStore) else 1000)
    store.resume()
    assert store.count(EventFilter(text="n")) == 2500


# -- statements interrupted while they run ------------------------------------------------


def _long_sqlite_statement(cursor: Any, started: threading.Event) -> None:
    """A statement that would run for minutes; it sets ``started`` once it is running."""

    def running(n: int) -> int:
        if n == 1000:
            started.set()
        return 1

    cursor.connection.create_function("eventscope_test_running", 1, running)
    cursor.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT count(*) FROM (SELECT i FROM n LIMIT 10000000000) "
        "WHERE eventscope_test_running(i) = 1"
    )
    cursor.fetchall()


def _long_postgres_statement(url: str) -> Callable[[Any, threading.Event], None]:
    """A pg_sleep that sets ``started`` once the server reports it active (watched from
    a separate connection, since the statement blocks its own)."""
    tag = uuid.uuid4().hex
    sql = f"SELECT pg_sleep(60) /* {tag} */"

    def run(cursor: Any, started: threading.Event) -> None:
        watcher = threading.Thread(target=_watch_for, args=(url, sql, started), daemon=True)
        watcher.start()
        cursor.execute(sql)
        cursor.fetchall()

    return run


def _watch_for(url: str, sql: str, started: threading.Event) -> None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://").split("?", 1)[0]
    with psycopg.connect(conninfo, autocommit=True) as watcher:
        for _ in range(3000):
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = %s",
                (sql,),
            ).fetchone()
            if row is not None and row[0]:
                started.set()
                return
            watcher.execute("SELECT pg_sleep(0.01)")


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SqlEventStore, Callable[[Any, threading.Event], None]]]:
    """A writable SQL store and a long statement to run on one of its cursors."""
    if request.param == "sqlite":
        store = SqlEventStore.open(tmp_path / "store.db")
        yield store, _long_sqlite_statement
    else:
        url = str(request.getfixturevalue("pg_location"))
        store = SqlEventStore.open(url)
        yield store, _long_postgres_statement(url)
    store.close()


def _run_in_thread(
    transaction: Callable[[], AbstractContextManager[Any]],
    statement: Callable[[Any, threading.Event], None],
) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    started = threading.Event()
    raised: list[BaseException] = []

    def work() -> None:
        try:
            with transaction() as cursor:
                statement(cursor, started)
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    return thread, started, raised


@pytest.mark.parametrize("transaction", ["read_transaction", "write_transaction"])
def test_interrupt_stops_a_running_statement_with_cancelled(
    sql_store: tuple[SqlEventStore, Callable[[Any, threading.Event], None]], transaction: str
) -> None:
    store, statement = sql_store
    thread, started, raised = _run_in_thread(getattr(store, transaction), statement)
    assert started.wait(DEADLINE), "the statement never started"
    store.interrupt()  # from this thread, while the statement runs on the other
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], Cancelled), raised
    cause = raised[0].__cause__
    if store.dialect == "sqlite":
        assert isinstance(cause, sqlite3.OperationalError) and "interrupted" in str(cause)
    else:
        assert isinstance(cause, psycopg.errors.QueryCanceled)
    with pytest.raises(Cancelled):
        store.head_position()
    with pytest.raises(Cancelled):
        store.append_to_stream("s-1", [NewEvent("A")])
    store.resume()
    store.append_to_stream("s-1", [NewEvent("A")])
    assert store.head_position() == 1
    assert [event.type for event in store.read_all()] == ["A"]


def test_close_interrupts_a_running_statement(
    sql_store: tuple[SqlEventStore, Callable[[Any, threading.Event], None]],
) -> None:
    store, statement = sql_store
    thread, started, raised = _run_in_thread(store.read_transaction, statement)
    assert started.wait(DEADLINE), "the statement never started"
    store.close()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], Cancelled), raised
