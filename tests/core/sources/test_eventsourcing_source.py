"""The eventsourcing library's stores, written by the library itself, read as Eventscope
stores (DESIGN §8): every read shape, every encoding, gaps, and nothing ever written."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import (
    Aggregate,
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
    event,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import core.sources.eventsourcing as es_module
from console.cli import main
from core.errors import (
    Cancelled,
    NotAnEventStore,
    SourceReadOnly,
    StoreClosed,
    StoreNotFound,
    StoreUnreachable,
)
from core.events import NewEvent, RecordedEvent, from_micros
from core.jobs import Job
from core.sources.eventsourcing import EVENT_ID_NAMESPACE, EventsourcingSource
from core.store import EventFilter, EventStore, open_store
from core.workspace import Workspace

PG_URL = os.environ.get("EVENTSCOPE_TEST_PG_URL")
EPOCH = from_micros(0)
KEY = base64.b64encode(b"k" * 16).decode()
OTHER_KEY = base64.b64encode(b"o" * 32).decode()
AES = "eventsourcing.cipher:AESCipher"
ZLIB = "eventsourcing.compressor:ZlibCompressor"


# -- the application the library writes ----------------------------------------------------


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []
        self.friends: list[uuid.UUID] = []

    @event("TrickAdded")
    def add_trick(self, trick: str, price: Decimal = Decimal("1.5")) -> None:
        self.tricks.append(trick)

    @event("Befriended")
    def befriend(self, friend: uuid.UUID, since: datetime) -> None:
        self.friends.append(friend)


@dataclass(frozen=True)
class TextIdEvent(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """The library's DomainEvent, with a text id (DomainEvent insists on a UUID)."""

    originator_id: str
    originator_version: int
    timestamp: datetime


@dataclass(frozen=True)
class TextIdCreated(CanInitAggregate[str], TextIdEvent):
    originator_topic: str


class TextIdAggregate(BaseAggregate[str]):
    """Aggregates with text ids, set up as the library sets up ``Aggregate``."""

    class Event(TextIdEvent):
        pass

    class Created(Event, TextIdCreated):
        pass


class Tag(TextIdAggregate):
    """An aggregate with a text id (kept as text by the source)."""

    @staticmethod
    def create_id(label: str) -> str:
        return f"tag-{label}"

    @event("Created")
    def __init__(self, label: str) -> None:
        self.label = label


class DogSchool(Application[Any]):
    pass


@dataclass
class History:
    """A store the library wrote: where, and what the library says it holds."""

    url: str
    path: Path | None
    fido: str
    rex: str
    # (position, stream id, version, topic, timestamp) of each event, by position
    events: list[tuple[int, str, int, str, datetime]]

    def at(self, position: int) -> tuple[int, str, int, str, datetime]:
        return next(e for e in self.events if e[0] == position)

    def topic(self, name: str) -> str:
        return f"{__name__}:{name}"


def write_history(app: Application[Any], *, text_ids: bool = True) -> tuple[str, str]:
    """Eight events in three streams (one with a text id, unless not ``text_ids``: seven
    in two), interleaved."""
    fido = Dog("Fido")
    fido.add_trick("roll")
    fido.add_trick("sit", Decimal("2.25"))
    app.save(fido)
    rex = Dog("Rex")
    app.save(rex)
    rex.add_trick("beg")
    rex.befriend(fido.id, datetime.fromisoformat("2026-03-01T10:15:00+00:00"))
    app.save(rex)
    if text_ids:
        app.save(Tag("blue"))
    fido.add_trick("stay")
    app.save(fido)
    return str(fido.id), str(rex.id)


def canonical(originator_id: object) -> str:
    """An id as DESIGN §8 shows it: a UUID (which text mode returns as 32 hex digits)
    as its canonical string, a text id as it is."""
    if isinstance(originator_id, str) and len(originator_id) == 32:
        return str(uuid.UUID(originator_id))
    return str(originator_id)


def library_view(app: Application[Any]) -> list[tuple[int, str, int, str, datetime]]:
    """What the library itself reads back: notification ids, ids, versions, topics, times."""
    found = []
    for notification in app.recorder.select_notifications(start=1, limit=1000):
        domain_event: Any = app.mapper.to_domain_event(notification)
        found.append(
            (
                notification.id,
                canonical(notification.originator_id),
                notification.originator_version,
                notification.topic,
                domain_event.timestamp,
            )
        )
    return found


