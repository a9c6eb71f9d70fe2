"""The projection runner: applies events in position order, exactly once, with history.

A batch reads the events after the read model's checkpoint (upcast, as every
projection sees them), applies them to a view that records each document change at
the position of the event that made it, then commits the changes and the new
checkpoint in one transaction (:meth:`HistoryStore.commit`). A crash before that
commit loses the batch and the next run applies it again; after it, the checkpoint
says it is done. Nothing is ever applied twice.

Time limits never interrupt a thread (it may hold a connection or a lock): each
handler call has a deadline, checked at every view call and when the handler returns
(:mod:`core.projections.limits`). An isolated projection's handlers run in a child
process instead, killed when a call runs past the limit
(:mod:`core.projections.isolation`); the runner still reads, caches and commits.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from time import perf_counter
from typing import Final

import orjson

from core.errors import Cancelled, EventscopeError, last_line
from core.events import RecordedEvent, wall_clock_micros
from core.jobs import checkpoint as report
from core.projections.definition import JsonDoc, Projection
from core.projections.history import (
    ACTIVE,
    DUMP_OPTIONS,
    Change,
    Fault,
    HistoryStore,
    ModelStatus,
    RunRecord,
)
from core.projections.isolation import IsolatedHandlers
from core.projections.limits import HandlerTimedOut
from core.store import EventFilter, EventStore
from core.upcasting import Upcasters, UpcastFailed

__all__ = ["CheckpointMoved", "ProjectionInactive", "ProjectionRunner", "RunResult"]

#: Positions per transaction. Each commit rewrites the pages its versions land in: a
#: rebuild of 1M events spent 32 s committing in batches of 5,000, 24 s in 20,000 and
#: 19 s in 50,000, which would hold the write lock (and appends) for over a second.
BATCH_SIZE: Final = 20_000
#: Documents kept decoded-free (as stored JSON) between batches, newest used last.
CACHE_SIZE: Final = 100_000
_DELETED: Final = b""
#: Keys a runner remembers as written, at most (about 100 bytes each): while it knows
#: them all, a document never written needs no query to be found absent.
KNOWN_KEYS: Final = 1_000_000


class CheckpointMoved(EventscopeError):
    """Another runner committed this read model's batch first; this one was dropped."""


