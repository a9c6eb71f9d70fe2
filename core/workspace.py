"""The facade that the console, the CLI and the tests use: one open store and what it answers."""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.commands.bus import CommandBus, CommandResult
from core.demo import write_demo
from core.errors import EventscopeError, StoreError, last_line
from core.events import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    category_of,
    wall_clock_micros,
)
from core.jobs import checkpoint
from core.projections.definition import DictView, Projection
from core.projections.history import (
    ACTIVE,
    CURRENT,
    FAULTED,
    PAUSED,
    RETIRED,
    HistoryStore,
    ModelStatus,
    RunRecord,
    open_history,
)
from core.projections.runner import ProjectionRunner, RunResult
from core.registry import PluginInfo, Registry
from core.store import (
    CheckReport,
    EventFilter,
    EventStore,
    ImportResult,
    SqlEventStore,
)
from core.store.jsonlines import export_line, parse_import_lines
from core.store.sql import display_location
from core.timetravel.diff import DocumentDiff, collect_diff, diff_documents, summarize_diff
from core.timetravel.lineage import (
    DocumentChange,
    EventEffect,
    apply_one_event,
    changes_by_fold,
    changes_of,
)
from core.timetravel.reference import Point, ReadModelRef
from core.timetravel.snapshots import FoldSnapshots
from core.timetravel.streams import StreamState
from core.upcasting import UpcastFailed

__all__ = [
    "AUDIT_STREAM",
    "ProjectionHandlerFailed",
    "ProjectionStateError",
    "ProjectionStatus",
    "ReadModelAt",
    "Replay",
    "UnknownDemo",
    "UpcastView",
    "WhatIf",
    "Workspace",
    "operator_name",
]

_MICROSECOND = timedelta(microseconds=1)
#: Where every write an operator makes is recorded.
AUDIT_STREAM = "$audit"
#: Runs younger than this count towards a projection's throughput.
_THROUGHPUT_WINDOW_US = 60_000_000


def operator_name() -> str:
    """Who is at the console or the command line, for the audit trail."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name nor passwd entry (some containers)
        return "unknown"


class ProjectionHandlerFailed(EventscopeError):
    """A projection's handler raised while a read model was folded for a replay."""


class ProjectionStateError(EventscopeError):
    """An operation that does not fit the projection's state (resume a running one, ...)."""


class UnknownDemo(EventscopeError):
    """No loaded plugin contributes that demo history."""


@dataclass(frozen=True, slots=True)
class UpcastView:
    """An event as stored (``raw``) and as readers see it (``current``, upcast)."""

    raw: RecordedEvent
    current: RecordedEvent
    failure: str | None = None

    @property
    def changed(self) -> bool:
        """Whether an upcaster changed the event."""
        return self.current is not self.raw


@dataclass(frozen=True, slots=True)
class Replay:
    """A read model at a point: its documents, the position it reflects, what went wrong."""

    reference: ReadModelRef
    projection: str
    position: int
    documents: dict[str, dict[str, Any]]
    upcast_failures: tuple[str, ...] = ()
    source: str = "fold"  # "history": read from the read model's history; "fold": replayed


@dataclass(frozen=True, slots=True)
class ReadModelAt:
    """A read model at a point, located but not read: which projection version, which
    position, and whether its history answers (else the log is folded)."""

    reference: ReadModelRef
    projection: type[Projection]
    position: int
    from_history: bool

    @property
    def model(self) -> str:
        """``name:version``."""
        return self.projection.reference()

    @property
    def source(self) -> str:
        """``history`` or ``fold``."""
        return "history" if self.from_history else "fold"


