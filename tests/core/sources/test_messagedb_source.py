"""Message DB's store, read through the port, the workspace and the CLI (DESIGN §8).

The database is installed by Message DB's own ``install.sh`` and written only with its
own ``write_message`` function; a rolled-back write leaves a gap in ``global_position``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import URL

import core.sources.messagedb as messagedb
from console.cli import main
from core.errors import (
    Cancelled,
    NotAnEventStore,
    SourceReadOnly,
    StoreClosed,
    StoreUnreachable,
)
from core.events import NewEvent, RecordedEvent
from core.jobs import Job
from core.sources import open_source
from core.sources.messagedb import MessageDbSource
from core.store.port import EventFilter, EventStore, ImportRecord, PreparedEvent
from core.workspace import Workspace
from tests.core.sources.messagedb import (
    connect,
    message_db_database,
    source_url,
    write_message,
)


@dataclass
class Written:
    """The Message DB the tests read: its URL, and what was written, in order."""

    server: URL
    database: str
    url: str
    ids: list[str]  # in global_position order
    gap: int  # the global_position a rolled-back write used up


#: (stream, type, data, metadata) in write order; the rolled-back write goes after the 4th.
MESSAGES: list[tuple[str, str, str | None, str | None]] = [
    ("account-1", "Opened", '{"owner": "Ann"}', '{"correlation_id": "c-1"}'),
    ("account-2", "Opened", None, None),  # NULL data and metadata
    ("account-1", "Deposited", '{"amount": 10, "sku": "SKU-4242"}', '{"correlation_id": "c-2"}'),
    ("accountTransfer-7", "Initiated", '{"amount": 5}', '{"correlation_id": "c-1"}'),
    ("account:command-3", "Deposit", '{"amount": 7}', None),
    ("account-1", "Withdrawn", '{"amount": 3}', '{"correlation_id": "c-1"}'),
    ("account-10", "Opened", '{"owner": "Bo"}', '{"correlationStreamName": "x-1"}'),
    ("Zebra-1", "Noted", "{}", None),  # upper case sorts first byte-wise, not in en-US
    ("école-1", "Noted", '{"note": "é"}', None),  # and non-ASCII last
]
ROLLED_BACK_AFTER = 4


@pytest.fixture(scope="module")
def written() -> Iterator[Written]:
    with message_db_database() as (server, database):
        ids: list[str] = []
        with connect(server, database, autocommit=True) as conn:
            for index, (stream, kind, data, metadata) in enumerate(MESSAGES):
                if index == ROLLED_BACK_AFTER:
                    with conn.transaction(force_rollback=True):
                        write_message(conn, "account-99", "Lost", "{}")
                ids.append(write_message(conn, stream, kind, data, metadata)[0])
            positions = [row[0] for row in conn.execute(_POSITIONS).fetchall()]
        (gap,) = set(range(1, positions[-1] + 1)) - set(positions)
        yield Written(server, database, source_url(server, database), ids, gap)


_POSITIONS = "SELECT global_position FROM message_store.messages ORDER BY global_position"


@pytest.fixture
def source(written: Written) -> Iterator[MessageDbSource]:
    opened = open_source(written.url)
    assert isinstance(opened, MessageDbSource)
    yield opened
    opened.close()


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rows (or streams) a page: every read crosses pages, and the gap."""
    monkeypatch.setattr(messagedb, "PAGE_SIZE", 2)


def _state(written: Written) -> tuple[Any, ...]:
    with connect(written.server, written.database) as conn:
        row = conn.execute(
            "SELECT count(*), max(global_position), "
            "(SELECT last_value FROM message_store.messages_global_position_seq), "
            "md5(string_agg(messages::text, ',' ORDER BY global_position)) "
            "FROM message_store.messages"
        ).fetchone()
    return tuple(row or ())


def positions(events: Any) -> list[int]:
    return [event.position for event in events]


# -- the mapping -------------------------------------------------------------------------


