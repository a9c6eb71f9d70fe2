"""The projection runner: applies events in position order, exactly once, with history.

A batch reads the events after the read model's checkpoint (upcast, as every
projection sees them), applies them to a view that records each document change at
the position of the event that made it, then commits the changes and the new
checkpoint in one transaction (:meth:`HistoryStore.commit`). A crash before that
commit loses the batch and the next run applies it again; after it, the checkpoint
says it is done. Nothing is ever applied twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import orjson

from core.errors import Cancelled, EventscopeError
from core.events import wall_clock_micros
from core.jobs import checkpoint as report
from core.projections.definition import JsonDoc, Projection
from core.projections.history import DUMP_OPTIONS, Change, HistoryStore, RunRecord
from core.store import EventFilter
from core.upcasting import Upcasters, UpcastFailed

__all__ = ["CheckpointMoved", "ProjectionRunner", "RunResult"]

BATCH_SIZE: Final = 5_000
#: Documents kept decoded-free (as stored JSON) between batches, newest used last.
CACHE_SIZE: Final = 100_000
_DELETED: Final = b""


class CheckpointMoved(EventscopeError):
    """Another runner committed this read model's batch first; this one was dropped."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one call of :meth:`ProjectionRunner.run` did."""

    model: str
    from_position: int
    checkpoint: int
    events: int  # events applied (handled by the projection)
    scanned: int  # positions the checkpoint moved over
    seconds: float


class _RecordingView:
    """The view handlers see during a batch: reads through the batch's own changes, the
    runner's cache and the store; writes are recorded at the current event's position.

    ``get`` returns a fresh decoded copy each time, as every view must.
    """

    def __init__(self, runner: ProjectionRunner) -> None:
        self._runner = runner
        self.pending: dict[str, bytes] = {}  # key -> stored JSON, or _DELETED
        self.changes: list[Change] = []
        self.position = 0

    def _current(self, key: str) -> bytes:
        """The document as this batch last left it (b"" for none)."""
        stored = self.pending.get(key)
        return self._runner._stored(key) if stored is None else stored

    def get(self, key: str) -> JsonDoc | None:
        stored = self._current(key)
        if not stored:
            return None
        doc: JsonDoc = orjson.loads(stored)
        return doc

    def put(self, key: str, doc: JsonDoc) -> None:
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
    """

    def __init__(
        self,
        history: HistoryStore,
        projection: type[Projection],
        *,
        upcasters: Upcasters | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.history = history
        self.projection = projection
        self.model = projection.reference()
        self.upcasters = upcasters
        self.batch_size = batch_size
        self._instance = projection()
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        # True while every committed document is in the cache (a run from an empty read
        # model that has not evicted anything): a miss is then an absent document.
        self._complete = False
        self._types = projection.event_types()

    def _stored(self, key: str) -> bytes:
        """A document's latest committed version (b"" for none), through the cache."""
        cache = self._cache
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
            return found
        if self._complete:
            return _DELETED
        stored = self.history.current_doc(self.model, key) or _DELETED
        self._remember(key, stored)
        return stored

    def _remember(self, key: str, stored: bytes) -> None:
        """Cache a committed document as most recently used, evicting the oldest."""
        cache = self._cache
        cache[key] = stored
        cache.move_to_end(key)
        if len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
            self._complete = False

    def run(
        self,
        *,
        until: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> RunResult:
        """Catch up to the head (or to ``until``), a batch per transaction.

        Reports (positions done, positions to do) to the current :class:`~core.jobs.Job`
        after each batch and stops there when it is cancelled (what was committed
        stays). Records the run in the run history whatever its outcome.

        Raises:
            Cancelled: the current job was cancelled (after recording the run).
            CheckpointMoved: another runner advanced this read model meanwhile.
        """
        store = self.history.store
        status = self.history.ensure(self.projection.name, self.projection.version)
        start = status.checkpoint
        if start == 0 and not self._cache:
            self._complete = self.history.versions(self.model) == 0
        goal = store.head_position() if until is None else min(until, store.head_position())
        began = time.perf_counter()
        started_at = wall_clock_micros()
        applied = 0
        position = start
        outcome, error = "ok", None
        try:
            while position < goal:
                report(position - start, goal - start)
                upto = min(position + self.batch_size, goal)
                applied += self._batch(position, upto)
                position = upto
                if on_batch is not None:
                    on_batch(position, goal)
            report(position - start, max(goal - start, 1))
        except Cancelled:
            outcome = "cancelled"
            raise
        except CheckpointMoved as moved:
            outcome, error = "conflict", str(moved)
            raise
        except BaseException as failure:
            outcome, error = "failed", f"{type(failure).__name__}: {failure}"
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
                    )
                )
        return RunResult(self.model, start, position, applied, position - start, seconds)

    def _batch(self, after: int, upto: int) -> int:
        """Apply the events in ``after < position <= upto`` and commit; returns how many."""
        store = self.history.store
        events = store.read(
            EventFilter(types=self._types, from_position=after + 1, to_position=upto)
        )
        if self.upcasters is not None:
            events = self.upcasters.upcast_all(events, _raise)
        view = _RecordingView(self)
        apply = self._instance.apply
        applied = 0
        for event in events:
            view.position = event.position
            apply(view, event)
            applied += 1
        if not self.history.commit(self.model, after, upto, view.changes):
            self._cache.clear()
            self._complete = False
            raise CheckpointMoved(
                f"{self.model}: another runner moved the checkpoint past {after}; "
                "this batch was not applied"
            )
        for key, stored in view.pending.items():
            self._remember(key, stored)
        return applied


def _raise(failure: UpcastFailed) -> None:
    raise failure
