"""Read-only opens use SQLite's read-only mode: even a stray write cannot reach the file."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from core.errors import EventscopeError, StoreNotFound
from core.events import NewEvent
from core.store import SqlEventStore


def test_the_read_only_connection_itself_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    writer = SqlEventStore.open(path)
    writer.append_to_stream("s-1", [NewEvent("A")])
    writer.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    reader = SqlEventStore.open(path, read_only=True)
    raw = reader._connections.engine.raw_connection()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            raw.driver_connection.execute("DELETE FROM events")  # type: ignore[union-attr]
    finally:
        raw.close()
    assert [e.type for e in reader.read_all()] == ["A"]
    reader.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_read_only_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound):
        SqlEventStore.open(tmp_path / "absent.db", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_a_password_in_a_store_url_is_never_displayed() -> None:
    from core.store.sql import display_location

    shown = display_location("postgresql+psycopg://ops:s3cret@db.example:5432/events")
    assert shown == "postgresql+psycopg://ops:***@db.example:5432/events"
    assert display_location("/data/store.db") == "/data/store.db"


@pytest.mark.parametrize(
    "location",
    [
        "postgresql://ops:s3cret@127.0.0.1:1/events",  # nothing listens
        "postgresql+nodriver://ops:s3cret@db.example/events",  # no such driver
        "postgresql://ops:s3cret@[malformed/events",  # no such host
        "postgresql://ops:s3cret@db.example:port/events",  # does not parse as a URL
        "postgresql://ops:s3cret@127.0.0.1:5432/events?sslmode=bogus",  # the driver refuses
    ],
)
@pytest.mark.parametrize("read_only", [True, False])
def test_a_store_url_that_cannot_be_opened_never_shows_its_password(
    location: str, read_only: bool
) -> None:
    with pytest.raises(EventscopeError) as refused:
        SqlEventStore.open(location, read_only=read_only)
    message = str(refused.value)
    assert "s3cret" not in message
    assert "ops:***@" in message  # it still says which store


def test_a_url_that_does_not_parse_still_hides_its_password() -> None:
    from core.store.sql import display_location

    assert display_location("postgresql://ops:s3cret@h:port/x") == "postgresql://ops:***@h:port/x"