@dataclass(frozen=True, slots=True)
class WhatIf:
    """A projection replayed into a scratch database, compared with a live read model."""

    candidate: str  # name:version replayed
    against: str  # the live reference it was compared with
    position: int  # the point both were taken at
    diff: Mapping[str, Any]  # the contract diff from ``against`` to the candidate, or a summary

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return {
            "candidate": self.candidate,
            "against": self.against,
            "position": self.position,
            "diff": self.diff,
        }


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """A projection version as ``eventscope projections list`` shows it.

    ``state`` is one of: ``never run``; ``caught up`` (it reflects the head);
    ``catching up`` (behind, and a worker holds its lease); ``behind`` (behind, and no
    worker is running it); ``paused``; ``faulted`` (``fault_*`` say where and why);
    ``retired``.
    """

    name: str
    version: int
    state: str
    checkpoint: int
    head: int
    lag: int  # events between the checkpoint and the head
    lag_seconds: float  # how long the oldest event it has not applied has waited
    throughput: float  # positions per second over its runs of the last minute
    worker: str | None  # who holds its lease now
    history_from: int
    interval: float
    fault_position: int | None = None
    fault_event_id: str | None = None
    fault_error: str | None = None

    @property
    def reference(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of ``projections list``."""
        line: dict[str, Any] = {
            "projection": self.reference,
            "state": self.state,
            "checkpoint": self.checkpoint,
            "head": self.head,
            "lag": self.lag,
            "lag_seconds": round(self.lag_seconds, 3),
            "throughput": round(self.throughput, 1),
            "worker": self.worker,
            "history_from": self.history_from,
            "interval": self.interval,
        }
        if self.fault_position is not None:
            line["fault"] = {
                "position": self.fault_position,
                "event_id": self.fault_event_id,
                "error": self.fault_error,
            }
        return line


class Workspace:
    """An open store and everything asked of it. Panels and commands never build SQL.

    Args:
        store: the event store (SQLite, PostgreSQL or in memory).
    """

    def __init__(self, store: EventStore, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry if registry is not None else Registry()
        self.commands = CommandBus(store, self.registry)
        self._history: HistoryStore | None = None
        self._runners: dict[str, ProjectionRunner] = {}
        #: Folds of read models without history, kept so repeated seeks fold less.
        self.snapshots = FoldSnapshots()

    @classmethod
    def open(
        cls,
        location: str,
        *,
        read_only: bool = True,
        plugin_dirs: Sequence[str | os.PathLike[str]] = (),
        load_plugins: bool = True,
    ) -> Workspace:
        """Open the store at a path or URL (read-only unless asked) and load the plugins.

        Raises:
            StoreUnusable: the store is missing (read-only), corrupt, newer or unreachable.
        """
        registry = Registry.discover(plugin_dirs) if load_plugins else Registry()
        return cls(SqlEventStore.open(location, read_only=read_only), registry)

    def reopen(self, *, read_only: bool) -> None:
        """Open the same store again, read-only or writable, in place.

        Everything holding this workspace sees the new mode; the old connections are
        released once the new store is open (a failed open leaves the old one in use).

        Raises:
            StoreUnusable: the store can no longer be opened.
        """
        if read_only == self.store.read_only:
            return
        reopened = SqlEventStore.open(self.store.location, read_only=read_only)
        previous, self.store = self.store, reopened
        self.commands = CommandBus(reopened, self.registry)
        self._history = None
        self._runners = {}
        previous.close()

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self.store.read_only

    @property
    def location(self) -> str:
        """The store's path or URL, as given (a URL may hold a password)."""
        return self.store.location

    @property
    def display_location(self) -> str:
        """The store's path or URL fit to show: a password becomes ``***``."""
        return display_location(self.store.location)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

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
        """Append one event and return it as recorded (the stored one for a re-send)."""
        new = (
            NewEvent(event_type, data or {}, metadata or {}, event_id)
            if event_id is not None
            else NewEvent(event_type, data or {}, metadata or {})
        )
        result = self.store.append_to_stream(stream_id, [new], expected_version)
        return result.events[0]

    def import_lines(self, lines: Iterable[bytes | str]) -> ImportResult:
        """Import JSON lines all-or-nothing (see ``core.store.jsonlines``), then index them
        for search (an import is bulk work; its caller waits for the index too)."""
        result = self.store.import_records(parse_import_lines(lines))
        if result.appended:
            self.store.update_index()
        return result

    def indexed_position(self) -> int:
        """The last position the search index covers (see ``EventStore.update_index``)."""
        return self.store.indexed_position()

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        """Index events for payload search and correlation lookups; returns how many."""
        return self.store.update_index(batch=batch, limit=limit)

    # -- reading ----------------------------------------------------------------------------

    def read(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events matching a filter, in position order (or reversed)."""
        return self.store.read(where, backwards=backwards, limit=limit)

    def export_lines(
        self,
        where: EventFilter = EventFilter(),
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[bytes]:
        """Events as JSON lines, exactly as stored, in bounded memory."""
        for row in self.store.iter_raw(where, backwards=backwards, limit=limit):
            yield export_line(row)

    def streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by id (after ``after``, exclusive) with counts and first/last times."""
        return self.store.list_streams(prefix=prefix, category=category, after=after, limit=limit)

    def recent_streams(
        self,
        *,
        prefix: str | None = None,
        category: str | None = None,
        before_position: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StreamInfo]:
        """Streams by last activity, newest first (see ``EventStore.recent_streams``)."""
        return self.store.recent_streams(
            prefix=prefix, category=category, before_position=before_position, limit=limit
        )

    def head_position(self) -> int:
        """The position of the last event (0 when empty)."""
        return self.store.head_position()

    def position_at(self, moment: datetime) -> int:
        """The last position with ``recorded_at <= moment`` (0 if none)."""
        return self.store.position_at(moment)

    def count(self, where: EventFilter = EventFilter()) -> int:
        """How many events match a filter."""
        return self.store.count(where)

    def time_span(self) -> tuple[datetime, datetime] | None:
        """The times of the first and the last event, or None for an empty store."""
        first = next(self.store.read_all(limit=1), None)
        last = next(self.store.read(backwards=True, limit=1), None)
        if first is None or last is None:
            return None
        return first.recorded_at, last.recorded_at

    def timeline(
        self,
        start: datetime,
        end: datetime,
        buckets: int,
        where: EventFilter | None = None,
    ) -> list[int]:
        """Event counts in ``buckets`` equal slices of [start, end] (the last one closed).

        Without content filters this costs one index probe per bucket edge: positions
        are gapless and ``recorded_at`` never decreases along them, so the events before
        time t are exactly positions 1..position_at(t - 1 µs).
        """
        if buckets < 1 or end < start:
            raise ValueError("a timeline needs buckets >= 1 and start <= end")
        step = (end - start) / buckets
        edges = [start + step * k for k in range(buckets)] + [end]
        before = [self.store.position_at(edge - _MICROSECOND) for edge in edges[:-1]]
        before.append(self.store.position_at(end))
        if where is None or where == EventFilter():
            return [before[k + 1] - before[k] for k in range(buckets)]
        counts = []
        for k in range(buckets):
            checkpoint(k, buckets)
            low, high = before[k] + 1, before[k + 1]
            if where.from_position is not None:
                low = max(low, where.from_position)
            if where.to_position is not None:
                high = min(high, where.to_position)
            if high < low:
                counts.append(0)
                continue
            bucket = replace(where, from_position=low, to_position=high)
            counts.append(self.store.count(bucket) if before[k + 1] > before[k] else 0)
        return counts

    def check(self) -> CheckReport:
        """The store's integrity report."""
        return self.store.check()

    # -- plugins ------------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every plugin found, loaded or failed, in load order."""
        return list(self.registry.plugins)

    def execute(
        self,
        name: str,
        data: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        dry_run: bool = False,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> CommandResult:
        """Run a plugin command (see :meth:`CommandBus.execute`)."""
        return self.commands.execute(
            name,
            data,
            idempotency_key=idempotency_key,
            dry_run=dry_run,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    def upcast(self, event: RecordedEvent) -> UpcastView:
        """The event raw and upcast to its current schema (a failure is described, not
        raised, so an inspector can still show the raw payload)."""
        try:
            return UpcastView(event, self.registry.upcasters.upcast(event))
        except UpcastFailed as failure:
            return UpcastView(event, event, str(failure))

    def write_demo(self, name: str = "orders", *, orders: int, seed: int) -> ImportResult:
        """Append a plugin's deterministic demo history (all or nothing).

        Raises:
            UnknownDemo: no loaded plugin contributes ``name``.
        """
        demo = self.registry.demos.get(name)
        if demo is None:
            known = ", ".join(sorted(self.registry.demos)) or "none"
            raise UnknownDemo(f"no demo history called {name!r} (loaded: {known})")
        result = write_demo(self.store, demo.generate(orders=orders, seed=seed))
        self.store.update_index()
        return result

    def resolve_position(self, reference: ReadModelRef) -> int:
        """The log position a reference's point stands for (clamped to the head)."""
        head = self.store.head_position()
        point = reference.point
        if point.kind == "position" and point.position is not None:
            return min(point.position, head)
        if point.kind == "time" and point.time is not None:
            return self.store.position_at(point.time)
        return head

    # -- projections ------------------------------------------------------------------------

    @property
    def history(self) -> HistoryStore | None:
        """The store's read models with history (None for the in-memory store)."""
        if self._history is None and isinstance(self.store, SqlEventStore):
            self._history = open_history(self.store)
        return self._history

    def projection_statuses(self) -> list[ProjectionStatus]:
        """Every loaded projection version: state, checkpoint, lag, throughput, worker."""
        head = self.store.head_position()
        history = self.history
        stored = {s.model: s for s in history.statuses()} if history else {}
        recent: dict[str, list[RunRecord]] = {}
        now = wall_clock_micros()
        if history is not None:
            for run in history.runs(limit=1000):
                if now - run.started_at <= _THROUGHPUT_WINDOW_US:
                    recent.setdefault(run.model, []).append(run)
        return [
            self._status_of(projection, stored.get(projection.reference()), head, now, recent)
            for _, projection in sorted(self.registry.projections.items())
        ]

    def projection_status(self, reference: str) -> ProjectionStatus:
        """One projection version's status (see :meth:`projection_statuses`)."""
        wanted = self.projection_of(reference).reference()
        return next(s for s in self.projection_statuses() if s.reference == wanted)

    def _status_of(
        self,
        projection: type[Projection],
        status: ModelStatus | None,
        head: int,
        now: int,
        recent: Mapping[str, Sequence[RunRecord]],
    ) -> ProjectionStatus:
        checkpoint = status.checkpoint if status else 0
        lag = head - checkpoint
        worker = status.leased_to(now) if status else None
        if status is None:
            state = "never run"
        elif status.state != ACTIVE:
            state = status.state
        elif lag == 0:
            state = "caught up"
        else:
            state = "catching up" if worker else "behind"
        lag_seconds = 0.0
        if lag > 0:
            oldest = next(self.store.read(EventFilter(from_position=checkpoint + 1), limit=1))
            lag_seconds = max(0.0, (now - _micros(oldest.recorded_at)) / 1_000_000)
        runs = recent.get(projection.reference(), ())
        busy = sum(run.duration_us for run in runs)
        covered = sum(run.to_position - run.from_position for run in runs)
        return ProjectionStatus(
            name=projection.name,
            version=projection.version,
            state=state,
            checkpoint=checkpoint,
            head=head,
            lag=lag,
            lag_seconds=lag_seconds,
            throughput=covered * 1_000_000 / busy if busy else 0.0,
            worker=worker,
            history_from=status.history_from if status else 0,
            interval=projection.interval,
            fault_position=status.fault_position if status else None,
            fault_event_id=status.fault_event_id if status else None,
            fault_error=status.fault_error if status else None,
        )

    def run_projection(
        self,
        reference: str,
        *,
        until: int | None = None,
        lease: tuple[str, float] | None = None,
        batch_size: int | None = None,
    ) -> RunResult:
        """Catch one projection version up (``NAME[:VERSION]``), a batch per transaction.

        Progress and cancellation go through the current :class:`~core.jobs.Job`.
        A handler that fails faults the projection (``RunResult.fault``).

        Raises:
            UnknownProjection: no such projection or version.
            StoreReadOnly: the store is open read-only.
            StoreError: the store keeps no read models (in memory, or an old schema).
            ProjectionInactive: it is paused, faulted or retired.
        """
        projection = self.projection_of(reference)
        history = self.require_history()
        runner = self._runners.get(projection.reference())
        if runner is None:
            runner = ProjectionRunner(history, projection, upcasters=self.registry.upcasters)
            self._runners[projection.reference()] = runner
        if batch_size is not None:
            runner.batch_size = max(1, batch_size)
        return runner.run(until=until, lease=lease)

    def reset_projection(self, reference: str) -> None:
        """Forget a projection version's documents and history (it rebuilds from 0)."""
        projection = self.projection_of(reference)
        history = self.require_history()
        history.ensure(projection.name, projection.version)
        history.reset(projection.reference())
        self._runners.pop(projection.reference(), None)
        self.audit("ProjectionReset", {"projection": projection.reference()})

    def retire_projection(self, reference: str) -> None:
        """Stop keeping a projection version: its documents and history are dropped and
        no scheduler runs it until it is rebuilt. Other versions are untouched."""
        projection = self.projection_of(reference)
        history = self.require_history()
        history.ensure(projection.name, projection.version)
        history.reset(projection.reference(), state=RETIRED)
        self._runners.pop(projection.reference(), None)
        self.audit("ProjectionRetired", {"projection": projection.reference()})

    def pause_projection(self, reference: str) -> None:
        """Stop running a projection version until it is resumed (a batch in flight is
        dropped, not committed).

        Raises:
            ProjectionStateError: it is faulted or retired.
        """
        self._change_state(reference, PAUSED, (ACTIVE, PAUSED), "ProjectionPaused")

    def resume_projection(self, reference: str) -> None:
        """Run a paused projection version again.

        Raises:
            ProjectionStateError: it is not paused (a faulted one is retried or skipped).
        """
        self._change_state(reference, ACTIVE, (PAUSED, ACTIVE), "ProjectionResumed")

    def retry_projection(self, reference: str) -> None:
        """Clear a projection's fault: its next run applies the faulting event again."""
        self._change_state(reference, ACTIVE, (FAULTED,), "ProjectionRetried")

    def skip_faulted_event(self, reference: str) -> ModelStatus:
        """Step a faulted projection over the event it faulted on, recorded in ``$audit``
        (which event, and the error), and make it active again. Returns the fault skipped.

        Raises:
            ProjectionStateError: it is not faulted.
        """
        projection = self.projection_of(reference)
        history = self.require_history()
        status = history.status(projection.reference())
        if status is None or status.state != FAULTED:
            raise ProjectionStateError(
                f"{projection.reference()} is not faulted; there is no event to skip"
            )
        self.audit(
            "ProjectionEventSkipped",
            {
                "projection": projection.reference(),
                "position": status.fault_position,
                "event_id": status.fault_event_id,
                "error": last_line(status.fault_error or ""),
            },
        )
        skipped = history.skip_fault(projection.reference())
        if skipped is None:
            raise ProjectionStateError(
                f"{projection.reference()} changed while skipping (retried or reset meanwhile)"
            )
        self._runners.pop(projection.reference(), None)
        return skipped

    def retain_history(self, reference: str, since: int) -> int:
        """Keep a projection version's history from position ``since`` on (earlier points
        are folded from the log instead); returns how many document versions went."""
        projection = self.projection_of(reference)
        deleted = self.require_history().retain(projection.reference(), since)
        self.audit(
            "ProjectionHistoryRetained",
            {"projection": projection.reference(), "since": since, "deleted": deleted},
        )
        return deleted

    def audit(self, event_type: str, data: Mapping[str, Any]) -> RecordedEvent:
        """Record an operator's write in ``$audit`` (who, and what)."""
        return self.append(AUDIT_STREAM, event_type, {**data, "user": operator_name()})

    def _change_state(
        self, reference: str, state: str, only_from: tuple[str, ...], audited: str
    ) -> None:
        projection = self.projection_of(reference)
        history = self.require_history()
        history.ensure(projection.name, projection.version)
        if not history.change_state(projection.reference(), state, only_from=only_from):
            current = history.status(projection.reference())
            shown = current.state if current else "never run"
            raise ProjectionStateError(
                f"{projection.reference()} is {shown}: it cannot be {_VERBS[state]}"
            )
        self.audit(audited, {"projection": projection.reference()})

    def projection_runs(self, reference: str | None = None, *, limit: int = 100) -> list[RunRecord]:
        """The run history, newest first (of one projection version, or all)."""
        history = self.history
        if history is None:
            return []
        model = None if reference is None else self.projection_of(reference).reference()
        return history.runs(model, limit=limit)

    def projection_of(self, reference: str) -> type[Projection]:
        """The loaded projection a ``NAME[:VERSION]`` reference names (newest version
        by default).

        Raises:
            InvalidReference: the reference does not parse.
            UnknownProjection: no such projection or version.
        """
        ref = ReadModelRef.parse(reference)
        return self.registry.projection(ref.name, ref.version)

    def require_history(self) -> HistoryStore:
        """The store's read models, or a StoreError saying why it has none."""
        history = self.history
        if history is None:
            raise StoreError(
                f"{self.display_location} keeps no read models "
                "(an in-memory store, or an older store opened read-only)"
            )
        return history

    def locate(self, reference: ReadModelRef | str) -> ReadModelAt:
        """Where a read model at a point comes from: its history, when its runner has
        passed the point (and history is kept there), else a fold of the log.

        Raises:
            InvalidReference: the reference does not parse (names the part).
            UnknownProjection: no such projection or version.
        """
        ref = reference if isinstance(reference, ReadModelRef) else ReadModelRef.parse(reference)
        projection = self.registry.projection(ref.name, ref.version)
        position = self.resolve_position(ref)
        history = self.history
        status = history.status(projection.reference()) if history is not None else None
        kept = status is not None and status.history_from <= position <= status.checkpoint
        return ReadModelAt(ref, projection, position, kept)

    def iter_documents(
        self, at: ReadModelAt, *, after_key: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """A located read model's (key, document) pairs in key order, after ``after_key``:
        streamed in pages from history, or sorted out of a fold."""
        history = self.history
        if at.from_history and history is not None:
            position = None if at.position >= self.store.head_position() else at.position
            yield from history.iter_documents_at(at.model, position, after_key=after_key)
            return
        for key, doc in self._fold(at).documents.items():  # sorted by the fold
            if after_key is None or key > after_key:
                yield key, doc

    def document(self, at: ReadModelAt, key: str) -> dict[str, Any] | None:
        """One document of a located read model (one index probe from history)."""
        history = self.history
        if at.from_history and history is not None:
            return history.document_at(at.model, key, at.position)
        return self._fold(at).documents.get(key)

    def diff(self, before: ReadModelRef | str, after: ReadModelRef | str) -> DocumentDiff:
        """The read model ``after`` compared with ``before`` (two versions, two points, or
        both), as a streaming merge by key (see :mod:`core.timetravel.diff`)."""
        first, second = self.locate(before), self.locate(after)
        return diff_documents(self.iter_documents(first), self.iter_documents(second))

    def event_effect(self, reference: ReadModelRef | str) -> EventEffect:
        """What the event at the reference's point did to the read model: each document
        it changed, before and after (stepping through time one event at a time).

        Raises:
            InvalidReference, UnknownProjection: as :meth:`locate`.
            StoreError: there is no event at that point (an empty log, or position 0).
        """
        at = self.locate(reference)
        event = next(self.store.read(EventFilter(from_position=at.position), limit=1), None)
        if event is None or at.position == 0:
            raise StoreError(f"there is no event at position {at.position} of the log")
        event = self.registry.upcasters.upcast(event, keep_raw=False)
        before = self.locate(replace(at.reference, point=Point("position", at.position - 1)))
        if before.from_history:
            return apply_one_event(at.projection, event, lambda key: self.document(before, key))
        documents = self._fold(before).documents
        return apply_one_event(at.projection, event, documents.get)

    def what_if(
        self,
        candidate: ReadModelRef | str,
        against: ReadModelRef | str,
        *,
        summary: bool = False,
    ) -> WhatIf:
        """Replay a projection version into a scratch database up to its point, without
        touching the store's read models, and compare the live read model ``against``
        with it (at the same point, unless ``against`` names one).

        The candidate is any loaded projection version, such as one from a plugin folder
        that no worker runs yet. The scratch database is deleted afterwards.

        Raises:
            InvalidReference, UnknownProjection: as :meth:`locate`.
            ProjectionHandlerFailed: the candidate's handler raised (where is named).
        """
        wanted = candidate if isinstance(candidate, ReadModelRef) else ReadModelRef.parse(candidate)
        projection = self.registry.projection(wanted.name, wanted.version)
        position = self.resolve_position(wanted)
        live = against if isinstance(against, ReadModelRef) else ReadModelRef.parse(against)
        if live.point.kind == "head":
            live = replace(live, point=Point("position", position))
        with tempfile.TemporaryDirectory(prefix="eventscope-what-if-") as folder:
            scratch = SqlEventStore.open(Path(folder) / "scratch.db")
            try:
                history = open_history(scratch)
                assert history is not None  # a new store has the current schema
                runner = ProjectionRunner(
                    history, projection, upcasters=self.registry.upcasters, source=self.store
                )
                fault = runner.run(until=position).fault
                if fault is not None:
                    raise ProjectionHandlerFailed(
                        f"{projection.reference()}: its handler raised at position "
                        f"{fault.position} (event {fault.event_id}): "
                        f"{last_line(fault.error)}"
                    )
                changes = diff_documents(
                    self.iter_documents(self.locate(live)),
                    history.iter_documents_at(projection.reference()),
                )
                compared = summarize_diff(changes).to_dict() if summary else collect_diff(changes)
            finally:
                scratch.close()
        return WhatIf(projection.reference(), str(live), position, compared)

    def stream_state(self, stream_id: str, version: int | None = None) -> StreamState:
        """A stream folded by its category's ``@evolver`` up to ``version`` (default: its
        last), upcasting applied: what a command on that stream would have decided on."""
        folding = self.registry.evolvers.get(category_of(stream_id))
        state = folding.initial() if folding is not None else None
        reached: int | None = None
        limit = None if version is None else version + 1
        upcast = self.registry.upcasters.upcast
        for event in self.store.read_stream(stream_id, limit=limit):
            reached = event.version
            if folding is not None:
                state = folding.function(state, upcast(event, keep_raw=False))
        return StreamState(stream_id, reached, folding.category if folding else None, state)

    def lineage(self, reference: ReadModelRef | str, key: str) -> list[DocumentChange]:
        """Every event that changed one document, up to the reference's point, oldest
        first, with the change each made (from history when it reaches back to the first
        event, else by folding the log).

        Raises:
            InvalidReference, UnknownProjection: as :meth:`locate`.
        """
        at = self.locate(reference)
        history = self.history
        status = history.status(at.model) if history is not None else None
        if (
            history is not None
            and status is not None
            and status.history_from == 0
            and status.checkpoint >= at.position
        ):
            versions = history.versions_of(at.model, key)
            changes = [c for c in changes_of(key, versions, CURRENT) if c.position <= at.position]
        else:
            where = EventFilter(types=at.projection.event_types(), to_position=at.position)
            events = self.registry.upcasters.upcast_all(
                self.store.read(where), _raise_upcast, keep_raw=False
            )
            changes = changes_by_fold(at.projection, events, key)
        return [replace(c, event=self._event_at(c.position)) for c in changes]

    def _event_at(self, position: int) -> RecordedEvent | None:
        found = next(self.store.read(EventFilter(from_position=position), limit=1), None)
        if found is None or found.position != position:
            return None
        return self.registry.upcasters.upcast(found, keep_raw=False)

    def replay(self, reference: ReadModelRef | str) -> Replay:
        """A read model at a point: from its history when its runner has passed the
        point, else folded from the log (upcasting applied).

        Raises:
            InvalidReference: the reference does not parse.
            UnknownProjection: no such projection or version.
            ProjectionHandlerFailed: a handler raised during the fold.
        """
        at = self.locate(reference)
        if at.from_history:
            documents = dict(self.iter_documents(at))
            return Replay(at.reference, at.model, at.position, documents, (), "history")
        return self._fold(at)

    def _fold(self, at: ReadModelAt) -> Replay:
        """Fold the log up to the point, from the nearest snapshot of an earlier fold."""
        projection = at.projection
        failures: list[str] = []

        def note(failure: UpcastFailed) -> None:
            failures.append(str(failure))

        start, documents = self.snapshots.nearest(at.model, at.position)
        where = EventFilter(
            types=projection.event_types(), from_position=start + 1, to_position=at.position
        )
        read = self.store.read(where)
        last: list[RecordedEvent] = []

        def events() -> Iterator[RecordedEvent]:
            for event in read:
                last[:] = [event]
                yield event

        view = DictView(documents)
        instance = projection()
        try:
            for event in self.registry.upcasters.upcast_all(events(), note):
                instance.apply(view, event)
        except EventscopeError:
            raise
        except Exception as error:  # the plugin's handler: say where, as a fault does
            place = f" at position {last[0].position} (event {last[0].event_id})" if last else ""
            raise ProjectionHandlerFailed(
                f"{projection.reference()}: its handler raised{place}: "
                f"{type(error).__name__}: {error}"
            ) from error
        folded = {key: view.documents[key] for key in sorted(view.documents)}
        self.snapshots.keep(at.model, at.position, folded)
        return Replay(at.reference, at.model, at.position, folded, tuple(failures), "fold")


_VERBS = {ACTIVE: "resumed or retried", PAUSED: "paused"}


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _raise_upcast(failure: UpcastFailed) -> None:
    raise failure