@pytest.fixture(autouse=True)
def _no_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library and the source read the environment: start every test without its
    persistence settings."""
    for name in list(os.environ):
        if name.endswith(
            ("CIPHER_KEY", "CIPHER_TOPIC", "COMPRESSOR_TOPIC", "PERSISTENCE_MODULE")
        ) or name.startswith(("SQLITE_", "POSTGRES_")):
            monkeypatch.delenv(name)


def sqlite_history(path: Path, settings: dict[str, str] | None = None) -> History:
    app = DogSchool(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "ORIGINATOR_ID_TYPE": "text",  # UUIDs (as hex) and text ids side by side
        }
        | (settings or {})
    )
    try:
        fido, rex = write_history(app)
        view = library_view(app)
    finally:
        app.close()
    return History(f"eventsourcing+sqlite:///{path}", path, fido, rex, view)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def plain_store(tmp_path_factory: pytest.TempPathFactory) -> History:
    path = tmp_path_factory.mktemp("es") / "dogs.db"
    return sqlite_history(path)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of two rows, so every read crosses several keyset pages."""
    monkeypatch.setattr(es_module, "PAGE", 2)


def positions(events: Iterator[RecordedEvent] | list[RecordedEvent]) -> list[int]:
    return [e.position for e in events]


# -- the mapping ------------------------------------------------------------------------------


def assert_maps_the_history(source: EventsourcingSource, history: History) -> None:
    """Every event as DESIGN §8 maps it, checked against the library's own reading."""
    events = list(source.read())
    assert len(events) == len(history.events) == 8
    for got, (position, stream_id, version, topic, moment) in zip(
        events, history.events, strict=True
    ):
        assert got.position == position
        assert got.stream_id == stream_id
        assert got.version == version
        assert got.type == topic
        assert got.event_id == str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream_id}:{version}"))
        assert got.recorded_at == moment
        assert got.metadata == {}
        assert got.data["timestamp"] == moment.isoformat()
    fido = [e for e in events if e.stream_id == history.fido]
    assert [e.version for e in fido] == [1, 2, 3, 4]
    assert fido[0].data["name"] == "Fido"
    assert fido[0].data["originator_topic"] == f"{__name__}:Dog"
    assert [(e.data["trick"], e.data["price"]) for e in fido[1:]] == [
        ("roll", "1.5"),
        ("sit", "2.25"),
        ("stay", "1.5"),
    ]
    befriended = next(e for e in events if e.type == history.topic("Dog.Befriended"))
    assert befriended.data["friend"] == history.fido  # uuid_hex -> canonical UUID text
    assert befriended.data["since"] == "2026-03-01T10:15:00+00:00"  # datetime_iso -> text
    tag = next(e for e in events if e.stream_id == "tag-blue")  # a text id stays text
    assert (tag.version, tag.type, tag.data["label"]) == (1, history.topic("Tag.Created"), "blue")
    assert uuid.UUID(history.fido) and str(uuid.UUID(history.fido)) == history.fido


def test_a_plain_sqlite_store_maps_as_design_8_says(plain_store: History) -> None:
    with open_store(plain_store.url, read_only=True) as source:
        assert isinstance(source, EventsourcingSource)
        assert_maps_the_history(source, plain_store)


