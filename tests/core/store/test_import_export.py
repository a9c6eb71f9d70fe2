"""Import and export of JSON lines: exact round trips, idempotent re-imports, bad lines."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from core.errors import ImportFailed, WrongExpectedVersion
from core.events import NewEvent
from core.store import EventStore, InMemoryEventStore, SqlEventStore
from core.workspace import Workspace

PAYLOADS = [
    {"amount": 129.5, "currency": "EUR"},
    {"nested": {"list": [1, 2.25, "three", None, True, {"deep": []}]}, "empty": {}},
    {"unicode": "Grüße — 東京 — 🚀", "quote": 'say "hi"\\n'},
    {"big": 2**62, "negative": -(2**62), "tiny": 1e-300, "float": 0.1},
    {},
]


def _fill(store: EventStore) -> None:
    for n, data in enumerate(PAYLOADS):
        store.append_to_stream(
            f"order-{n % 2}",
            [NewEvent(f"Type{n}", data, {"correlation_id": f"c-{n}", "schema_version": 2})],
        )
    store.append_to_stream("$audit", [NewEvent("StoreOpened", {"by": "tests"})])


def _export(store: EventStore) -> list[bytes]:
    return list(Workspace(store).events.export_lines())


def _fresh_target(backend: str, tmp_path: Path) -> EventStore:
    if backend == "memory":
        return InMemoryEventStore()
    return SqlEventStore.open(tmp_path / "copy.db")


def test_export_then_import_reproduces_every_field(
    store: EventStore, backend: str, tmp_path: Path
) -> None:
    _fill(store)
    exported = _export(store)
    target = _fresh_target(backend, tmp_path)
    result = Workspace(target).writing.import_lines(exported)
    assert (result.appended, result.duplicates) == (len(exported), 0)
    assert _export(target) == exported  # byte for byte: positions, ids, times, payloads
    assert list(target.read_all()) == list(store.read_all())
    first = orjson.loads(exported[0])
    assert set(first) == {
        "position", "stream_id", "version", "type", "data", "metadata", "event_id", "recorded_at",
    }  # fmt: skip
    target.close()


def test_reimport_appends_nothing(store: EventStore) -> None:
    _fill(store)
    exported = _export(store)
    result = Workspace(store).writing.import_lines(exported)
    assert (result.appended, result.duplicates) == (0, len(exported))
    assert _export(store) == exported


def test_import_without_ids_or_times_gets_them_from_the_store(store: EventStore) -> None:
    lines = [
        b'{"stream_id": "cart-1", "type": "ItemAdded", "data": {"sku": "a"}}',
        b"",
        b'{"stream_id": "cart-1", "type": "ItemAdded", "version": 1}',
    ]
    assert Workspace(store).writing.import_lines(lines).appended == 2
    events = list(store.read_all())
    assert [(e.version, e.data) for e in events] == [(0, {"sku": "a"}), (1, {})]
    assert events[0].event_id != events[1].event_id


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b'{"stream_id": "order-9", "type": "A", "data": {', "invalid JSON"),
        (b'{"stream_id": "order-9", "type": "A", "data": [1, 2]}', "data: must be a JSON object"),
        (b'{"stream_id": "order-9", "data": {}}', "missing type"),
        (b'{"stream_id": "order-9", "type": "A", "data": {"x": NaN}}', "invalid JSON"),
        (b'["not", "an", "object"]', "not a JSON object"),
        (b'{"stream_id": "", "type": "A"}', "stream_id"),
        (b'{"stream_id": "order-9", "type": "A", "recorded_at": "yesterday"}', "recorded_at"),
        (b'{"stream_id": "order-9", "type": "A", "dta": {}}', "unknown field"),
        (b'{"stream_id": "order-9", "type": "A", "event_id": "nope"}', "event_id"),
    ],
)
def test_a_bad_line_names_its_number_and_leaves_the_store_unchanged(
    store: EventStore, bad_line: bytes, reason: str
) -> None:
    _fill(store)
    before = _export(store)
    good = [
        orjson.dumps({"stream_id": f"fresh-{n}", "type": "Fine", "data": {"n": n}})
        for n in range(1500)  # more than one import chunk precedes the bad line
    ]
    with pytest.raises(ImportFailed) as caught:
        Workspace(store).writing.import_lines([*good, bad_line, good[0]])
    assert str(caught.value).startswith("line 1501: ")
    assert reason in str(caught.value)
    assert _export(store) == before


def test_a_version_that_is_not_the_next_one_is_a_conflict(store: EventStore) -> None:
    _fill(store)
    before = _export(store)
    lines = [b'{"stream_id": "order-0", "type": "Late", "version": 7}']
    with pytest.raises(ImportFailed) as caught:
        Workspace(store).writing.import_lines(lines)
    assert caught.value.line == 1
    assert isinstance(caught.value.cause, WrongExpectedVersion)
    assert _export(store) == before


def test_an_event_id_stored_in_another_stream_fails_the_import(store: EventStore) -> None:
    _fill(store)
    before = _export(store)
    moved = orjson.loads(before[0])
    moved["stream_id"] = "elsewhere-1"
    del moved["version"]
    with pytest.raises(ImportFailed, match="already stored"):
        Workspace(store).writing.import_lines([orjson.dumps(moved)])
    assert _export(store) == before


def test_export_of_postgres_imports_into_sqlite_identically(
    pg_location: str, tmp_path: Path
) -> None:
    source = SqlEventStore.open(pg_location)
    target = SqlEventStore.open(tmp_path / "from-pg.db")
    try:
        _fill(source)
        exported = _export(source)
        Workspace(target).writing.import_lines(exported)
        assert _export(target) == exported
    finally:
        source.close()
        target.close()


def test_imported_streams_keep_their_own_first_and_last_times(store: EventStore) -> None:
    lines = [
        b'{"stream_id": "a-1", "type": "A", "recorded_at": "2026-01-01T00:00:00Z"}',
        b'{"stream_id": "b-1", "type": "B", "recorded_at": "2026-01-02T00:00:00Z"}',
        b'{"stream_id": "a-1", "type": "A", "recorded_at": "2026-01-03T00:00:00Z"}',
        b'{"stream_id": "c-1", "type": "C", "recorded_at": "2026-01-04T00:00:00Z"}',
    ]
    Workspace(store).writing.import_lines(lines)
    spans = {
        info.stream_id: (info.first_recorded_at.day, info.last_recorded_at.day)
        for info in store.list_streams()
    }
    assert spans == {"a-1": (1, 3), "b-1": (2, 2), "c-1": (4, 4)}
    assert store.check().ok


def test_an_export_line_stays_json_whatever_a_damaged_event_id_holds() -> None:
    from core.store.jsonlines import export_line
    from core.store.port import RawEvent

    row = RawEvent(1, "s-1", 0, "A", "{}", "{}", 'ab"c\x14d', 1_700_000_000_000_000)
    assert orjson.loads(export_line(row))["event_id"] == 'ab"c\x14d'
