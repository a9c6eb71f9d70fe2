"""Projections kept current on APScheduler's BackgroundScheduler: one job per projection.

Each enabled projection version (not retired) gets an interval job (its class's
``interval``; ``max_instances=1`` and coalescing, so a slow run is never doubled up
and missed ticks collapse into one). A tick that finds the read model caught up, or
paused, faulted or retired, costs two small queries and does nothing. Otherwise the
tick takes the read model's lease (so a second worker on the same store, in another
process or on another machine, leaves it alone), runs it to the head, and reports the
run. Paused / faulted / retired live in the store, so an operator's pause in the
console stops a headless worker too.

Stopping cancels the runs in flight between batches (what they committed stays),
waits for them, stops the child processes of isolated projections, and gives the
leases back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from core.errors import Cancelled, EventscopeError, StoreBusy, StoreFull
from core.jobs import Job
from core.projections.definition import Projection
from core.projections.runner import BATCH_SIZE, CheckpointMoved, ProjectionInactive, RunResult
from core.services.projections import (
    DEFAULT_LEASE_SECONDS,
    ProjectionLeased,
    default_worker_name,
)
from core.workspace import Workspace

__all__ = ["DEFAULT_LEASE_SECONDS", "ProjectionScheduler", "TickOutcome", "default_worker_name"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """What one scheduled run of a projection did (ticks with nothing to do are not
    reported; a run that could not start because of an error is)."""

    model: str
    result: RunResult | None  # None when the run failed or was cancelled
    error: str | None = None  # the run's error (a conflict, a store failure, ...)
    failed: bool = False  # the error is a failure (a full disk, ...), not a stop or a conflict


class ProjectionScheduler:
    """Runs projections on a BackgroundScheduler until shut down.

    Args:
        workspace: the open (writable) store and its plugins.
        references: ``NAME[:VERSION]`` of the projections to run (default: every loaded
            projection version).
        worker: this worker's name in leases and the run history.
        lease_seconds: how long a lease lasts without being renewed.
        on_tick: called (on a scheduler thread) after each tick that ran.
        max_threads: projections that may run at the same time.
        batch_size: positions per transaction (see :class:`ProjectionRunner`).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        references: Iterable[str] | None = None,
        worker: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        on_tick: Callable[[TickOutcome], None] | None = None,
        max_threads: int = 4,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.workspace = workspace
        self.worker = worker or default_worker_name()
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self._on_tick = on_tick
        self._projections = workspace.projections
        if references is None:
            chosen = [p for _, p in sorted(workspace.registry.projections.items())]
        else:
            chosen = [self._projections.projection_of(reference) for reference in references]
        self.projections: dict[str, type[Projection]] = {p.reference(): p for p in chosen}
        self._jobs: dict[str, Job] = {}
        # Projections start() could not register (the store could not be written then).
        self._unregistered: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_threads)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )

    def start(self) -> None:
        """Schedule one job per projection (the first tick is now) and start."""
        now = datetime.now(UTC)
        for model, projection in self.projections.items():
            try:
                self._projections.ensure(model)
            except (StoreFull, StoreBusy) as error:  # registered at a later tick instead
                _log.warning("%s: %s", model, error)
                self._unregistered.add(model)
            self._scheduler.add_job(
                self._tick,
                "interval",
                seconds=projection.interval,
                args=[model],
                id=model,
                name=model,
                next_run_time=now,
            )
        self._scheduler.start()

    def running(self) -> set[str]:
        """The projection versions being run at this moment."""
        with self._lock:
            return set(self._jobs)

    def shutdown(self, *, timeout: float = 30.0) -> None:
        """Stop: cancel the runs in flight (they stop between batches), wait for them,
        close the runners (stopping the processes of isolated projections), and give
        this worker's leases back."""
        self._stopping.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        if self._scheduler.running:
            # A handler stuck in C code could hold its thread: wait, but not forever.
            finisher = threading.Thread(
                target=self._scheduler.shutdown, kwargs={"wait": True}, daemon=True
            )
            finisher.start()
            finisher.join(timeout)
            if finisher.is_alive():
                _log.warning("projection runs still going after %.0f s; not waiting", timeout)
        self._projections.close()  # a run still going in an isolated process is cancelled
        for model in self.projections:
            try:
                self._projections.give_lease_back(model, self.worker)
            except EventscopeError as error:
                _log.warning("could not release the lease of %s: %s", model, error)

    def _tick(self, model: str) -> None:
        """One scheduled run of ``model``: nothing if it is caught up or not active."""
        if self._stopping.is_set():
            return
        try:
            if model in self._unregistered:
                self._projections.ensure(model)
                self._unregistered.discard(model)
            if not self._projections.due(model):
                return  # caught up, or paused, faulted or retired
            self._projections.take_lease(model, self.worker, self.lease_seconds)
        except ProjectionLeased:
            return  # another worker is running it
        except EventscopeError as error:  # a full disk, say: the lease cannot be written
            _log.warning("%s: %s", model, error)
            if self._on_tick is not None:
                self._on_tick(TickOutcome(model, None, str(error), failed=True))
            return
        job = Job()
        with self._lock:
            if self._stopping.is_set():
                return
            self._jobs[model] = job
        outcome = TickOutcome(model, None)
        try:
            with job.running():
                result = self._projections.run(
                    model,
                    lease=(self.worker, self.lease_seconds),
                    worker=self.worker,
                    batch_size=self.batch_size,
                )
            outcome = TickOutcome(model, result)
        except (Cancelled, CheckpointMoved, ProjectionInactive) as stopped:
            outcome = TickOutcome(model, None, str(stopped))
        except EventscopeError as error:
            _log.warning("%s: %s", model, error)
            outcome = TickOutcome(model, None, str(error), failed=True)
        except Exception as error:  # a bug: reported, and the other projections go on
            _log.exception("%s: the run failed", model)
            outcome = TickOutcome(model, None, f"{type(error).__name__}: {error}", failed=True)
        finally:
            with self._lock:
                self._jobs.pop(model, None)
        if self._on_tick is not None:
            self._on_tick(outcome)