def test_every_message_reads_as_a_recorded_event(written: Written, source: MessageDbSource):
    events = list(source.read())

    assert [e.event_id for e in events] == written.ids
    with connect(written.server, written.database) as conn:
        rows = conn.execute(
            "SELECT global_position, stream_name, position, type, time FROM "
            "message_store.messages ORDER BY global_position"
        ).fetchall()
    assert [(e.position, e.stream_id, e.version, e.type) for e in events] == [
        row[:4] for row in rows
    ]
    assert [e.recorded_at for e in events] == [row[4].replace(tzinfo=UTC) for row in rows]
    first, null_payloads = events[0], events[1]
    assert first.data == {"owner": "Ann"} and first.metadata == {"correlation_id": "c-1"}
    assert null_payloads.data == {} and null_payloads.metadata == {}
    assert first.recorded_at.tzinfo is UTC
    assert abs(first.recorded_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert [e.category for e in events[3:5]] == ["accountTransfer", "account:command"]


def test_raw_rows_carry_json_text_and_microseconds(source: MessageDbSource) -> None:
    raws = list(source.iter_raw())
    decoded = list(source.read())

    assert [raw.decode() for raw in raws] == decoded
    assert orjson.loads(raws[1].data) == {} and orjson.loads(raws[1].metadata) == {}
    assert isinstance(raws[0].recorded_at, int)


# -- reads -------------------------------------------------------------------------------


def test_read_stream_forwards_backwards_from_version_and_limit(
    source: MessageDbSource, small_pages: None
) -> None:
    def types(**options: Any) -> list[str]:
        return [e.type for e in source.read_stream("account-1", **options)]

    assert types() == ["Opened", "Deposited", "Withdrawn"]
    assert [e.version for e in source.read_stream("account-1")] == [0, 1, 2]
    assert types(from_version=1) == ["Deposited", "Withdrawn"]
    assert types(limit=2) == ["Opened", "Deposited"]
    assert types(backwards=True) == ["Withdrawn", "Deposited", "Opened"]
    assert types(backwards=True, from_version=1) == ["Deposited", "Opened"]
    assert types(backwards=True, limit=1) == ["Withdrawn"]
    assert types(limit=0) == []
    assert list(source.read_stream("account-404")) == []


def test_filters_narrow_reads(written: Written, source: MessageDbSource, small_pages: None):
    p = [e.position for e in source.read()]  # positions in write order (one gap)

    def read(**where: Any) -> list[int]:
        return positions(source.read(EventFilter(**where)))

    assert read(stream_id="account-1") == [p[0], p[2], p[5]]
    assert read(category="account") == [p[0], p[1], p[2], p[5], p[6]]
    assert read(category="account:command") == [p[4]]
    assert read(types=("Opened", "Initiated")) == [p[0], p[1], p[3], p[6]]
    assert read(types=("Noted",)) == [p[7], p[8]]
    assert read(stream_prefix="account-1") == [p[0], p[2], p[5], p[6]]
    assert read(stream_prefix="account_") == []  # LIKE's wildcard is a plain character
    assert read(from_position=written.gap) == p[4:]
    assert read(to_position=written.gap) == p[:4]
    assert read(from_position=p[2], to_position=p[5]) == p[2:6]
    assert read(correlation_id="c-1") == [p[0], p[3], p[5]]
    assert read(text="sku 42*") == [p[2]]
    assert read(text="ann") == [p[0]]
    assert read(category="account", types=("Opened",), correlation_id="c-1") == [p[0]]
    events = list(source.read())
    assert read(since=events[2].recorded_at, until=events[5].recorded_at) == p[2:6]
    assert read(until=events[0].recorded_at - timedelta(microseconds=1)) == []


def test_backwards_reads_and_limits(written: Written, source: MessageDbSource, small_pages):
    p = [e.position for e in source.read()]

    assert positions(source.read(backwards=True)) == p[::-1]
    assert positions(source.read(backwards=True, limit=3)) == p[::-1][:3]
    assert positions(source.read(limit=5)) == p[:5]  # across the gap
    assert positions(source.read(EventFilter(from_position=p[4]), backwards=True)) == p[4::-1]
    assert positions(source.read(EventFilter(category="account"), backwards=True, limit=2)) == [
        p[6],
        p[5],
    ]
    assert positions(source.read(EventFilter(correlation_id="c-1"), limit=2)) == [p[0], p[3]]
    assert positions(source.iter_raw(EventFilter(text="amount"), backwards=True, limit=2)) == [
        p[5],
        p[4],
    ]
    assert positions(source.read_all(from_position=written.gap)) == p[4:]


def test_event_by_id(written: Written, source: MessageDbSource) -> None:
    event = source.event_by_id(written.ids[2])

    assert event is not None and (event.stream_id, event.version) == ("account-1", 1)
    assert source.event_by_id(written.ids[2].upper()) == event
    assert source.event_by_id("0b6f4c1e-8a5d-4e2f-9c3b-1d2e3f4a5b6c") is None
    assert source.event_by_id("not-a-uuid") is None


def test_streams_are_listed_byte_wise_in_pages(source: MessageDbSource, small_pages: None):
    names = [info.stream_id for info in source.list_streams()]

    expected = [
        "Zebra-1",
        "account-1",
        "account-10",
        "account-2",
        "account:command-3",
        "accountTransfer-7",
        "école-1",
    ]
    assert names == sorted(expected, key=str.encode) == expected
    assert [i.stream_id for i in source.list_streams(after="account-10")] == expected[3:]
    assert [i.stream_id for i in source.list_streams(after="account-10", limit=2)] == expected[3:5]
    assert [i.stream_id for i in source.list_streams(after="Zebra-1", limit=1)] == expected[1:2]
    assert [i.stream_id for i in source.list_streams(prefix="account-1")] == expected[1:3]
    assert [i.stream_id for i in source.list_streams(category="account")] == expected[1:4]
    assert [i.stream_id for i in source.list_streams(limit=1)] == expected[:1]


def test_stream_info(source: MessageDbSource) -> None:
    events = [e for e in source.read() if e.stream_id == "account-1"]

    info = source.stream_info("account-1")

    assert info is not None
    assert (info.stream_id, info.category, info.version, info.event_count) == (
        "account-1",
        "account",
        2,
        3,
    )
    assert (info.first_position, info.last_position) == (events[0].position, events[-1].position)
    assert (info.first_recorded_at, info.last_recorded_at) == (
        events[0].recorded_at,
        events[-1].recorded_at,
    )
    assert next(source.list_streams(after="Zebra-1", limit=1)) == info
    assert source.stream_info("account-404") is None


def test_head_count_and_position_at_across_the_gap(written: Written, source: MessageDbSource):
    events = list(source.read())

    assert source.head_position() == events[-1].position == len(MESSAGES) + 1
    assert source.count() == len(MESSAGES)
    assert source.count(EventFilter(from_position=written.gap)) == len(MESSAGES) - 4
    assert source.count(EventFilter(category="account", types=("Opened",))) == 3
    assert source.count(EventFilter(text="amount")) == 4
    for event in events:
        assert source.position_at(event.recorded_at) == event.position
    before_gap, after_gap = events[3], events[4]
    assert after_gap.position == before_gap.position + 2
    just_before = after_gap.recorded_at - timedelta(microseconds=1)
    assert source.position_at(just_before) == before_gap.position
    assert source.position_at(events[0].recorded_at - timedelta(microseconds=1)) == 0
    assert source.position_at(datetime.now(UTC) + timedelta(days=1)) == events[-1].position


def test_check_reports_contiguous_versions_and_counts_gaps(source: MessageDbSource) -> None:
    report = source.check()

    assert report.ok, report.problems
    assert (report.events, report.head, report.streams) == (len(MESSAGES), len(MESSAGES) + 1, 7)
    assert report.to_dict()["position_gaps"] == 1
    assert report.to_dict()["time_decreases"] == 0


def test_check_finds_versions_that_are_not_contiguous() -> None:
    with message_db_database() as (server, database):
        with connect(server, database, autocommit=True) as conn:
            write_message(conn, "thing-1", "A", "{}")
            write_message(conn, "thing-1", "B", "{}")
            # Message DB writes position = version + 1 under its lock; only a hand-made
            # row can break it, as a faulty import would.
            conn.execute(
                "INSERT INTO message_store.messages (stream_name, position, type, data) "
                "VALUES ('thing-2', 1, 'C', '{}')"
            )
        with open_source(source_url(server, database)) as source:
            report = source.check()

    assert not report.ok
    assert report.problems == (
        "stream 'thing-2' has non-contiguous versions (1 messages, versions 1..1)",
    )


# -- nothing written, writes refused, interrupt and close --------------------------------


def test_reads_write_nothing(written: Written) -> None:
    before = _state(written)
    with open_source(written.url) as source:
        list(source.read())
        list(source.read(EventFilter(category="account", text="amount"), backwards=True))
        list(source.read_stream("account-1"))
        list(source.list_streams())
        source.stream_info("account-1")
        source.event_by_id(written.ids[0])
        source.count()
        source.position_at(datetime.now(UTC))
        source.check()

    assert _state(written) == before


def test_the_connection_refuses_writes(source: MessageDbSource) -> None:
    """Even SQL sent around the source's reads could not write: transactions are read-only."""
    with source._conns.driver_reading() as cursor:
        cursor.execute("SHOW transaction_read_only")
        assert cursor.fetchone() == ("on",)


def test_every_write_raises_source_read_only(source: MessageDbSource) -> None:
    event = NewEvent("Opened", {"owner": "Cy"})
    prepared = PreparedEvent("Opened", "{}", "{}", event.event_id)

    for attempt in (
        lambda: source.append_to_stream("account-3", [event]),
        lambda: source.import_records([ImportRecord(1, "account-3", prepared)]),
        lambda: source.transaction().__enter__(),
        lambda: source.update_index(),
    ):
        with pytest.raises(SourceReadOnly) as refused:
            attempt()
        assert "Message DB" in str(refused.value) and "\n" not in str(refused.value)
    assert source.stream_info("account-3") is None


def test_interrupt_stops_reads_until_resume(source: MessageDbSource) -> None:
    source.interrupt()
    with pytest.raises(Cancelled):
        list(source.read())
    source.resume()

    assert source.count() == len(MESSAGES)


def test_interrupt_cancels_a_running_statement(written: Written) -> None:
    """A read waiting on the server (here behind a lock a writer holds) is cancelled."""
    with open_source(written.url) as source, connect(written.server, written.database) as conn:
        conn.execute("LOCK TABLE message_store.messages IN ACCESS EXCLUSIVE MODE")
        outcome: list[BaseException | int] = []

        def read() -> None:
            try:
                outcome.append(source.count())
            except BaseException as error:
                outcome.append(error)

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.5)
        source.interrupt()
        reader.join(5)
        conn.rollback()

    assert not reader.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)


