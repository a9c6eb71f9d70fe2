"""``Writing.import_from`` copies a store read through the port into this one (issue 17,
point 4). The source here is an Eventscope SQLite store read through the same port a
foreign source implements; tests/core/sources run it on the other tools' real stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ImportFailed
from core.events import NewEvent
from core.sources.base import UNDECODABLE
from core.store import SqlEventStore
from core.workspace import Workspace


def _seed(source: SqlEventStore, rounds: int, start: int = 0) -> None:
    for n in range(start, start + rounds):
        for stream in ("dog-1", "dog-2", "cat-9"):
            source.append_to_stream(stream, [NewEvent("Trick", {"n": n, "who": stream})])


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SqlEventStore]:
    with SqlEventStore.open(tmp_path / "source.db") as store:
        _seed(store, 4)
        yield store


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(str(tmp_path / "target.db"), read_only=False, load_plugins=False) as ws:
        yield ws


def test_every_event_is_copied_in_order_with_its_id_time_and_source_place(
    source: SqlEventStore, target: Workspace
) -> None:
    result = target.writing.import_from(source, chunk=5)

    copied = list(target.events.read())
    originals = list(source.read())
    assert result.appended == len(originals) == 12 and result.duplicates == 0
    assert [e.event_id for e in copied] == [e.event_id for e in originals]
    assert [(e.stream_id, e.type, e.data, e.recorded_at) for e in copied] == [
        (e.stream_id, e.type, e.data, e.recorded_at) for e in originals
    ]
    for event, original in zip(copied, originals, strict=True):
        assert event.metadata["source_position"] == original.position
        assert event.metadata["source_version"] == original.version
    assert [e.version for e in target.events.read_stream("dog-2")] == [0, 1, 2, 3]
    assert target.events.check().ok


def test_a_rerun_appends_only_what_is_new(source: SqlEventStore, target: Workspace) -> None:
    target.writing.import_from(source)
    assert target.writing.import_from(source).appended == 0
    _seed(source, 2, start=4)

    again = target.writing.import_from(source)

    assert (again.appended, again.duplicates) == (6, 0)  # it starts after the last copied
    assert [e.data["n"] for e in target.events.read_stream("cat-9")] == list(range(6))
    assert [e.metadata["source_version"] for e in target.events.read_stream("cat-9")] == list(
        range(6)
    )


def test_a_rerun_finds_where_the_last_one_stopped_past_events_appended_since(
    source: SqlEventStore, target: Workspace
) -> None:
    target.writing.import_from(source)
    target.writing.append("note-1", "Noted", {})  # the last event carries no source place
    for _ in range(2):
        target.writing.append("note-1", "Noted", {})

    again = target.writing.import_from(source)

    assert (again.appended, again.duplicates) == (0, 0)  # found 3 events back
    assert target.events.head_position() == 15


def test_an_undecodable_event_stops_the_copy_at_its_position_keeping_earlier_chunks(
    source: SqlEventStore, target: Workspace
) -> None:
    source.append_to_stream("dog-1", [NewEvent("Trick", {UNDECODABLE: "no cipher key"})])
    _seed(source, 1, start=9)

    with pytest.raises(ImportFailed) as failed:
        target.writing.import_from(source, chunk=5)

    assert failed.value.line == 13 and "no cipher key" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert target.events.head_position() == 10  # two chunks of 5 committed, not the third


def test_a_system_stream_of_the_source_is_refused(tmp_path: Path, target: Workspace) -> None:
    with SqlEventStore.open(tmp_path / "system.db") as source:
        source.append_to_stream("$audit", [NewEvent("Anything", {})])

        with pytest.raises(ImportFailed, match="system stream"):
            target.writing.import_from(source)
    assert target.events.head_position() == 0
