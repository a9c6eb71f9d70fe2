"""Damage inside event rows: ``check`` finds it by checksum, reads refuse it by position."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.errors import StoreCorrupt
from core.events import NewEvent
from core.store import SqlEventStore
from core.store.port import EventFilter, ImportRecord, prepare_events


def damage(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute(statement)
    raw.close()


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    with SqlEventStore.open(path) as store:
        for n in range(5):
            store.append_to_stream(f"order-{n}", [NewEvent("Placed", {"amount": 10 + n})])
        (event,) = prepare_events([NewEvent("Imported", {"amount": 99})])
        store.import_records([ImportRecord(1, "order-9", event, None, None)])
    return path


def test_a_healthy_store_verifies_every_checksum(store_file: Path) -> None:
    with SqlEventStore.open(store_file, read_only=True) as store:
        report = store.check()
    assert report.ok, report.problems
    assert report.to_dict()["checksums"]["verified"] == 6
    assert report.to_dict()["checksums"]["unverified"] == 0


def test_a_changed_digit_that_still_reads_is_found_by_check(store_file: Path) -> None:
    # A flipped bit turning 12 into 13: still JSON, so only the checksum can tell.
    damage(store_file, """UPDATE events SET data = '{"amount":13}' WHERE position = 3""")
    with SqlEventStore.open(store_file, read_only=True) as store:
        report = store.check()
    assert not report.ok
    assert report.to_dict()["checksums"]["mismatched_positions"] == [3]
    assert "position(s) [3]" in report.problems[0]


def test_an_imported_row_is_checksummed_too(store_file: Path) -> None:
    damage(store_file, "UPDATE events SET event_id = upper(event_id) WHERE position = 6")
    with SqlEventStore.open(store_file, read_only=True) as store:
        assert store.check().to_dict()["checksums"]["mismatched_positions"] == [6]


def test_a_payload_that_is_no_longer_json_is_a_typed_error_naming_its_position(
    store_file: Path,
) -> None:
    damage(store_file, """UPDATE events SET data = '{"amount":1' WHERE position = 2""")
    with SqlEventStore.open(store_file, read_only=True) as store:
        with pytest.raises(StoreCorrupt, match="position 2"):
            list(store.read())
        with pytest.raises(StoreCorrupt, match="position 2"):
            list(store.iter_raw())  # export: never a line that is not JSON
        assert store.check().to_dict()["checksums"]["mismatched_positions"] == [2]


def test_text_that_is_no_longer_utf8_is_a_typed_error_and_found_by_check(
    store_file: Path,
) -> None:
    damage(
        store_file, "UPDATE events SET metadata = CAST(X'7B22FF227D' AS TEXT) WHERE position = 4"
    )
    with SqlEventStore.open(store_file, read_only=True) as store:
        with pytest.raises(StoreCorrupt, match="position 4"):
            list(store.read(EventFilter(from_position=1)))
        store.page_size = 2  # the damaged row in a later page
        with pytest.raises(StoreCorrupt, match="position 4"):
            list(store.read())
        with pytest.raises(StoreCorrupt, match="position 4"):
            list(store.read_stream("order-3"))
        assert store.check().to_dict()["checksums"]["mismatched_positions"] == [4]


def test_rows_written_before_checksums_are_counted_apart_not_failed(store_file: Path) -> None:
    damage(store_file, "UPDATE events SET checksum = NULL WHERE position <= 2")
    with SqlEventStore.open(store_file, read_only=True) as store:
        report = store.check()
    assert report.ok, report.problems
    assert report.to_dict()["checksums"] == {
        "verified": 4,
        "unverified": 2,
        "mismatched": 0,
        "mismatched_positions": [],
        "undecodable": 0,
        "undecodable_positions": [],
    }


def test_postgres_rows_carry_checksums_that_check_verifies(pg_location: str) -> None:
    with SqlEventStore.open(pg_location) as store:
        store.append_to_stream("order-1", [NewEvent("Placed", {"amount": 12}) for _ in range(3)])
    engine = create_engine(pg_location)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE events SET data = :data WHERE position = 2"), {"data": '{"amount":13}'}
        )
    engine.dispose()
    with SqlEventStore.open(pg_location, read_only=True) as store:
        report = store.check()
    assert report.to_dict()["checksums"]["verified"] == 2
    assert report.to_dict()["checksums"]["mismatched_positions"] == [2]


def test_a_time_that_is_not_a_time_is_a_typed_error_naming_its_position(
    store_file: Path,
) -> None:
    damage(store_file, "UPDATE events SET recorded_at = X'0102' WHERE position = 2")
    damage(store_file, "UPDATE events SET recorded_at = 999999999999999999 WHERE position = 3")
    with SqlEventStore.open(store_file, read_only=True) as store:
        with pytest.raises(StoreCorrupt, match="position 2"):
            list(store.read())
        with pytest.raises(StoreCorrupt, match="position 2"):
            list(store.iter_raw())
        with pytest.raises(StoreCorrupt, match="position 3"):
            list(store.iter_raw(EventFilter(from_position=3)))
        assert store.check().to_dict()["checksums"]["mismatched_positions"] == [2, 3]


def test_a_damaged_streams_row_is_a_typed_error_naming_its_stream(store_file: Path) -> None:
    damage(store_file, "UPDATE streams SET version = X'01' WHERE stream_id = 'order-2'")
    with SqlEventStore.open(store_file, read_only=True) as store:
        with pytest.raises(StoreCorrupt, match="order-2"):
            list(store.list_streams())
        with pytest.raises(StoreCorrupt, match="order-2"):
            store.stream_info("order-2")


def test_a_damaged_schema_text_is_a_typed_error_at_open(store_file: Path) -> None:
    # SQLite's message then quotes bytes that are not UTF-8.
    with sqlite3.connect(store_file) as raw:
        raw.execute("PRAGMA writable_schema=ON")
        raw.execute(
            "UPDATE sqlite_master SET sql = CAST(? AS TEXT) WHERE name = 'ix_events_type_position'",
            (b"CREATE INDEX ix_events_type_position ON events (t\xa7pe, position)",),
        )
    raw.close()
    with pytest.raises(StoreCorrupt, match="damaged"):
        SqlEventStore.open(store_file, read_only=True)