def _backends(written: Written) -> int:
    with connect(written.server, written.database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (written.database,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_after_close_every_call_raises_store_closed_and_connects_nowhere(written: Written):
    source = open_source(written.url)
    source.head_position()
    source.close()
    deadline = time.monotonic() + 3
    while _backends(written) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _backends(written) == 0

    for call in (
        lambda: list(source.read()),
        lambda: list(source.iter_raw()),
        lambda: list(source.read_stream("account-1")),
        lambda: source.event_by_id(written.ids[0]),
        lambda: source.stream_info("account-1"),
        lambda: list(source.list_streams()),
        source.head_position,
        lambda: source.position_at(datetime.now(UTC)),
        source.check,
        source.count,
    ):
        with pytest.raises(StoreClosed):
            call()
    source.close()  # again: nothing

    assert _backends(written) == 0


# -- opening -----------------------------------------------------------------------------


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreUnreachable) as failed:
        open_source("messagedb+postgresql://someone:s3cret@127.0.0.1:1/app")

    message = str(failed.value)
    assert "\n" not in message and "s3cret" not in message and "***" in message


def test_a_database_without_message_store_is_not_an_event_store(written: Written) -> None:
    other = source_url(written.server, written.server.database or "postgres")

    with pytest.raises(NotAnEventStore) as refused:
        open_source(other)

    assert "message_store.messages" in str(refused.value) and "\n" not in str(refused.value)


# -- through the workspace and the CLI ---------------------------------------------------


def test_the_workspace_reads_it_read_only(written: Written) -> None:
    with Workspace.open(written.url, load_plugins=False) as workspace:
        assert workspace.read_only
        events: list[RecordedEvent] = list(workspace.events.read(EventFilter(category="account")))
        assert [e.stream_id for e in events] == [
            "account-1",
            "account-2",
            "account-1",
            "account-1",
            "account-10",
        ]
        assert workspace.events.head_position() == len(MESSAGES) + 1
        with pytest.raises(SourceReadOnly):
            workspace.writing.append("account-5", "Opened", {}, {})


@dataclass
class Outcome:
    code: int
    out: bytes
    err: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.out.splitlines()]


