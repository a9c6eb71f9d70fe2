"""The store contract for payload search and correlation lookups, and the search index.

Every backend must give the same answers whether the search index covers none, part
or all of the log: the SQL stores join their index tables for the covered positions
and scan the rest. Cancellation and progress (core.jobs) are tested here too, since
the long reads they exist for are searches.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

import core.store.sql.reads as reads_module
from core.errors import Cancelled, StoreReadOnly
from core.events import NewEvent
from core.jobs import Job
from core.store import EventFilter, EventStore, SqlEventStore
from core.store.compiled import CompiledStatement

PAYLOADS: list[tuple[str, dict[str, object], str | None]] = [
    ("order-1", {"sku": "SKU-4242", "note": "50% off"}, "flow-a"),  # 1
    ("order-2", {"sku": "sku-1042", "colour": "Mauve"}, "flow-b"),  # 2
    ("cart-1", {"sku": "KETTLE", "lid": True}, None),  # 3
    ("order-1", {"title": "Café crème", "city": "ÜBERLINGEN"}, "flow-a"),  # 4
    ("order-3", {"sku": "tea_pot", "qty": 12}, "flow-b"),  # 5
    ("order-2", {"text": "kettle-lid spare", "n": 4242}, "flow-a"),  # 6
    ("cart-2", {"nested": {"deep": ["red", "Kettle"]}}, 42),  # 7 (a number is not an id)
]

# query -> positions, with the reason in a comment.
SEARCHES: list[tuple[str, list[int]]] = [
    ("kettle", [3, 6, 7]),  # any case, nested values
    ("KETTLE lid", [3, 6]),  # every word, anywhere in the payload (keys too)
    ("SKU-4242", [1]),  # punctuation separates words: sku, 4242
    ("sku 42", []),  # whole words
    ("sku 42*", [1]),  # a prefix: SKU-4242, not sku-1042
    ("42*", [1, 6]),  # "4242" and 4242; "1042" does not start with 42
    ("ket*", [3, 6, 7]),
    ("ket", []),
    ("ettle*", []),  # a prefix starts a word
    ("tea_pot", [5]),  # "_" separates words: tea, pot
    ("pot", [5]),
    ("50%", [1]),  # punctuation is not searched
    ("café", [4]),
    ("CAFÉ CRÈME", [4]),  # case folding beyond ASCII
    ("über", []),
    ("über*", [4]),
    ("überlingen", [4]),
    ("cafe", []),  # accents are kept
    ("mauve sku 1042", [2]),
    ("nothing-like-this", []),
]


def fill(store: EventStore) -> None:
    for stream_id, data, correlation in PAYLOADS:
        metadata = {"correlation_id": correlation} if correlation is not None else {}
        store.append_to_stream(stream_id, [NewEvent("Happened", data, metadata)])


def positions(store: EventStore, where: EventFilter, **options: object) -> list[int]:
    return [event.position for event in store.read(where, **options)]  # type: ignore[arg-type]


def index_states(store: EventStore) -> list[str]:
    """The index states to check in turn (``advance_index`` reaches each); memory: one."""
    return ["none", "part", "all"] if isinstance(store, SqlEventStore) else ["all"]


def advance_index(store: EventStore, state: str) -> None:
    if state == "part":
        assert store.update_index(limit=4) == 4
        assert store.indexed_position() == 4
    elif state == "all":
        store.update_index()
        assert store.indexed_position() == store.head_position()


def test_payload_search_is_the_same_scanned_half_indexed_and_indexed(store: EventStore) -> None:
    fill(store)
    for state in index_states(store):
        advance_index(store, state)
        for query, expected in SEARCHES:
            where = EventFilter(text=query)
            assert positions(store, where) == expected, (state, query)
            assert positions(store, where, backwards=True) == expected[::-1], (state, query)
            assert store.count(where) == len(expected), (state, query)


def test_search_combines_with_the_other_filters_and_pages(store: EventStore) -> None:
    fill(store)
    if isinstance(store, SqlEventStore):
        store.page_size = 1  # every page boundary crosses the index/scan split somewhere
    for state in index_states(store):
        advance_index(store, state)
        kettle = EventFilter(text="kettle")
        assert positions(store, EventFilter(text="kettle", stream_prefix="cart")) == [3, 7]
        assert positions(store, EventFilter(text="kettle", category="order")) == [6]
        assert positions(store, EventFilter(text="sku", from_position=2, to_position=5)) == [
            2,
            3,
            5,
        ]
        assert positions(store, kettle, limit=2) == [3, 6]
        assert positions(store, kettle, backwards=True, limit=2) == [7, 6]
        assert positions(store, EventFilter(text="kettle", from_position=6), backwards=True) == [
            6,
            3,
        ]
        assert positions(store, EventFilter(text="kettle", stream_id="order-2")) == [6]
        assert positions(store, EventFilter(text="kettle", correlation_id="flow-a")) == [6]
        assert store.count(EventFilter(text="sku", to_position=4)) == 3


def test_a_word_the_database_parser_drops_still_narrows_the_search(store: EventStore) -> None:
    """``¾`` is a word to the search (Unicode calls it a number) but PostgreSQL's parser
    drops it: the query must not then match events without it (found by the injection
    study, tests/reliability/injection.py)."""
    store.append_to_stream("n-1", [NewEvent("Noted", {"note": "3 and 1"})])
    store.append_to_stream("n-2", [NewEvent("Noted", {"note": "3 ¾ 1"})])
    for _ in range(2):  # scanned, then indexed
        found = [e.stream_id for e in store.read(EventFilter(text="3 ¾ 1"))]
        assert found == ["n-2"]
        store.update_index()


def test_a_text_without_words_filters_nothing(store: EventStore) -> None:
    fill(store)
    assert positions(store, EventFilter(text=" -%- ")) == list(range(1, 8))


def test_correlation_lookups_are_the_same_in_every_index_state(store: EventStore) -> None:
    fill(store)
    for state in index_states(store):
        advance_index(store, state)
        assert positions(store, EventFilter(correlation_id="flow-a")) == [1, 4, 6], state
        assert positions(store, EventFilter(correlation_id="flow-b"), backwards=True) == [5, 2]
        assert positions(store, EventFilter(correlation_id="42")) == []  # only string ids
        assert store.count(EventFilter(correlation_id="flow-a", to_position=5)) == 2
        assert positions(store, EventFilter(correlation_id="flow-a", stream_id="order-1")) == [1, 4]


def test_the_index_catches_up_in_batches_and_only_once(store: EventStore) -> None:
    if not isinstance(store, SqlEventStore):
        assert store.update_index() == 0
        return
    fill(store)
    assert store.indexed_position() == 0
    assert store.update_index(batch=3) == 7
    assert store.indexed_position() == 7
    assert store.update_index() == 0
    store.append_to_stream("order-9", [NewEvent("Happened", {"sku": "kettle"})])
    assert positions(store, EventFilter(text="kettle")) == [3, 6, 7, 8]  # 8 is scanned
    assert store.update_index() == 1
    assert positions(store, EventFilter(text="kettle")) == [3, 6, 7, 8]  # 8 is indexed


def test_a_read_only_store_searches_but_does_not_index(make_store, backend: str) -> None:  # type: ignore[no-untyped-def]
    if backend == "memory":
        pytest.skip("the in-memory store has no read-only mode")
    writer = make_store()
    fill(writer)
    writer.update_index(limit=2)
    reader = make_store(read_only=True)
    with pytest.raises(StoreReadOnly):
        reader.update_index()
    assert positions(reader, EventFilter(text="kettle")) == [3, 6, 7]
    assert reader.indexed_position() == 2


def test_concurrent_indexers_index_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = SqlEventStore.open(path)
    for n in range(300):
        first.append_to_stream(f"s-{n % 7}", [NewEvent("Happened", {"word": "needle", "n": n})])
    second = SqlEventStore.open(path)
    counts: list[int] = []

    def index(store: SqlEventStore) -> None:
        counts.append(store.update_index(batch=10))

    threads = [threading.Thread(target=index, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 300
    with sqlite3.connect(path) as raw:
        (hits,) = raw.execute(
            "SELECT count(*) FROM event_words WHERE event_words MATCH 'needle'"
        ).fetchone()
    raw.close()
    assert hits == 300
    first.close()
    second.close()


def test_an_indexed_search_on_sqlite_reads_the_index_not_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlEventStore.open(tmp_path / "store.db")
    fill(store)
    store.update_index()
    statements: list[tuple[str, tuple[object, ...]]] = []
    original = CompiledStatement.fetchall

    def fetch(self, cursor, /, **values):  # type: ignore[no-untyped-def]
        statements.append((self.sql, self.arguments(values)))
        return original(self, cursor, **values)

    monkeypatch.setattr(CompiledStatement, "fetchall", fetch)
    assert positions(store, EventFilter(text="kettle")) == [3, 6, 7]
    assert positions(store, EventFilter(text="kettle"), backwards=True) == [7, 6, 3]
    searches = [(sql, args) for sql, args in statements if "event_words MATCH" in sql]
    assert len(searches) == 2, statements
    with sqlite3.connect(tmp_path / "store.db") as raw:
        for sql, args in searches:
            plan = " | ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sql, args))
            assert "VIRTUAL TABLE" in plan, plan
            assert "SCAN events" not in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # rows come in position order
    raw.close()
    store.close()


def test_an_old_store_read_only_is_searched_by_scanning(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqlEventStore.open(path)
    fill(store)
    store.close()
    with sqlite3.connect(path) as raw:
        for table in ("event_words", "event_correlations", "read_models", "read_model_docs"):
            raw.execute(f"DROP TABLE {table}")
        raw.execute("DROP TABLE projection_runs")
        raw.execute("ALTER TABLE events DROP COLUMN checksum")
        raw.execute("DELETE FROM eventscope_meta WHERE key = 'indexed_position'")
        raw.execute("UPDATE eventscope_meta SET value = '2' WHERE key = 'schema_version'")
    raw.close()
    reader = SqlEventStore.open(path, read_only=True)
    assert positions(reader, EventFilter(text="kettle")) == [3, 6, 7]
    assert positions(reader, EventFilter(correlation_id="flow-b")) == [2, 5]
    reader.close()
    writer = SqlEventStore.open(path)  # migrates to 3; the index starts empty
    assert writer.indexed_position() == 0
    assert writer.update_index() == 7
    assert positions(writer, EventFilter(text="kettle")) == [3, 6, 7]
    writer.close()


# -- progress and cancellation -----------------------------------------------------------------


def test_a_scan_reports_progress_window_by_window(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not isinstance(store, SqlEventStore):
        pytest.skip("the in-memory store has no scan windows")
    monkeypatch.setattr(reads_module, "SCAN_WINDOW", 10)
    store.append_to_stream("s-1", [NewEvent("Happened", {"n": n}) for n in range(45)])
    reports: list[tuple[int, int]] = []
    with Job(lambda done, total: reports.append((done, total))).running():
        assert store.count(EventFilter(text="n")) == 45
        found = positions(store, EventFilter(text="n"), backwards=True, limit=12)
    assert found == list(range(45, 33, -1))
    assert reports[:5] == [(0, 45), (10, 45), (20, 45), (30, 45), (40, 45)]  # the count
    assert reports[5:] == [(0, 45), (10, 45)]  # the read stopped once it had 12


def test_a_cancelled_job_stops_a_read_between_pages(store: EventStore) -> None:
    if isinstance(store, SqlEventStore):
        store.page_size = 10
    store.append_to_stream("s-1", [NewEvent("Happened", {"n": n}) for n in range(2500)])
    job = Job()
    seen = 0
    with job.running(), pytest.raises(Cancelled):
        for _event in store.read(EventFilter(text="n")):
            seen += 1
            if seen == 5:
                job.cancel()
    # SQL: the rest of the page already fetched, and no further page; memory: it checks
    # every 1,000 events.
    assert seen == (10 if isinstance(store, SqlEventStore) else 1000)


def test_cancel_interrupts_a_running_sqlite_statement(tmp_path: Path) -> None:
    store = SqlEventStore.open(tmp_path / "store.db")
    job = Job()
    timer = threading.Timer(0.2, job.cancel)
    timer.start()
    with job.running(), pytest.raises(Cancelled) as caught:
        with store._connections.reading() as conn:  # a statement that would run for minutes
            conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                "SELECT count(*) FROM (SELECT i FROM n LIMIT 10000000000)"
            ).scalar()
    timer.join()
    cause = caught.value.__cause__
    assert isinstance(getattr(cause, "orig", cause), sqlite3.OperationalError)
    assert "interrupted" in str(cause)
    assert store.head_position() == 0  # the store is usable afterwards
    store.close()


def test_cancel_interrupts_a_running_postgres_statement(pg_location: str) -> None:
    store = SqlEventStore.open(pg_location)
    job = Job()
    timer = threading.Timer(0.2, job.cancel)
    timer.start()
    with job.running(), pytest.raises(Cancelled) as caught:
        with store._connections.reading() as conn:
            conn.exec_driver_sql("SELECT pg_sleep(60)").scalar()
    timer.join()
    cause = caught.value.__cause__
    assert isinstance(getattr(cause, "orig", cause), psycopg.errors.QueryCanceled)
    assert store.head_position() == 0
    store.close()


def test_a_cancelled_indexer_keeps_the_batches_it_committed(tmp_path: Path) -> None:
    store = SqlEventStore.open(tmp_path / "store.db")
    store.append_to_stream("s-1", [NewEvent("Happened", {"n": n}) for n in range(100)])
    job = Job(lambda done, total: job.cancel() if done >= 30 else None)
    with job.running(), pytest.raises(Cancelled):
        store.update_index(batch=10)
    assert store.indexed_position() == 30
    assert store.update_index() == 70
    store.close()


def test_a_prefix_search_probes_the_near_end_before_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix matching most events fills its page from a short scan; FTS5 would first
    merge every doclist the prefix matches."""
    monkeypatch.setattr(reads_module, "PREFIX_PROBE", 10)
    store = SqlEventStore.open(tmp_path / "store.db")
    common = [NewEvent("Happened", {"warehouse": f"w{n}", "n": n}) for n in range(60)]
    store.append_to_stream("s-1", common)
    store.append_to_stream("s-2", [NewEvent("Happened", {"rare": "wombat"})])  # position 61
    store.append_to_stream("s-3", [NewEvent("Happened", {"other": 1}) for _ in range(30)])
    store.update_index()
    statements: list[str] = []
    original = CompiledStatement.fetchall

    def fetch(self, cursor, /, **values):  # type: ignore[no-untyped-def]
        statements.append(self.sql)
        return original(self, cursor, **values)

    monkeypatch.setattr(CompiledStatement, "fetchall", fetch)
    dense = EventFilter(text="ware*")
    assert positions(store, dense, limit=5) == [1, 2, 3, 4, 5]
    assert not any("MATCH" in s for s in statements), statements  # the probe filled it
    statements.clear()
    assert positions(store, EventFilter(text="wom*")) == [61]
    assert any("MATCH" in s for s in statements)  # past the probe, the index answers
    # Every answer is unchanged by the split, in both directions and across pages.
    store.page_size = 7
    assert positions(store, dense) == list(range(1, 61))
    assert positions(store, dense, backwards=True) == list(range(60, 0, -1))
    assert positions(store, EventFilter(text="w*"), backwards=True, limit=3) == [61, 60, 59]
    assert positions(store, EventFilter(text="w*", from_position=55), backwards=True) == [
        55,
        *range(54, 0, -1),
    ]
    assert store.count(dense) == 60
    store.close()


