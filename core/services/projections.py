"""The projections service: status, runs, and the operator actions, each audited."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from core.errors import EventscopeError, last_line
from core.events import format_time, from_micros, wall_clock_micros
from core.projections.definition import Projection
from core.projections.history import (
    ACTIVE,
    FAULTED,
    PAUSED,
    RETIRED,
    HistoryStore,
    ModelStatus,
    RunRecord,
)
from core.projections.runner import ProjectionRunner, RunResult
from core.services.events import behind
from core.services.handle import OpenStore, StoreHandle
from core.services.plugins import Plugins
from core.services.writing import Writing
from core.timetravel.reference import ReadModelRef

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "ProjectionLeased",
    "ProjectionService",
    "ProjectionStateError",
    "ProjectionStatus",
    "default_worker_name",
]

#: How long a worker's lease lasts without a commit renewing it. A worker that died
#: holds its projections this long at most.
DEFAULT_LEASE_SECONDS: Final = 30.0
#: Runs younger than this count towards a projection's throughput.
_THROUGHPUT_WINDOW_US: Final = 60_000_000
_VERBS: Final = {ACTIVE: "resumed or retried", PAUSED: "paused"}


def default_worker_name(kind: str | None = None) -> str:
    """``[kind:]host:pid:xxxx``: unique enough to tell workers apart in leases and runs."""
    name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:4]}"
    return name if kind is None else f"{kind}:{name}"


class ProjectionStateError(EventscopeError):
    """An operation that does not fit the projection's state (resume a running one, ...)."""


class ProjectionLeased(EventscopeError):
    """Another worker holds the projection's lease: it is running it."""


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