@pytest.fixture
def cli(written: Written, capsysbinary: pytest.CaptureFixture[bytes]) -> Any:
    """Run ``eventscope --store <Message DB URL> ARGS`` in-process."""

    def run(*args: str) -> Outcome:
        with pytest.raises(SystemExit) as exited:
            main(["--store", written.url, *args])
        captured = capsysbinary.readouterr()
        return Outcome(int(exited.value.code or 0), captured.out, captured.err.decode())

    return run


def test_cli_read_streams_export_and_check(written: Written, cli: Any) -> None:
    read = cli("read", "--category", "account", "--type", "Opened", "--backwards")
    assert read.code == 0, read.err
    assert [(e["stream_id"], e["type"]) for e in read.lines] == [
        ("account-10", "Opened"),
        ("account-2", "Opened"),
        ("account-1", "Opened"),
    ]
    assert read.lines[-1]["event_id"] == written.ids[0]
    assert read.lines[-1]["recorded_at"].endswith("Z")

    streams = cli("streams", "--prefix", "account-")
    assert streams.code == 0, streams.err
    assert [s["stream_id"] for s in streams.lines] == ["account-1", "account-10", "account-2"]

    export = cli("export", "--from-position", str(written.gap))
    assert export.code == 0, export.err
    assert [e["event_id"] for e in export.lines] == written.ids[4:]

    check = cli("check")
    assert check.code == 0, check.err
    (report,) = check.lines
    assert report["ok"] and report["events"] == len(MESSAGES) and report["position_gaps"] == 1


