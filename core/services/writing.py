"""The writing service: appends, imports, the search index, demo histories, the
writable switch, and operator actions committed with their ``$audit`` event."""

from __future__ import annotations

import getpass
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from core.demo import write_demo
from core.errors import EventscopeError, ImportFailed, InvalidEvent, StoreFull
from core.events import ANY, ExpectedVersion, NewEvent, RecordedEvent, to_micros
from core.jobs import checkpoint
from core.services.handle import OpenStore, StoreHandle
from core.services.plugins import Plugins
from core.sources.base import UNDECODABLE, ForeignSource, read_only_error
from core.store import EventFilter, EventStore, ImportRecord, ImportResult, WriteTransaction
from core.store.jsonlines import parse_import_lines
from core.store.port import prepare_events
from core.store.sql import display_location
from core.store.validation import (
    SYSTEM_STREAM_PREFIX,
    refuse_system_stream,
    validate_stream_id,
)

__all__ = [
    "AUDIT_STREAM",
    "IMPORT_CHUNK",
    "AuditedAction",
    "UnknownDemo",
    "Writing",
    "operator_name",
]

#: Where every write an operator makes is recorded.
AUDIT_STREAM: Final = "$audit"
#: Events ``import_from`` commits at a time.
IMPORT_CHUNK: Final = 50_000
#: How far back from the head ``import_from`` looks for where its last run stopped.
_SOURCE_LOOKBACK: Final = 10_000
_log = logging.getLogger(__name__)


def operator_name() -> str:
    """Who is at the console or the command line, for the audit trail."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name nor passwd entry (some containers)
        return "unknown"


class UnknownDemo(EventscopeError):
    """No loaded plugin contributes that demo history."""


@dataclass(slots=True)
class AuditedAction:
    """An operator action in progress: its transaction, the store, and the audit
    event's data (the action may add to it before it commits)."""

    unit: WriteTransaction
    opened: OpenStore
    data: dict[str, Any] = field(default_factory=dict)


class Writing:
    """Everything that writes to the log.

    Args:
        handle: the store.
        plugins: for demo histories.
    """

    def __init__(self, handle: StoreHandle, plugins: Plugins) -> None:
        self._handle = handle
        self._plugins = plugins

    def append(
        self,
        stream_id: str,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: ExpectedVersion | int | str | None = ANY,
        event_id: str | None = None,
    ) -> RecordedEvent:
        """Append one event and return it as recorded (the stored one for a re-send).

        Raises:
            InvalidEvent: as the store's append, and for a system stream (``$...``): only
                Eventscope writes those.
        """
        refuse_system_stream(validate_stream_id(stream_id))
        new = (
            NewEvent(event_type, data or {}, metadata or {}, event_id)
            if event_id is not None
            else NewEvent(event_type, data or {}, metadata or {})
        )
        with self._handle.use() as opened:
            result = opened.store.append_to_stream(stream_id, [new], expected_version)
        return result.events[0]

    def import_lines(self, lines: Iterable[bytes | str]) -> ImportResult:
        """Import JSON lines all-or-nothing (see ``core.store.jsonlines``), then index them
        for search (an import is bulk work; its caller waits for the index too).

        Events of system streams (``$audit``, ...) are imported only into an empty store
        (restoring an export, whose round trip keeps every field) or as lines already
        stored (a re-import): no import adds a record to an existing audit trail.

        Raises:
            ImportFailed: the first bad line (nothing is imported).
        """
        with self._handle.use() as opened:
            store = opened.store
            restoring = store.head_position() == 0

            def guarded(records: Iterable[ImportRecord]) -> Iterator[ImportRecord]:
                for record in records:
                    if (
                        not restoring
                        and record.stream_id.startswith(SYSTEM_STREAM_PREFIX)
                        and not _already_stored(store, record)
                    ):
                        raise ImportFailed(
                            record.line,
                            f"stream_id: {record.stream_id!r} is a system stream: only "
                            "Eventscope writes those (an export's are imported into an "
                            "empty store only, as a restore)",
                        )
                    yield record

            result = store.import_records(guarded(parse_import_lines(lines)))
            if result.appended:
                _index_after_commit(store)
        return result

    def import_from(self, source: EventStore, *, chunk: int = IMPORT_CHUNK) -> ImportResult:
        """Copy another tool's store (``core.sources``) into this one, in its position
        order, then index what was appended.

        Event ids are kept as the source gives them, so a re-run recognises what it copied
        already; versions start at 0 in each stream (the store assigns them in order) and
        the source's own place is kept in metadata, ``source_position`` and
        ``source_version``. A run starts after the highest ``source_position`` already
        here, and commits every ``chunk`` events: a run stopped midway keeps the chunks
        committed, and the next one goes on from there.

        Raises:
            ImportFailed: ``line N`` is the source position of the first event that cannot
                be copied (undecodable, a system stream, or an id stored elsewhere);
                what earlier chunks committed stays.
        """
        with self._handle.use() as opened:
            store = opened.store
            start = _last_source_position(store) + 1
            appended = duplicates = 0
            records: list[ImportRecord] = []
            for event in source.read(EventFilter(from_position=start)):
                records.append(_source_record(event))
                if len(records) >= chunk:
                    done = store.import_records(records)
                    appended, duplicates = appended + done.appended, duplicates + done.duplicates
                    records = []
                    checkpoint(event.position, source.head_position())
            if records:
                done = store.import_records(records)
                appended, duplicates = appended + done.appended, duplicates + done.duplicates
            if appended:
                _index_after_commit(store)
        return ImportResult(appended, duplicates)

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        """Index events for payload search and correlation lookups; returns how many."""
        with self._handle.use() as opened:
            return opened.store.update_index(batch=batch, limit=limit)

    def write_demo(self, name: str = "orders", *, orders: int, seed: int) -> ImportResult:
        """Append a plugin's deterministic demo history (all or nothing), then index it.

        Raises:
            UnknownDemo: no loaded plugin contributes ``name``.
        """
        demos = self._plugins.registry.demos
        demo = demos.get(name)
        if demo is None:
            known = ", ".join(sorted(demos)) or "none"
            raise UnknownDemo(f"no demo history called {name!r} (loaded: {known})")
        with self._handle.use() as opened:
            result = write_demo(opened.store, demo.generate(orders=orders, seed=seed))
            _index_after_commit(opened.store)
        return result

    # -- operator actions -------------------------------------------------------------------

    @contextmanager
    def audited(self, event_type: str, data: Mapping[str, Any]) -> Iterator[AuditedAction]:
        """An operator action and its ``$audit`` event, in one transaction.

        The block makes its change on ``action.unit`` (and may add to ``action.data``);
        when it ends, the audit event (``event_type``, the data and the operator) is
        appended and both commit. A block that raises leaves neither.

        The action and its audit go where the read models live: the store itself, or the
        sidecar store of another tool's store (which is never written).

        Raises:
            StoreReadOnly: the store (or the sidecar) is open read-only.
        """
        with self._handle.use() as opened, _keeper(opened).transaction() as unit:
            action = AuditedAction(unit, opened, dict(data))
            yield action
            unit.append_to_stream(
                AUDIT_STREAM, [NewEvent(event_type, {**action.data, "user": operator_name()})]
            )

    def never_writable(self) -> str | None:
        """Why the store in use can never be made writable (another tool's store, which
        Eventscope only reads), in one line; None when it can."""
        with self._handle.use() as opened:
            store = opened.store
            if isinstance(store, ForeignSource):
                return str(read_only_error(display_location(store.location), store.tool))
        return None

    def set_writable(self, writable: bool) -> None:
        """Switch the store between read-only and writable, recorded in ``$audit``.

        Entering writable mode is recorded in the new writable store before it replaces
        the read-only one: if that record fails, the store stays read-only. Leaving it is
        recorded first, and the store goes read-only even if that record fails (then the
        failure is raised after the switch).

        Raises:
            StoreUnusable: the store could not be opened again (the mode is unchanged).
            StoreBusy: running queries did not stop in time (the mode is unchanged).
        """
        if writable == (not self._handle.read_only):
            return
        if writable:
            self._handle.switch(read_only=False, prepare=record_mode_change)
            return
        try:
            with self._handle.use() as opened:
                record_mode_change(opened.store, entered=False)
        finally:
            self._handle.switch(read_only=True)

    def record_writable_start(self) -> None:
        """Record in ``$audit`` that the store was opened writable from the start
        (``gui --writable``)."""
        with self._handle.use() as opened:
            record_mode_change(opened.store, at_start=True)