@pytest.mark.parametrize("backwards", [False, True])
def test_every_page_is_one_key_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backwards: bool
) -> None:
    """Each page statement bounds its key once on the side it pages from: SQLite ranges
    over one lower and one upper bound, so a second lower bound (say ``>= 1`` besides
    ``> cursor``) makes every page scan from the start again."""
    monkeypatch.setattr(reads_module, "SCAN_WINDOW", 40)
    monkeypatch.setattr(reads_module, "PREFIX_PROBE", 10)
    store = SqlEventStore.open(tmp_path / "store.db")
    store.append_to_stream("s-1", [NewEvent("Happened", {"n": n, "w": "word"}) for n in range(90)])
    store.update_index(limit=60)
    store.page_size = 7
    statements: list[str] = []
    original = CompiledStatement.fetchall

    def fetch(self, cursor, /, **values):  # type: ignore[no-untyped-def]
        statements.append(self.sql)
        return original(self, cursor, **values)

    monkeypatch.setattr(CompiledStatement, "fetchall", fetch)
    filters = [
        EventFilter(),
        EventFilter(from_position=80 if backwards else 5, to_position=80),
        EventFilter(text="word"),  # index, then a windowed scan of the tail
        EventFilter(text="wor*", to_position=85),  # probe, index, scan
        EventFilter(category="s"),
    ]
    for where in filters:
        statements.clear()
        found = positions(store, where, backwards=backwards)
        assert len(found) > 7 and len(statements) > 1, where
        near = re.compile(r"(position|rowid) <=? " if backwards else r"(position|rowid) >=? ")
        for sql in statements:
            assert len(near.findall(sql)) <= 1, (where, sql)
    store.close()
