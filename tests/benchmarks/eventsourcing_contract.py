"""The eventsourcing library's recorder contract tests, run on Eventscope's SQLite store.

A thin adapter maps the library's recorder onto the store port (originator id = stream
id, topic = type, the state base64 in ``data``, the originator version in ``metadata``),
and the library's own ``AggregateRecorderTestCase`` and ``ApplicationRecorderTestCase``
run against it, side by side with the library's SQLite recorders. The library is only
in the ``bench`` extra, so this runs from ``make bench``, not from the default suite::

    .venv/bin/python -m unittest tests.benchmarks.eventsourcing_contract
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import unittest
import uuid
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any, Final

try:
    import eventsourcing.tests.persistence as contract
    from eventsourcing.persistence import (
        AggregateRecorder,
        ApplicationRecorder,
        IntegrityError,
        Notification,
        StoredEvent,
    )
    from eventsourcing.sqlite import (
        SQLiteAggregateRecorder,
        SQLiteApplicationRecorder,
        SQLiteDatastore,
    )
except ImportError as error:  # the bench extra is not installed: a skip, not a failure
    raise unittest.SkipTest(f"eventsourcing[crypto] is not importable: {error}") from None

from core.errors import DuplicateEventId, WrongExpectedVersion
from core.events import NO_STREAM, ExpectedVersion, NewEvent, RecordedEvent
from core.store import EventFilter, SqlEventStore

RAM_DISK: Final = Path("/dev/shm")


class EventscopeRecorder(ApplicationRecorder):
    """The library's application recorder over an Eventscope store.

    Versions in Eventscope start at 0 and are contiguous; an originator's versions may
    start anywhere, so the first one is kept in each event's metadata and the exact
    expected version is derived from it. A conflict is the library's IntegrityError.
    One call's events for an originator must be adjacent in the call (the version is
    read outside the write transaction), as every call in the contract tests is.
    """

    def __init__(self, store: SqlEventStore, *, notification_ids: bool = True) -> None:
        self.store = store
        self.notification_ids = notification_ids

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Append the events, grouped by originator, in one transaction."""
        positions: list[int] = []
        try:
            with self.store.transaction() as unit:
                for owner, group in groupby(stored_events, key=lambda e: e.originator_id):
                    events = list(group)
                    stream_id = str(owner)
                    expected, first = self._expected(stream_id, events[0].originator_version)
                    versions = [e.originator_version for e in events]
                    if versions != list(range(versions[0], versions[0] + len(versions))):
                        raise IntegrityError(f"{stream_id}: versions {versions} not contiguous")
                    result = unit.append_to_stream(
                        stream_id,
                        [
                            NewEvent(
                                e.topic,
                                {"state": base64.b64encode(e.state).decode()},
                                {"first_version": first, "version": e.originator_version},
                            )
                            for e in events
                        ],
                        expected,
                    )
                    positions.extend(range(result.first_position, result.last_position + 1))
        except (WrongExpectedVersion, DuplicateEventId) as error:
            raise IntegrityError(str(error)) from error
        return positions if self.notification_ids else None

    def _expected(self, stream_id: str, version: int) -> tuple[ExpectedVersion, int]:
        """The expected version of an append starting at originator ``version``, and the
        originator's first version."""
        first = next(self.store.read_stream(stream_id, limit=1), None)
        if first is None:
            return NO_STREAM, version
        base = int(first.metadata["first_version"])
        if version <= base:
            raise IntegrityError(f"{stream_id}: version {version} is already recorded")
        return ExpectedVersion.exact(version - base - 1), base

    def select_events(
        self,
        originator_id: uuid.UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """An originator's events by version, ``gt < version <= lte``."""
        found: list[StoredEvent] = []
        for event in self.store.read_stream(str(originator_id), backwards=desc):
            version = int(event.metadata["version"])
            if (gt is not None and version <= gt) or (lte is not None and version > lte):
                continue
            found.append(_stored(event, originator_id))
            if limit is not None and len(found) >= limit:
                break
        return found

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """Events by position from ``start`` up to ``stop`` (inclusive), of ``topics``."""
        if start is not None and not inclusive_of_start:
            start += 1
        where = EventFilter(types=tuple(topics), from_position=start, to_position=stop)
        return [
            Notification(
                id=e.position,
                originator_id=uuid.UUID(e.stream_id),
                originator_version=int(e.metadata["version"]),
                topic=e.type,
                state=base64.b64decode(e.data["state"]),
            )
            for e in self.store.read(where, limit=limit)
        ]

    def max_notification_id(self) -> int | None:
        """The head position, None when empty."""
        return self.store.head_position() or None

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Any:
        """Not offered (the contract's subscription test is optional)."""
        raise NotImplementedError


def _stored(event: RecordedEvent, owner: uuid.UUID | str) -> StoredEvent:
    return StoredEvent(
        originator_id=owner,
        originator_version=int(event.metadata["version"]),
        topic=event.type,
        state=base64.b64decode(event.data["state"]),
    )


class _RamDiskFiles(unittest.TestCase):
    """A fresh folder on the RAM disk per test, removed after with what was opened."""

    def setUp(self) -> None:
        super().setUp()
        base = RAM_DISK if RAM_DISK.is_dir() else None
        self.folder = Path(tempfile.mkdtemp(prefix="eventscope-contract-", dir=base))
        self.addCleanup(shutil.rmtree, self.folder, True)

    def open_store(self) -> SqlEventStore:
        store = SqlEventStore.open(self.folder / "eventscope.db")
        self.addCleanup(store.close)
        return store

    def open_datastore(self) -> SQLiteDatastore:
        datastore = SQLiteDatastore(str(self.folder / "eventsourcing.db"))
        self.addCleanup(datastore.close)
        return datastore


class EventscopeAggregateRecorderTest(_RamDiskFiles, contract.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return EventscopeRecorder(self.open_store(), notification_ids=False)


class EventscopeApplicationRecorderTest(_RamDiskFiles, contract.ApplicationRecorderTestCase):
    def create_recorder(self) -> ApplicationRecorder:
        return EventscopeRecorder(self.open_store())


class SQLiteAggregateRecorderTest(_RamDiskFiles, contract.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        recorder = SQLiteAggregateRecorder(self.open_datastore())
        recorder.create_table()
        return recorder


class SQLiteApplicationRecorderTest(_RamDiskFiles, contract.ApplicationRecorderTestCase):
    def create_recorder(self) -> ApplicationRecorder:
        recorder = SQLiteApplicationRecorder(self.open_datastore())
        recorder.create_table()
        return recorder


def load_tests(
    loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: str | None
) -> unittest.TestSuite:
    """Only this module's concrete cases (not the library's abstract ones)."""
    suite = unittest.TestSuite()
    for case in (
        EventscopeAggregateRecorderTest,
        EventscopeApplicationRecorderTest,
        SQLiteAggregateRecorderTest,
        SQLiteApplicationRecorderTest,
    ):
        suite.addTests(loader.loadTestsFromTestCase(case))
    return suite