class ProjectionService:
    """Projection versions: their status and runs, running them, and the operator
    actions (pause, resume, retry, skip, reset, rebuild, retire, retain), each
    committed in one transaction with its ``$audit`` event.

    Args:
        handle: the store (its read models).
        plugins: the loaded projections.
        writing: for the audited transactions.
    """

    def __init__(self, handle: StoreHandle, plugins: Plugins, writing: Writing) -> None:
        self._handle = handle
        self._plugins = plugins
        self._writing = writing
        self._lock = threading.Lock()
        self._runners: dict[str, ProjectionRunner] = {}
        self._runner_locks: dict[str, threading.Lock] = {}
        self._built_for: tuple[int, int] = (0, 0)  # (store generation, plugins generation)

    # -- lookups ------------------------------------------------------------------------------

    def projection_of(self, reference: str) -> type[Projection]:
        """The loaded projection a ``NAME[:VERSION]`` reference names (newest version
        by default).

        Raises:
            InvalidReference: the reference does not parse.
            UnknownProjection: no such projection or version.
        """
        ref = ReadModelRef.parse(reference)
        return self._plugins.registry.projection(ref.name, ref.version)

    def references(self) -> list[str]:
        """Every loaded projection version, ``name:version``, sorted."""
        return [p.reference() for _, p in sorted(self._plugins.registry.projections.items())]

    def history(self) -> HistoryStore:
        """The read models of the store in use (for tests and tools that look inside).

        Raises:
            StoreError: the store keeps no read models (an older store opened read-only).
        """
        with self._handle.use() as opened:
            return opened.require_history()

    def ensure(self, reference: str) -> ModelStatus:
        """The stored status of a projection version, registering it if it never ran."""
        projection = self.projection_of(reference)
        with self._handle.use() as opened:
            return opened.require_history().ensure(projection.name, projection.version)

    def due(self, reference: str) -> bool:
        """Whether a projection version is active and behind the head (two small queries:
        what a scheduler asks at each tick)."""
        model = self.projection_of(reference).reference()
        with self._handle.use() as opened:
            status = opened.require_history().status(model)
            if status is None or status.state != ACTIVE:
                return False
            return status.checkpoint < opened.store.head_position()

    # -- status -------------------------------------------------------------------------------

    def statuses(self) -> list[ProjectionStatus]:
        """Every loaded projection version: state, checkpoint, lag, throughput, worker."""
        return self._statuses([p for _, p in sorted(self._plugins.registry.projections.items())])

    def status(self, reference: str) -> ProjectionStatus:
        """One projection version's status (see :meth:`statuses`), reading only its own."""
        (found,) = self._statuses([self.projection_of(reference)], one=True)
        return found

    def _statuses(
        self, projections: Sequence[type[Projection]], *, one: bool = False
    ) -> list[ProjectionStatus]:
        with self._handle.use() as opened:
            head = opened.store.head_position()
            history = opened.history
            only = projections[0].reference() if one else None
            stored: dict[str, ModelStatus] = {}
            if history is not None:
                found = [history.status(only)] if only else history.statuses()
                stored = {s.model: s for s in found if s is not None}
            recent: dict[str, list[RunRecord]] = {}
            now = wall_clock_micros()
            if history is not None:
                for run in history.runs(only, limit=1000):
                    if now - run.started_at <= _THROUGHPUT_WINDOW_US:
                        recent.setdefault(run.model, []).append(run)
            return [
                self._status_of(opened, p, stored.get(p.reference()), head, now, recent)
                for p in projections
            ]

    def _status_of(
        self,
        opened: OpenStore,
        projection: type[Projection],
        status: ModelStatus | None,
        head: int,
        now: int,
        recent: Mapping[str, Sequence[RunRecord]],
    ) -> ProjectionStatus:
        checkpoint = status.checkpoint if status else 0
        lag, lag_seconds = behind(opened.store, checkpoint, head, now)
        worker = status.leased_to(now) if status else None
        if status is None:
            state = "never run"
        elif status.state != ACTIVE:
            state = status.state
        elif lag == 0:
            state = "caught up"
        else:
            state = "catching up" if worker else "behind"
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

    def runs(self, reference: str | None = None, *, limit: int = 100) -> list[RunRecord]:
        """The run history, newest first (of one projection version, or all)."""
        model = None if reference is None else self.projection_of(reference).reference()
        with self._handle.use() as opened:
            if opened.history is None:
                return []
            # Relays keep their runs in the same history ("$relay.NAME:1"): not projections'.
            return opened.history.runs(model, limit=limit, system=False)

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        reference: str,
        *,
        until: int | None = None,
        lease: tuple[str, float] | None = None,
        worker: str | None = None,
        batch_size: int | None = None,
    ) -> RunResult:
        """Catch one projection version up (``NAME[:VERSION]``), a batch per transaction.

        Progress and cancellation go through the current :class:`~core.jobs.Job`. A
        handler that fails faults the projection (``RunResult.fault``). One version
        runs in one thread of this process at a time (a second call waits).

        Args:
            lease: (worker, seconds): every batch commit checks that the worker holds
                the lease (taken beforehand with :meth:`take_lease`) and extends it.
            worker: who runs it, for the run history.
            batch_size: positions per transaction.

        Raises:
            UnknownProjection: no such projection or version.
            StoreReadOnly: the store is open read-only.
            StoreError: the store keeps no read models.
            ProjectionInactive: it is paused, faulted or retired.
            CheckpointMoved: another runner moved it (or took its lease) meanwhile.
        """
        projection = self.projection_of(reference)
        with self._handle.use() as opened:
            runner, lock = self._runner(opened, projection)
            with lock:
                if batch_size is not None:
                    runner.batch_size = max(1, batch_size)
                return runner.run(until=until, lease=lease, worker=worker)

    def run_leased(
        self,
        reference: str,
        *,
        worker: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        rebuild: bool = False,
        batch_size: int | None = None,
        audited: bool = False,
    ) -> RunResult:
        """Run (or rebuild: reset, audited, then run) a projection version under a lease,
        as a worker does: while it runs, no worker on the store runs it too. The lease
        is given back when it ends. ``audited``: an operator asked for this run (the
        console's Run now), recorded in ``$audit`` as ``ProjectionRunRequested`` once
        the lease is held (a rebuild is recorded by its reset either way).

        Raises:
            ProjectionLeased: another worker holds the lease (nothing was changed).
            And as :meth:`run`.
        """
        name = worker or default_worker_name("cli")
        model = self.projection_of(reference).reference()
        self.take_lease(model, name, lease_seconds)
        try:
            if rebuild:
                self._reset(model, "ProjectionReset", ACTIVE, rebuild=True)
            elif audited:
                with self._writing.audited(
                    "ProjectionRunRequested", {"projection": model, "worker": name}
                ) as action:
                    status = action.opened.require_history().status(model)
                    action.data["from_checkpoint"] = status.checkpoint if status else 0
            return self.run(model, lease=(name, lease_seconds), worker=name, batch_size=batch_size)
        finally:
            self.give_lease_back(model, name)

    def take_lease(self, reference: str, worker: str, seconds: float) -> None:
        """Take (or renew) a projection version's lease for ``worker``.

        Raises:
            ProjectionLeased: another worker holds it.
        """
        projection = self.projection_of(reference)
        with self._handle.use() as opened:
            history = opened.require_history()
            history.ensure(projection.name, projection.version)
            if history.acquire_lease(projection.reference(), worker, seconds=seconds):
                return
            status = history.status(projection.reference())
        holder = status.leased_to(wall_clock_micros()) if status else None
        until = ""
        if status is not None and status.lease_expires:
            until = f" until {format_time(from_micros(status.lease_expires))}"
        raise ProjectionLeased(
            f"{projection.reference()} is being run by worker {holder or '?'} (its lease "
            f"runs{until}); stop that worker or wait for its lease to run out"
        )

    def give_lease_back(self, reference: str, worker: str) -> None:
        """Release ``worker``'s lease of a projection version (nothing if it holds none)."""
        model = self.projection_of(reference).reference()
        with self._handle.use() as opened:
            opened.require_history().release_lease(model, worker)

    def _runner(
        self, opened: OpenStore, projection: type[Projection]
    ) -> tuple[ProjectionRunner, threading.Lock]:
        """The runner of a projection version on the store in use (built once; rebuilt
        when the store was swapped or the plugins reloaded)."""
        history = opened.require_history()
        with self._lock:
            built_for = (opened.generation, self._plugins.generation)
            if built_for != self._built_for:
                self._close_runners()
                self._built_for = built_for
            model = projection.reference()
            runner = self._runners.get(model)
            if runner is None:
                runner = ProjectionRunner(  # events from the store in use (never the models')
                    history,
                    projection,
                    upcasters=self._plugins.registry.upcasters,
                    source=opened.store,
                )
                self._runners[model] = runner
            lock = self._runner_locks.setdefault(model, threading.Lock())
        return runner, lock

    def _forget_runner(self, model: str) -> None:
        with self._lock:
            runner = self._runners.pop(model, None)
        if runner is not None:
            runner.close()

    def _close_runners(self) -> None:
        runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            runner.close()

    def close(self) -> None:
        """Close the runners (a runner of an isolated projection stops its process)."""
        with self._lock:
            self._close_runners()

    # -- operator actions ---------------------------------------------------------------------

    def pause(self, reference: str) -> None:
        """Stop running a projection version until it is resumed (a batch in flight is
        dropped, not committed), recorded in ``$audit``.

        Raises:
            ProjectionStateError: it is faulted or retired.
        """
        self._change_state(reference, PAUSED, (ACTIVE, PAUSED), "ProjectionPaused")

    def resume(self, reference: str) -> None:
        """Run a paused projection version again, recorded in ``$audit``.

        Raises:
            ProjectionStateError: it is not paused (a faulted one is retried or skipped).
        """
        self._change_state(reference, ACTIVE, (PAUSED, ACTIVE), "ProjectionResumed")

    def retry(self, reference: str) -> None:
        """Clear a projection's fault: its next run applies the faulting event again.

        Raises:
            ProjectionStateError: it is not faulted.
        """
        self._change_state(reference, ACTIVE, (FAULTED,), "ProjectionRetried")

    def skip(self, reference: str) -> ModelStatus:
        """Step a faulted projection over the event it faulted on and make it active
        again; the skip and its ``$audit`` event (which event, the error) commit
        together. Returns the fault skipped.

        Raises:
            ProjectionStateError: it is not faulted, or it changed meanwhile (retried,
                reset or skipped by someone else: then nothing is recorded).
        """
        model = self.projection_of(reference).reference()
        with self._writing.audited("ProjectionEventSkipped", {"projection": model}) as action:
            history = action.opened.require_history()
            skipped = history.skip_fault(model, within=action.unit)
            if skipped is None:
                status = history.status(model)
                if status is None or status.state != FAULTED:
                    raise ProjectionStateError(f"{model} is not faulted; there is no event to skip")
                raise ProjectionStateError(
                    f"{model} changed while skipping (retried or reset meanwhile)"
                )
            action.data |= {
                "position": skipped.fault_position,
                "event_id": skipped.fault_event_id,
                "error": last_line(skipped.fault_error or ""),
            }
        self._forget_runner(model)
        return skipped

    def reset(self, reference: str) -> None:
        """Forget a projection version's documents and history (it rebuilds from the
        first event at its next run), recorded in ``$audit``."""
        self._reset(self.projection_of(reference).reference(), "ProjectionReset", ACTIVE)

    def retire(self, reference: str) -> None:
        """Stop keeping a projection version: its documents and history are dropped and
        no scheduler runs it until it is rebuilt, recorded in ``$audit``. Other versions
        are untouched."""
        self._reset(self.projection_of(reference).reference(), "ProjectionRetired", RETIRED)

    def retain(self, reference: str, since: int) -> int:
        """Keep a projection version's history from position ``since`` on (earlier points
        are folded from the log instead), recorded in ``$audit``; returns how many
        document versions went."""
        model = self.projection_of(reference).reference()
        audit = {"projection": model, "since": since}
        with self._writing.audited("ProjectionHistoryRetained", audit) as action:
            deleted = action.opened.require_history().retain(model, since, within=action.unit)
            action.data["deleted"] = deleted
        return deleted

    def _reset(self, model: str, audited: str, state: str, *, rebuild: bool = False) -> None:
        name, version = model.rsplit(":", 1)
        audit: dict[str, Any] = {"projection": model}
        if rebuild:
            audit["rebuild"] = True
        with self._writing.audited(audited, audit) as action:
            history = action.opened.require_history()
            history.ensure(name, int(version), within=action.unit)
            history.reset(model, state=state, within=action.unit)
        self._forget_runner(model)

    def _change_state(
        self, reference: str, state: str, only_from: tuple[str, ...], audited: str
    ) -> None:
        projection = self.projection_of(reference)
        model = projection.reference()
        with self._writing.audited(audited, {"projection": model}) as action:
            history = action.opened.require_history()
            history.ensure(projection.name, projection.version, within=action.unit)
            if not history.change_state(model, state, only_from=only_from, within=action.unit):
                current = history.status(model)
                shown = current.state if current else "never run"
                raise ProjectionStateError(f"{model} is {shown}: it cannot be {_VERBS[state]}")