ENCODINGS = {
    "zlib": ({"COMPRESSOR_TOPIC": ZLIB}, {"COMPRESSOR_TOPIC": ZLIB}, ""),
    "zlib-module": ({"COMPRESSOR_TOPIC": "zlib"}, {"COMPRESSOR_TOPIC": "zlib"}, ""),
    "aes": (
        {"CIPHER_TOPIC": AES, "CIPHER_KEY": KEY},
        {"CIPHER_TOPIC": AES, "CIPHER_KEY": KEY},
        "",
    ),
    "aes-default-topic": ({"CIPHER_KEY": KEY}, {"CIPHER_KEY": KEY}, ""),
    "aes-cryptography-topic": (
        {"CIPHER_TOPIC": AES, "CIPHER_KEY": KEY},
        {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": KEY},
        "",
    ),
    "zlib-aes": (
        {"COMPRESSOR_TOPIC": ZLIB, "CIPHER_TOPIC": AES, "CIPHER_KEY": KEY},
        {"COMPRESSOR_TOPIC": ZLIB, "CIPHER_TOPIC": AES, "CIPHER_KEY": KEY},
        "",
    ),
    "zlib-aes-app-prefix": (
        {"DOGSCHOOL_COMPRESSOR_TOPIC": ZLIB, "DOGSCHOOL_CIPHER_KEY": KEY},
        # the prefixed settings win over plain ones, as in the library
        {"DOGSCHOOL_COMPRESSOR_TOPIC": ZLIB, "DOGSCHOOL_CIPHER_KEY": KEY, "CIPHER_KEY": OTHER_KEY},
        "?app=DogSchool",
    ),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_compressed_and_encrypted_states_decode_with_the_apps_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    written, read_with, suffix = ENCODINGS[encoding]
    history = sqlite_history(tmp_path / "dogs.db", written)
    with open_store(history.url, read_only=True) as source:  # without the settings
        undecodable = [e.data.get("$undecodable") for e in source.read()]
        assert all(undecodable) and len(undecodable) == 8
    for name, value in read_with.items():
        monkeypatch.setenv(name, value)
    with open_store(history.url + suffix, read_only=True) as source:
        assert_maps_the_history(source, history)  # type: ignore[arg-type]


def test_without_the_app_name_prefixed_settings_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = sqlite_history(tmp_path / "dogs.db", {"DOGSCHOOL_CIPHER_KEY": KEY})
    monkeypatch.setenv("DOGSCHOOL_CIPHER_KEY", KEY)
    with open_store(history.url, read_only=True) as source:
        assert all("$undecodable" in e.data for e in source.read())
    with open_store(f"{history.url}?app=dogschool", read_only=True) as source:
        assert not any("$undecodable" in e.data for e in source.read())


def test_a_wrong_key_lists_every_event_as_undecodable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = sqlite_history(tmp_path / "dogs.db", {"CIPHER_KEY": KEY})
    monkeypatch.setenv("CIPHER_KEY", OTHER_KEY)
    with open_store(history.url, read_only=True) as source:
        events = list(source.read())
        assert positions(events) == [e[0] for e in history.events]
        for got in events:
            reason = got.data["$undecodable"]
            assert "decryption failed" in reason and "\n" not in reason
            assert got.recorded_at == EPOCH  # no timestamp anywhere before it
        assert [e.version for e in events if e.stream_id == history.fido] == [1, 2, 3, 4]
        report = source.check()
        assert not report.ok and report.events == 8
        assert "8 event(s) cannot be decoded" in report.problems[0]


def test_a_damaged_state_is_listed_with_the_previous_events_time(tmp_path: Path) -> None:
    history = sqlite_history(tmp_path / "dogs.db")
    damaged = tmp_path / "damaged.db"
    shutil.copy(history.path, damaged)  # type: ignore[arg-type]
    with sqlite3.connect(damaged) as conn:
        conn.execute("UPDATE stored_events SET state = x'00ff17' WHERE rowid = 3")
    conn.close()
    with open_store(f"eventsourcing+sqlite:///{damaged}", read_only=True) as source:
        third = next(source.read(EventFilter(from_position=3), limit=1))
        assert third.data == {
            "$undecodable": "the state is not JSON (encrypted or compressed? set "
            "CIPHER_KEY / COMPRESSOR_TOPIC)"
        }
        assert third.recorded_at == history.at(2)[4]
        assert source.event_by_id(third.event_id) == third
        assert [e.recorded_at for e in source.read_stream(third.stream_id)][2] == (history.at(2)[4])
        report = source.check()
        assert not report.ok and report.details["undecodable_positions"] == [3]


# -- every read shape -------------------------------------------------------------------------


def assert_read_shapes(source: EventsourcingSource, history: History) -> None:
    """Every read of the port against what the library wrote (positions may have gaps)."""
    every = [e[0] for e in history.events]
    times = {e[0]: e[4] for e in history.events}
    by_stream: dict[str, list[int]] = {}
    for position, stream_id, *_ in history.events:
        by_stream.setdefault(stream_id, []).append(position)
    fido = by_stream[history.fido]
    tricks = [e[0] for e in history.events if e[3] == history.topic("Dog.TrickAdded")]

    assert positions(source.read()) == every
    assert positions(source.read(backwards=True)) == every[::-1]
    assert positions(source.read(backwards=True, limit=3)) == every[::-1][:3]
    assert positions(source.read(limit=3)) == every[:3]
    assert positions(source.read(EventFilter(from_position=every[2]))) == every[2:]
    assert (
        positions(source.read(EventFilter(from_position=every[4]), backwards=True))
        == (every[:5][::-1])
    )
    assert positions(source.read(EventFilter(to_position=every[3]))) == every[:4]
    assert positions(source.read(EventFilter(types=(history.topic("Dog.TrickAdded"),)))) == tricks
    assert (
        positions(
            source.read(
                EventFilter(types=(history.topic("Dog.TrickAdded"),)), backwards=True, limit=2
            )
        )
        == tricks[::-1][:2]
    )
    assert positions(source.read(EventFilter(stream_id=history.fido))) == fido
    assert positions(source.read(EventFilter(stream_id="tag-blue"))) == by_stream["tag-blue"]
    assert positions(source.read(EventFilter(stream_id=str(uuid.uuid4())))) == []
    assert positions(source.read(EventFilter(stream_id=history.fido.replace("-", "")))) == []
    assert positions(source.read(EventFilter(category=history.fido[:8]))) == fido
    assert positions(source.read(EventFilter(category="tag"))) == by_stream["tag-blue"]
    assert positions(source.read(EventFilter(stream_prefix="tag-b"))) == by_stream["tag-blue"]
    since, until = times[every[2]], times[every[5]]
    assert positions(source.read(EventFilter(since=since, until=until))) == every[2:6]
    assert positions(source.read(EventFilter(until=until), backwards=True)) == every[:6][::-1]
    rex_registered = next(e[0] for e in history.events if e[1] == history.rex)
    assert positions(source.read(EventFilter(text="rex"))) == [rex_registered]
    beg = [e.position for e in source.read() if e.data.get("trick") == "beg"]
    assert positions(source.read(EventFilter(text="BEG"))) == beg
    assert positions(source.read(EventFilter(correlation_id="x"))) == []

    raw = list(source.iter_raw(EventFilter(stream_id=history.fido), backwards=True, limit=2))
    assert [r.decode() for r in raw] == list(
        source.read(EventFilter(stream_id=history.fido), backwards=True, limit=2)
    )
    assert orjson.loads(raw[0].data)["trick"] == "stay" and raw[0].metadata == "{}"

    assert [e.version for e in source.read_stream(history.fido)] == [1, 2, 3, 4]
    assert [e.version for e in source.read_stream(history.fido, from_version=2)] == [2, 3, 4]
    assert [e.version for e in source.read_stream(history.fido, backwards=True)] == [4, 3, 2, 1]
    assert [
        e.version for e in source.read_stream(history.fido, from_version=2, backwards=True)
    ] == [2, 1]
    assert [e.version for e in source.read_stream(history.fido, limit=3)] == [1, 2, 3]
    assert [e.position for e in source.read_stream(history.fido)] == fido
    assert list(source.read_stream("nobody")) == []

    for got in source.read():
        assert source.event_by_id(got.event_id) == got
    assert source.event_by_id(str(uuid.uuid4())) is None
    assert source.event_by_id("not-a-uuid") is None

    names = sorted(by_stream, key=lambda name: name.encode())
    listed = list(source.list_streams())
    assert [info.stream_id for info in listed] == names
    paged, after = [], None
    while True:
        page = list(source.list_streams(after=after, limit=1))
        if not page:
            break
        paged += page
        after = page[-1].stream_id
    assert paged == listed
    assert [i.stream_id for i in source.list_streams(prefix="tag")] == ["tag-blue"]
    assert [i.stream_id for i in source.list_streams(category=history.rex[:8])] == [history.rex]
    assert list(source.list_streams(limit=0)) == []
    info = source.stream_info(history.fido)
    assert info is not None and info in listed
    assert (info.version, info.event_count, info.first_position, info.last_position) == (
        4,
        len(fido),
        fido[0],
        fido[-1],
    )
    assert (info.first_recorded_at, info.last_recorded_at) == (times[fido[0]], times[fido[-1]])
    assert info.category == history.fido[:8]
    assert source.stream_info("nobody") is None

    assert source.head_position() == every[-1]
    for position in every:
        assert source.position_at(times[position]) == position
    assert source.position_at(times[every[0]] - timedelta(microseconds=1)) == 0
    assert source.position_at(times[every[-1]] + timedelta(days=1)) == every[-1]

    assert source.count() == len(every)
    assert source.count(EventFilter(types=(history.topic("Dog.TrickAdded"),))) == len(tricks)
    assert source.count(EventFilter(stream_id=history.fido, from_position=fido[1])) == 3
    assert source.count(EventFilter(text="rex")) == 1
    assert source.count(EventFilter(category="tag")) == 1


def test_every_read_shape_crossing_pages(plain_store: History, small_pages: None) -> None:
    before = digest(plain_store.path)  # type: ignore[arg-type]
    with open_store(plain_store.url, read_only=True) as source:
        assert isinstance(source, EventsourcingSource)
        assert_read_shapes(source, plain_store)
        report = source.check()
        assert report.ok, report
        assert (report.events, report.head, report.streams) == (8, 8, 3)
        assert report.details["position_gaps"] == 0
    assert digest(plain_store.path) == before  # type: ignore[arg-type]


def test_event_ids_found_after_the_first_scan_extends_past_it(tmp_path: Path) -> None:
    history = sqlite_history(tmp_path / "dogs.db")
    with open_store(history.url, read_only=True) as source:
        first = next(source.read())
        assert source.event_by_id(first.event_id) == first  # the map is built here
        app = DogSchool(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(history.path)}
        )
        try:
            app.save(Dog("Late"))
        finally:
            app.close()
        late = next(source.read(backwards=True, limit=1))
        assert late.data["name"] == "Late" and late.position == 9
        assert source.event_by_id(late.event_id) == late


def gapped_copy(history: History, tmp_path: Path, *rowids: int) -> str:
    copy = tmp_path / "gaps.db"
    shutil.copy(history.path, copy)  # type: ignore[arg-type]
    conn = sqlite3.connect(copy)
    with conn:
        conn.executemany("DELETE FROM stored_events WHERE rowid = ?", [(r,) for r in rowids])
    conn.close()
    return f"eventsourcing+sqlite:///{copy}"


def test_positions_with_gaps(plain_store: History, tmp_path: Path, small_pages: None) -> None:
    # rex's first event (4) and the tag's only event (7): versions stay contiguous
    # from each stream's first stored event
    url = gapped_copy(plain_store, tmp_path, 4, 7)
    with open_store(url, read_only=True) as source:
        assert isinstance(source, EventsourcingSource)
        assert positions(source.read()) == [1, 2, 3, 5, 6, 8]
        assert positions(source.read(backwards=True, limit=4)) == [8, 6, 5, 3]
        assert positions(source.read(EventFilter(from_position=4))) == [5, 6, 8]
        assert positions(source.read(EventFilter(from_position=7), backwards=True)) == [
            6,
            5,
            3,
            2,
            1,
        ]
        assert source.position_at(plain_store.at(4)[4]) == 3
        assert source.position_at(plain_store.at(7)[4]) == 6
        assert source.head_position() == 8 and source.count() == 6
        rex = source.stream_info(plain_store.rex)
        assert rex is not None
        assert (rex.version, rex.event_count, rex.first_position) == (3, 2, 5)
        assert [e.version for e in source.read_stream(plain_store.rex)] == [2, 3]
        assert source.stream_info("tag-blue") is None
        last = next(source.read(backwards=True, limit=1))
        assert source.event_by_id(last.event_id) == last
        report = source.check()
        assert report.ok, report
        assert report.details["position_gaps"] == 2 and report.head == 8 and report.events == 6


def test_check_names_a_stream_whose_versions_have_a_hole(
    plain_store: History, tmp_path: Path
) -> None:
    url = gapped_copy(plain_store, tmp_path, 2)  # fido's version 2
    with open_store(url, read_only=True) as source:
        report = source.check()
    assert not report.ok
    assert report.problems == ("1 stream(s) have non-contiguous versions",)
    assert report.details["streams_with_version_gaps"] == [
        {"stream_id": plain_store.fido, "events": 3, "min_version": 1, "max_version": 4}
    ]


# -- opening, writing, closing ---------------------------------------------------------------


def test_a_missing_file_is_not_found_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    with pytest.raises(StoreNotFound) as missing:
        open_store(f"eventsourcing+sqlite:///{path}", read_only=True)
    assert "\n" not in str(missing.value) and str(path) in str(missing.value)
    assert not path.exists()


def test_a_sqlite_file_without_stored_events_is_not_an_event_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (x)")
    conn.close()
    before = digest(path)
    with pytest.raises(NotAnEventStore) as refused:
        open_store(f"eventsourcing+sqlite:///{path}", read_only=True)
    assert "\n" not in str(refused.value) and "stored_events" in str(refused.value)
    assert digest(path) == before


def test_a_relative_path_is_taken_from_the_working_folder(
    plain_store: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(plain_store.path, tmp_path / "here.db")  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path)
    with open_store("eventsourcing+sqlite:///here.db", read_only=True) as source:
        assert source.head_position() == 8


def test_every_write_is_refused(plain_store: History) -> None:
    before = digest(plain_store.path)  # type: ignore[arg-type]
    with open_store(plain_store.url, read_only=True) as source:
        with pytest.raises(SourceReadOnly):
            source.append_to_stream(plain_store.fido, [NewEvent("Dog.TrickAdded")])
        with pytest.raises(SourceReadOnly):
            source.import_records([])
        with pytest.raises(SourceReadOnly):
            source.transaction()
        with pytest.raises(SourceReadOnly):
            source.update_index()
    with pytest.raises(SourceReadOnly):
        open_store(plain_store.url, read_only=False)
    assert digest(plain_store.path) == before  # type: ignore[arg-type]


def test_interrupt_cancels_until_resumed_and_close_is_final(
    plain_store: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = open_store(plain_store.url, read_only=True)
    source.interrupt()
    with pytest.raises(Cancelled):
        list(source.read())
    source.resume()
    assert source.head_position() == 8
    source.close()
    connects: list[object] = []
    real_connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda *a, **k: connects.append(a) or real_connect(*a, **k)
    )
    calls = [
        lambda: list(source.read()),
        lambda: list(source.iter_raw()),
        lambda: list(source.read_stream(plain_store.fido)),
        lambda: source.event_by_id(str(uuid.uuid4())),
        lambda: source.stream_info(plain_store.fido),
        lambda: list(source.list_streams()),
        source.head_position,
        lambda: source.position_at(EPOCH),
        source.check,
        source.count,
    ]
    for call in calls:
        with pytest.raises(StoreClosed):
            call()
    assert connects == []
    source.close()  # again: nothing


# -- through the workspace and the CLI -------------------------------------------------------


def test_the_workspace_reads_it_through_its_events_service(plain_store: History) -> None:
    with Workspace.open(plain_store.url, load_plugins=False) as workspace:
        assert workspace.read_only
        events = list(workspace.events.read())
        assert positions(events) == list(range(1, 9))
        assert workspace.events.event_by_id(events[3].event_id) == events[3]
        assert [i.stream_id for i in workspace.events.streams(prefix="tag")] == ["tag-blue"]
        assert workspace.events.head_position() == 8
        assert workspace.events.event_at(5) == events[4]
        assert workspace.events.check().ok
        lines = list(workspace.events.export_lines(EventFilter(stream_id="tag-blue")))
        assert orjson.loads(lines[0])["data"]["label"] == "blue"


def run_cli(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsysbinary.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err.decode()


def test_the_cli_reads_lists_exports_and_checks_it_and_refuses_append(
    plain_store: History, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    url = plain_store.url
    code, out, err = run_cli(capsysbinary, "--store", url, "read", "--limit", "2", "--backwards")
    assert (code, err) == (0, "")
    assert [orjson.loads(line)["position"] for line in out.splitlines()] == [8, 7]
    code, out, _ = run_cli(capsysbinary, "--store", url, "streams")
    listed = {orjson.loads(line)["stream_id"]: orjson.loads(line) for line in out.splitlines()}
    assert code == 0
    assert list(listed) == sorted(listed, key=str.encode)
    counts = {name: info["event_count"] for name, info in listed.items()}
    assert counts == {plain_store.fido: 4, plain_store.rex: 3, "tag-blue": 1}
    code, out, _ = run_cli(
        capsysbinary, "--store", url, "export", "--type", plain_store.topic("Tag.Created")
    )
    exported = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and [e["stream_id"] for e in exported] == ["tag-blue"]
    assert exported[0]["event_id"] == str(uuid.uuid5(EVENT_ID_NAMESPACE, "tag-blue:1"))
    code, out, _ = run_cli(capsysbinary, "--store", url, "check")
    assert code == 0 and orjson.loads(out)["ok"] is True
    before = digest(plain_store.path)  # type: ignore[arg-type]
    code, out, err = run_cli(capsysbinary, "--store", url, "append", plain_store.fido, "A")
    assert code == 5 and out == b""
    assert len(err.splitlines()) == 1 and "only reads it" in err
    assert digest(plain_store.path) == before  # type: ignore[arg-type]


# -- PostgreSQL --------------------------------------------------------------------------------


@dataclass
class PgServer:
    admin: Any
    schema: str
    url: str  # the source's URL, searching the test's schema

    def history(
        self, name: str, settings: dict[str, str] | None = None, *, text_ids: bool = True
    ) -> History:
        school = type(name, (DogSchool,), {})
        app = school(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": "test",
                "POSTGRES_HOST": "127.0.0.1",
                "POSTGRES_PORT": "5432",
                "POSTGRES_USER": "postgres",
                "POSTGRES_PASSWORD": "",
                "POSTGRES_SCHEMA": self.schema,
                "ORIGINATOR_ID_TYPE": "text" if text_ids else "uuid",
            }
            | (settings or {})
        )
        try:
            fido, rex = write_history(app, text_ids=text_ids)
            view = library_view(app)
        finally:
            app.close()
        return History(self.url, None, fido, rex, view)


@pytest.fixture
def pg() -> Iterator[PgServer]:
    if not PG_URL:
        pytest.skip("EVENTSCOPE_TEST_PG_URL is not set: no PostgreSQL server to write to")
    schema = f"es_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).set(drivername="eventsourcing+postgresql")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield PgServer(admin, schema, url.render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_postgres_the_only_apps_table_is_found_and_read(pg: PgServer, small_pages: None) -> None:
    history = pg.history(f"Dogs{uuid.uuid4().hex[:6]}")
    with open_store(history.url, read_only=True) as source:
        assert isinstance(source, EventsourcingSource)
        assert_maps_the_history(source, history)
        assert_read_shapes(source, history)
        assert source.check().ok


def test_postgres_uuid_originator_ids(pg: PgServer, small_pages: None) -> None:
    history = pg.history("Uuids", text_ids=False)  # the library's default column type
    with pg.admin.connect() as conn:
        kind = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = :s "
                "AND table_name = 'uuids_events' AND column_name = 'originator_id'"
            ),
            {"s": pg.schema},
        ).scalar_one()
    assert kind == "uuid"
    with open_store(pg.url, read_only=True) as source:
        events = list(source.read())
        assert [(e.position, e.stream_id, e.version, e.type, e.recorded_at) for e in events] == (
            history.events
        )
        assert positions(source.read(EventFilter(stream_id=history.rex), backwards=True)) == [
            6,
            5,
            4,
        ]
        assert list(source.read(EventFilter(stream_id="tag-blue"))) == []
        assert list(source.read_stream(history.fido.replace("-", ""))) == []
        assert [e.version for e in source.read_stream(history.fido, from_version=3)] == [3, 4]
        assert [i.stream_id for i in source.list_streams()] == sorted([history.fido, history.rex])
        assert [i.stream_id for i in source.list_streams(category=history.rex[:8])] == [history.rex]
        assert source.event_by_id(events[5].event_id) == events[5]
        info = source.stream_info(history.rex)
        assert info is not None and (info.version, info.event_count) == (3, 3)
        assert source.check().ok