def _index_after_commit(store: EventStore) -> None:
    """Index what was just committed, unless the disk is full: the events are stored (the
    caller must not hear that they were not), searches scan the ones not yet indexed, and
    the next index update covers them."""
    try:
        store.update_index()
    except StoreFull as error:
        _log.warning("the search index was not updated: %s", error)


def _keeper(opened: OpenStore) -> EventStore:
    """Where operator actions and their audit are written: the store that keeps the read
    models (the store in use, or another tool's store's sidecar: ``open_history`` chose)."""
    return opened.history.store if opened.history is not None else opened.store


def _last_source_position(store: EventStore) -> int:
    """The highest ``source_position`` an ``import_from`` left here: the last event
    carrying one, read back from the head over at most ``_SOURCE_LOOKBACK`` events (0:
    none there; a run then reads the source from its start, and what was copied before
    counts as duplicates, by event id)."""
    for event in store.read(backwards=True, limit=_SOURCE_LOOKBACK):
        position = event.metadata.get("source_position")
        if isinstance(position, int) and not isinstance(position, bool):
            return position
    return 0


def _source_record(event: RecordedEvent) -> ImportRecord:
    """An import record for an event of another tool's store (its position as the line)."""
    if UNDECODABLE in event.data:
        raise ImportFailed(
            event.position,
            f"the event cannot be decoded ({event.data[UNDECODABLE]}): give the source's "
            "settings (its cipher key, its compressor) in the environment",
        )
    if event.stream_id.startswith(SYSTEM_STREAM_PREFIX):
        raise ImportFailed(
            event.position,
            f"stream_id: {event.stream_id!r} is a system stream: only Eventscope writes those",
        )
    metadata = {
        **event.metadata,
        "source_position": event.position,
        "source_version": event.version,
    }
    try:
        (prepared,) = prepare_events([NewEvent(event.type, event.data, metadata, event.event_id)])
    except InvalidEvent as error:
        raise ImportFailed(event.position, str(error), error) from None
    return ImportRecord(
        event.position, event.stream_id, prepared, recorded_at=to_micros(event.recorded_at)
    )


def _already_stored(store: EventStore, record: ImportRecord) -> bool:
    """Whether an import line is an event the store holds already (in the same stream)."""
    stored = store.event_by_id(record.event.event_id)
    return stored is not None and stored.stream_id == record.stream_id


def record_mode_change(store: EventStore, *, entered: bool = True, at_start: bool = False) -> None:
    """Record in ``$audit`` that ``store`` became writable (``entered``) or read-only
    again: the one place the writable switch is written."""
    data: dict[str, Any] = {"store": display_location(store.location), "user": operator_name()}
    if at_start:
        data["at_start"] = True
    kind = "WritableModeEntered" if entered else "WritableModeLeft"
    store.append_to_stream(AUDIT_STREAM, [NewEvent(kind, data)])