def test_cli_append_is_refused_with_exit_code_5(written: Written, cli: Any) -> None:
    before = _state(written)

    refused = cli("append", "account-5", "Opened", "--data", "{}")

    assert refused.code == 5
    assert refused.err.count("\n") == 1 and "only reads it" in refused.err
    assert refused.out == b""
    assert _state(written) == before


def test_import_from_copies_it_gaplessly_keeping_ids_and_source_places_and_reruns_add_nothing(
    written: Written, source: MessageDbSource, tmp_path: Path, capsysbinary: Any
) -> None:
    target = str(tmp_path / "copy.db")

    def import_from() -> Outcome:
        with pytest.raises(SystemExit) as exited:
            main(["--store", target, "import-from", written.url])
        captured = capsysbinary.readouterr()
        return Outcome(int(exited.value.code or 0), captured.out, captured.err.decode())

    first = import_from()
    again = import_from()

    assert first.code == 0, first.err
    assert first.lines == [{"appended": len(MESSAGES), "duplicates": 0}]
    assert again.lines == [{"appended": 0, "duplicates": 0}]
    originals = list(source.read())
    with Workspace.open(target) as copy:
        copied = list(copy.events.read())
        assert [e.position for e in copied] == list(range(1, len(MESSAGES) + 1))  # no gap
        assert [e.event_id for e in copied] == written.ids
        assert [(e.stream_id, e.type, e.data, e.recorded_at) for e in copied] == [
            (e.stream_id, e.type, e.data, e.recorded_at) for e in originals
        ]
        assert [e.metadata["source_position"] for e in copied] == [e.position for e in originals]
        assert written.gap not in [e.metadata["source_position"] for e in copied]
        assert [e.metadata.get("correlation_id") for e in copied] == [
            e.metadata.get("correlation_id") for e in originals
        ]
        account = list(copy.events.read_stream("account-1"))
        assert [e.version for e in account] == [0, 1, 2]
        assert [e.metadata["source_version"] for e in account] == [0, 1, 2]
        assert copy.events.check().ok


def test_import_from_refuses_a_url_that_names_no_other_tool(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--store", str(tmp_path / "copy.db"), "import-from", str(tmp_path / "x.db")])

    assert exited.value.code == 2
    assert "not another tool's store URL" in capsys.readouterr().err
    assert not (tmp_path / "copy.db").exists()


def test_a_payload_search_reports_its_progress(
    written: Written, source: MessageDbSource, small_pages: None
) -> None:
    reports: list[tuple[int, int]] = []
    job = Job(lambda done, total: reports.append((done, total)))
    with job.running():
        head = source.head_position()
        found = list(source.read(EventFilter(text="sku-4242")))
        scanned = len(reports)
        list(source.read(EventFilter(types=("Opened",))))  # answered in SQL: no scan

    assert [e.event_id for e in found] == [written.ids[2]]
    assert scanned > 1 and len(reports) == scanned
    assert {total for _, total in reports} == {head}
    dones = [done for done, _ in reports]
    assert dones == sorted(dones) and dones[-1] == head


@pytest.mark.parametrize(
    ("prefix", "category", "before", "limit"),
    [
        (None, None, None, None),
        (None, None, None, 2),
        (None, None, 7, None),  # account-1 was active at 7: it is not listed before it
        (None, None, 9, 2),
        ("account-", None, None, None),
        (None, "account", 8, None),
        (None, None, 1, None),
    ],
)
def test_recent_streams_are_what_the_ports_full_listing_sorts(
    source: MessageDbSource,
    small_pages: None,
    prefix: str | None,
    category: str | None,
    before: int | None,
    limit: int | None,
) -> None:
    options: dict[str, Any] = {
        "prefix": prefix,
        "category": category,
        "before_position": before,
        "limit": limit,
    }
    expected = list(EventStore.recent_streams(source, **options))  # lists every stream

    assert list(source.recent_streams(**options)) == expected
    if before is None and limit is None and prefix is None and category is None:
        assert [s.stream_id for s in expected[:3]] == ["école-1", "Zebra-1", "account-10"]