def test_postgres_compressed_encrypted_with_the_app_prefix(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"Dogs{uuid.uuid4().hex[:6]}"
    settings = {f"{name.upper()}_COMPRESSOR_TOPIC": ZLIB, f"{name.upper()}_CIPHER_KEY": KEY}
    history = pg.history(name, settings)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    with open_store(history.url, read_only=True) as source:  # the app's name: its table's
        assert_maps_the_history(source, history)  # type: ignore[arg-type]
    monkeypatch.setenv(f"{name.upper()}_CIPHER_KEY", OTHER_KEY)
    with open_store(history.url, read_only=True) as source:
        assert all("decryption failed" in e.data["$undecodable"] for e in source.read())


def test_postgres_several_apps_need_app(pg: PgServer) -> None:
    first = pg.history("Kennel")
    pg.history("Shelter")
    with pytest.raises(NotAnEventStore) as several:
        open_store(pg.url, read_only=True)
    message = str(several.value)
    assert "kennel_events" in message and "shelter_events" in message and "?app=" in message
    with pytest.raises(NotAnEventStore) as wrong:
        open_store(f"{pg.url}&app=Pound", read_only=True)
    assert "pound_events" in str(wrong.value) and "\n" not in str(wrong.value)
    with open_store(f"{pg.url}&app=Kennel", read_only=True) as source:
        assert positions(source.read()) == [e[0] for e in first.events]


def test_postgres_positions_with_gaps(pg: PgServer, small_pages: None) -> None:
    history = pg.history("Gappy")
    with pg.admin.connect() as conn:
        conn.execute(
            text(f'DELETE FROM "{pg.schema}".gappy_events WHERE notification_id IN (4, 7)')
        )
    with open_store(pg.url, read_only=True) as source:
        assert positions(source.read()) == [1, 2, 3, 5, 6, 8]
        assert positions(source.read(backwards=True, limit=2)) == [8, 6]
        assert source.position_at(history.at(4)[4]) == 3
        report = source.check()
        assert report.ok and report.details["position_gaps"] == 2


def test_postgres_with_no_recorder_table_is_not_an_event_store(pg: PgServer) -> None:
    with pytest.raises(NotAnEventStore) as refused:
        open_store(pg.url, read_only=True)
    assert "no eventsourcing recorder table" in str(refused.value)


def test_an_unreachable_server_hides_the_password() -> None:
    url = "eventsourcing+postgresql://postgres:sekret@127.0.0.1:1/test?app=dogs"
    with pytest.raises(StoreUnreachable) as unreachable:
        open_store(url, read_only=True)
    message = str(unreachable.value)
    assert "sekret" not in message and "\n" not in message and "127.0.0.1" in message


def test_import_from_rebases_versions_to_0_and_keeps_the_source_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    history = sqlite_history(tmp_path / "dogs.db", {"CIPHER_KEY": KEY})
    target = str(tmp_path / "copy.db")

    code, _out, err = run_cli(capsysbinary, "--store", target, "import-from", history.url)
    assert code == 1 and "cannot be decoded" in err and err.count("\n") == 1  # no key: refused
    with Workspace.open(target) as copy:
        assert copy.events.head_position() == 0  # nothing half-copied

    monkeypatch.setenv("CIPHER_KEY", KEY)
    code, out, err = run_cli(capsysbinary, "--store", target, "import-from", history.url)
    assert code == 0, err
    assert orjson.loads(out) == {"appended": 8, "duplicates": 0}
    with open_store(history.url, read_only=True) as source:
        originals = list(source.read())
    with Workspace.open(target) as copy:
        copied = list(copy.events.read())
        assert [e.event_id for e in copied] == [e.event_id for e in originals]
        assert [(e.type, e.data, e.recorded_at) for e in copied] == [
            (e.type, e.data, e.recorded_at) for e in originals
        ]
        fido = list(copy.events.read_stream(history.fido))
        assert [e.version for e in fido] == [0, 1, 2, 3]  # the source's 1..4, rebased
        assert [e.metadata["source_version"] for e in fido] == [1, 2, 3, 4]
        assert [e.metadata["source_position"] for e in copied] == [e[0] for e in history.events]
        assert copy.events.check().ok
    code, out, _err = run_cli(capsysbinary, "--store", target, "import-from", history.url)
    assert orjson.loads(out) == {"appended": 0, "duplicates": 0}


def test_a_search_looked_through_event_by_event_reports_its_progress(
    plain_store: History, small_pages: None
) -> None:
    reports: list[tuple[int, int]] = []
    job = Job(lambda done, total: reports.append((done, total)))
    with open_store(plain_store.url, read_only=True) as source, job.running():
        head = source.head_position()
        found = list(source.read(EventFilter(text="roll")))
        plain = len(reports)
        list(source.read(EventFilter(from_position=2)))  # answered in SQL: no scan

    assert [e.data.get("trick") for e in found] == ["roll"]
    assert plain > 1 and len(reports) == plain  # a report a page, for the scan only
    assert {total for _, total in reports} == {head}
    dones = [done for done, _ in reports]
    assert dones == sorted(dones) and dones[-1] == head


@pytest.mark.parametrize("before", [None, 8, 5, 2])
@pytest.mark.parametrize("limit", [None, 1, 2])
def test_recent_streams_are_what_the_ports_full_listing_sorts(
    plain_store: History, small_pages: None, before: int | None, limit: int | None
) -> None:
    with open_store(plain_store.url, read_only=True) as source:
        expected = list(EventStore.recent_streams(source, before_position=before, limit=limit))
        got = list(source.recent_streams(before_position=before, limit=limit))

    assert got == expected
    if before is None and limit is None:
        assert got[0].stream_id == plain_store.fido  # fido's trick came last