class ProjectionInactive(EventscopeError):
    """The read model is paused, faulted or retired: runners leave it alone.

    Args:
        status: the read model as stored.
    """

    def __init__(self, status: ModelStatus) -> None:
        detail = ""
        if status.fault_position is not None:
            detail = (
                f" at position {status.fault_position} (event {status.fault_event_id}): "
                f"{last_line(status.fault_error or '')}; retry or skip the event"
            )
        super().__init__(f"{status.model} is {status.state}{detail}")
        self.status = status


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one call of :meth:`ProjectionRunner.run` did."""

    model: str
    from_position: int
    checkpoint: int
    events: int  # events applied (handled by the projection)
    scanned: int  # positions the checkpoint moved over
    seconds: float
    fault: Fault | None = None  # the event the projection faulted on, if it did


class _RecordingView:
    """The view handlers see during a batch: reads through the batch's own changes, the
    runner's cache and the store; writes are recorded at the current event's position.

    ``get`` returns a fresh decoded copy each time, as every view must. Each call
    past the current handler call's ``deadline`` (``perf_counter()`` seconds) raises
    :class:`HandlerTimedOut` instead of touching the store.
    """

    def __init__(self, runner: ProjectionRunner) -> None:
        self._runner = runner
        self.pending: dict[str, bytes] = {}  # key -> stored JSON, or _DELETED
        self.changes: list[Change] = []
        self.position = 0
        self.deadline = 0.0
        self.limit = runner.projection.time_limit

    def _current(self, key: str) -> bytes:
        """The document as this batch last left it (b"" for none)."""
        stored = self.pending.get(key)
        return self._runner._stored(key) if stored is None else stored

    def get(self, key: str) -> JsonDoc | None:
        if perf_counter() > self.deadline:
            raise HandlerTimedOut(self.limit, "stopped at its view.get call")
        stored = self._current(key)
        if not stored:
            return None
        doc: JsonDoc = orjson.loads(stored)
        return doc

    def put(self, key: str, doc: JsonDoc) -> None:
        if perf_counter() > self.deadline:
            raise HandlerTimedOut(self.limit, "stopped at its view.put call")
        if not isinstance(key, str):
            raise TypeError(f"read-model keys are text, not {type(key).__name__}")
        if not isinstance(doc, dict):
            raise TypeError(f"read-model documents are JSON objects, not {type(doc).__name__}")
        stored = orjson.dumps(doc, option=DUMP_OPTIONS)
        if self._current(key) == stored:
            return  # no change, no new version
        self.pending[key] = stored
        self.changes.append(Change(key, self.position, stored))

    def delete(self, key: str) -> None:
        if perf_counter() > self.deadline:
            raise HandlerTimedOut(self.limit, "stopped at its view.delete call")
        if not self._current(key):
            return
        self.pending[key] = _DELETED
        self.changes.append(Change(key, self.position, None))


class ProjectionRunner:
    """Keeps one projection version's read model current in a SQL store.

    Args:
        history: the store's read models.
        projection: the projection class (``name``, ``version``, ``@handles``).
        upcasters: applied to every event before the projection sees it.
        batch_size: positions per transaction.
        source: where the events are read (default: the history's own store; a what-if
            replay reads the real store and writes its read model into a scratch one).

    An isolated projection's runner owns a child process: :meth:`close` stops it (it is
    also stopped when the runner is dropped, and at interpreter exit).
    """

    def __init__(
        self,
        history: HistoryStore,
        projection: type[Projection],
        *,
        upcasters: Upcasters | None = None,
        batch_size: int = BATCH_SIZE,
        source: EventStore | None = None,
    ) -> None:
        self.history = history
        self.source: EventStore = source if source is not None else history.store
        self.projection = projection
        self.model = projection.reference()
        self.upcasters = upcasters
        self.batch_size = batch_size
        self._instance = projection()
        self._isolated = (
            IsolatedHandlers(projection, dump_options=DUMP_OPTIONS) if projection.isolated else None
        )
        self._lease: tuple[str, float] | None = None
        self._checkpoint = -1  # where this runner's cache left the read model
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        # Every key with a committed version, while that is known (None: unknown): the
        # current keys when a run starts (up to KNOWN_KEYS), then every key it writes.
        # A cache miss on any other key is an absent document, with no query.
        self._written: set[str] | None = None
        self._types = projection.event_types()

    def _stored(self, key: str) -> bytes:
        """A document's latest committed version (b"" for none), through the cache."""
        cache = self._cache
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
            return found
        written = self._written
        if written is not None and key not in written:
            return _DELETED
        stored = self.history.current_doc(self.model, key) or _DELETED
        self._remember(key, stored)
        return stored

    def _remember(self, key: str, stored: bytes) -> None:
        """Cache a committed document as most recently used, evicting the oldest."""
        cache = self._cache
        # A copy of its own size: orjson's bytes keep a 4 KiB buffer, which made 100k
        # cached documents of ~250 bytes take 370 MiB.
        cache[key] = bytes(memoryview(stored))
        cache.move_to_end(key)
        if len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
        written = self._written
        if written is not None:
            written.add(key)
            if len(written) > KNOWN_KEYS:
                self._written = None

    def run(
        self,
        *,
        until: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        lease: tuple[str, float] | None = None,
        worker: str | None = None,
    ) -> RunResult:
        """Catch up to the head (or to ``until``), a batch per transaction.

        Reports (positions done, positions to do) to the current :class:`~core.jobs.Job`
        after each batch and stops there when it is cancelled (what was committed
        stays). A handler that raises, or runs past the projection's ``time_limit``,
        faults the read model at its event: the batch's earlier events are committed
        with the fault, and the run ends (``RunResult.fault``). Every run that moved the
        checkpoint or ended otherwise than "ok" is recorded in the run history.

        Args:
            lease: (worker, seconds): every commit checks that the worker still holds
                the read model's lease, and extends it by ``seconds``.
            worker: who runs it, for the run history (defaults to the lease's worker).

        Raises:
            ProjectionInactive: the read model is paused, faulted or retired.
            Cancelled: the current job was cancelled (after recording the run).
            CheckpointMoved: another runner advanced this read model, or took its lease.
        """
        store = self.source
        status = self.history.ensure(self.projection.name, self.projection.version)
        if status.state != ACTIVE:
            raise ProjectionInactive(status)
        start = status.checkpoint
        if start != self._checkpoint:  # someone else moved it: what we cached may be stale
            self._forget()
            self._written = self.history.current_keys(self.model, limit=KNOWN_KEYS)
        self._lease = lease
        goal = store.head_position() if until is None else min(until, store.head_position())
        began = time.perf_counter()
        started_at = wall_clock_micros()
        applied = 0
        position = start
        fault: Fault | None = None
        outcome, error = "ok", None
        try:
            while position < goal and fault is None:
                report(position - start, goal - start)
                upto = min(position + self.batch_size, goal)
                done, position, fault = self._batch(position, upto)
                applied += done
                if on_batch is not None:
                    on_batch(position, goal)
            if fault is not None:
                outcome, error = "faulted", last_line(fault.error)
            else:
                report(position - start, max(goal - start, 1))
        except Cancelled:
            outcome = "cancelled"
            raise
        except CheckpointMoved as moved:
            outcome, error = "conflict", str(moved)
            raise
        except ProjectionInactive as stopped:
            outcome, error = "stopped", str(stopped)
            raise
        except BaseException as failure:
            outcome, error = "failed", f"{type(failure).__name__}: {failure}"
            self._forget()
            raise
        finally:
            seconds = time.perf_counter() - began
            if position > start or outcome != "ok":
                self.history.record_run(
                    RunRecord(
                        self.model,
                        started_at,
                        int(seconds * 1_000_000),
                        start,
                        position,
                        applied,
                        outcome,
                        error,
                        worker or (lease[0] if lease else None),
                    )
                )
        return RunResult(self.model, start, position, applied, position - start, seconds, fault)

    def close(self) -> None:
        """Stop the child process of an isolated projection, if one runs (idempotent; a
        later run starts a new one). A run in progress in another thread is cancelled."""
        if self._isolated is not None:
            self._isolated.close()

    def _forget(self) -> None:
        """Drop the cache (the read model may have changed behind this runner's back)."""
        self._cache.clear()
        self._written = None
        self._checkpoint = -1

    def _batch(self, after: int, upto: int) -> tuple[int, int, Fault | None]:
        """Apply the events in ``after < position <= upto`` and commit them.

        Returns (events applied, the new checkpoint, the fault if a handler failed: the
        checkpoint is then the position before its event).
        """
        events = self.source.read(
            EventFilter(types=self._types, from_position=after + 1, to_position=upto)
        )
        if self.upcasters is not None:
            # The raw events are dropped after the batch: no copy for the upcasters.
            events = self.upcasters.upcast_all(events, _raise, keep_raw=False)
        if self._isolated is not None:
            return self._batch_isolated(after, upto, events)
        view = _RecordingView(self)
        apply = self._instance.apply
        limit = self.projection.time_limit
        applied = 0
        fault: Fault | None = None
        checkpoint = upto
        for event in events:
            view.position = event.position
            kept = len(view.changes)
            view.deadline = perf_counter() + limit
            try:
                apply(view, event)
                if perf_counter() > view.deadline:
                    raise HandlerTimedOut(limit, "faulted when it returned")
            except (Exception, HandlerTimedOut) as failure:
                del view.changes[kept:]
                fault = Fault(event.position, event.event_id, self._describe(failure))
                checkpoint = event.position - 1
                break
            applied += 1
        self._commit(after, checkpoint, view, fault)
        return applied, checkpoint, fault

    def _batch_isolated(
        self, after: int, upto: int, events: Iterable[RecordedEvent]
    ) -> tuple[int, int, Fault | None]:
        """:meth:`_batch` with the handlers applied in the child process."""
        assert self._isolated is not None
        done = self._isolated.apply(events, self._stored)
        view = _RecordingView(self)
        changes, pending = view.changes, view.pending
        for key, position, doc in done.changes:
            changes.append(Change(key, position, doc))
            pending[key] = _DELETED if doc is None else doc
        fault: Fault | None = None
        checkpoint = upto
        if done.failure is not None:
            event = done.failure.event
            fault = Fault(event.position, event.event_id, done.failure.error)
            checkpoint = event.position - 1
        self._commit(after, checkpoint, view, fault)
        return done.applied, checkpoint, fault

    def _describe(self, failure: BaseException) -> str:
        """A fault's text: the handler's traceback, or the time limit it ran past."""
        if isinstance(failure, HandlerTimedOut):
            return str(failure)
        return "".join(traceback.format_exception(failure)).rstrip()

    def _commit(
        self, after: int, checkpoint: int, view: _RecordingView, fault: Fault | None
    ) -> None:
        """Commit a batch's changes and checkpoint (compare-and-set); update the cache."""
        lease = None
        if self._lease is not None:
            owner, seconds = self._lease
            lease = (owner, wall_clock_micros() + int(seconds * 1_000_000))
        if not self.history.commit(
            self.model, after, checkpoint, view.changes, lease=lease, fault=fault
        ):
            self._forget()
            status = self.history.status(self.model)
            if status is not None and status.checkpoint == after and status.state != ACTIVE:
                raise ProjectionInactive(status)
            raise CheckpointMoved(
                f"{self.model}: another runner moved the checkpoint past {after} or took "
                "its lease; this batch was not applied"
            )
        if fault is not None:
            self._forget()  # the pending changes include the faulting event's
            return
        for key, stored in view.pending.items():
            self._remember(key, stored)
        self._checkpoint = checkpoint


def _raise(failure: UpcastFailed) -> None:
    raise failure
