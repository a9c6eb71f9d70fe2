"""Rebuilding several projection versions at once: a process per version, on the cores.

Each version is rebuilt in a process of its own (``multiprocessing``'s spawn: a fresh
interpreter, nothing inherited but the arguments), which opens the store itself, takes
the version's lease and commits its own batches, exactly as ``eventscope projections
rebuild REF`` does in one process: the reset and its ``$audit`` event, the run history,
the lease given back. SQLite writers take turns at ``BEGIN IMMEDIATE`` (each waits up
to the store's busy timeout, 30 s, for the others' commits); PostgreSQL's run side by
side.

The parent only starts processes (at most ``jobs`` at once), relays their progress and
collects how each ended. A version that faults, or whose process dies, is reported as
such; the others' results stand. Setting ``stop`` asks every process to stop between
batches (SIGTERM: what each committed stays, its lease is given back); one that has not
stopped ``stop_grace`` seconds later is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from core.jobs import Job
    from core.projections.runner import RunResult

__all__ = [
    "CANCELLED",
    "FAILED",
    "FAULTED",
    "INACTIVE",
    "LEASED",
    "NOT_STARTED",
    "REBUILT",
    "RebuildReport",
    "VersionRebuild",
    "default_jobs",
    "rebuild_in_processes",
]

#: How a version's rebuild ended.
REBUILT: Final = "rebuilt"  # caught up to the head
FAULTED: Final = "faulted"  # a handler failed: faulted at its event, the batches before kept
INACTIVE: Final = "inactive"  # paused, faulted or retired meanwhile (detail: the state)
LEASED: Final = "leased"  # a worker holds its lease (detail: who)
CANCELLED: Final = "cancelled"  # stopped between batches (detail: where)
FAILED: Final = "failed"  # an error, or its process died (detail: one line)
NOT_STARTED: Final = "not started"  # stopped before its process was started

#: Seconds a process asked to stop has to end its batch and give its lease back.
STOP_GRACE: Final = 30.0
#: Seconds between two looks at ``stop`` while waiting for the processes.
_POLL: Final = 0.2

#: Called in the parent with (reference, positions done, positions to do).
RebuildProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class VersionRebuild:
    """How one version's rebuild ended: ``outcome`` is one of the constants above."""

    reference: str
    outcome: str
    result: RunResult | None = None  # REBUILT and FAULTED (and the fault), else None
    detail: str | None = None  # one line for the other outcomes

    @property
    def failed(self) -> bool:
        """Whether it faulted or failed (the command's exit code says so)."""
        return self.outcome in (FAULTED, FAILED)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """Every version's outcome (in the order asked), the processes used and the time."""

    versions: tuple[VersionRebuild, ...]
    processes: int
    seconds: float
    positions: int = field(init=False)

    def __post_init__(self) -> None:
        scanned = sum(v.result.scanned for v in self.versions if v.result is not None)
        object.__setattr__(self, "positions", scanned)

    @property
    def rate(self) -> float:
        """Positions per second, summed over the versions (their total over the wall time)."""
        return self.positions / self.seconds if self.seconds > 0 else 0.0

    @property
    def cancelled(self) -> bool:
        """Whether ``stop`` cut it short."""
        return any(v.outcome in (CANCELLED, NOT_STARTED) for v in self.versions)


def default_jobs(versions: int) -> int:
    """Processes for ``versions`` rebuilds: one per core this process may use, at most
    one per version."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, versions))


def rebuild_in_processes(
    location: str,
    references: Sequence[str],
    *,
    plugin_dirs: Sequence[str | os.PathLike[str]] = (),
    models: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    batch_size: int | None = None,
    lease_seconds: float | None = None,
    on_progress: RebuildProgress | None = None,
    stop: threading.Event | None = None,
    stop_grace: float = STOP_GRACE,
) -> RebuildReport:
    """Rebuild projection versions, a process per version, ``jobs`` at a time.

    Args:
        location: the store, as ``Workspace.open`` takes it (a file or a URL: each
            process opens it again, so not an in-memory store).
        references: ``name:version`` of each version (the order of the report).
        plugin_dirs: as ``Workspace.open`` takes them (``EVENTSCOPE_PLUGINS`` is
            inherited).
        models: the sidecar store of another tool's store, as ``Workspace.open`` takes it.
        jobs: processes at once (default: :func:`default_jobs`).
        batch_size: positions per transaction (default: the runner's).
        lease_seconds: how long each lease lasts without a commit renewing it.
        on_progress: called in this thread with each version's progress after each of
            its batches.
        stop: set it (from a signal handler or another thread) to stop every process.
        stop_grace: seconds a process asked to stop has before it is killed.
    """
    unique = list(dict.fromkeys(references))
    processes = jobs if jobs is not None else default_jobs(len(unique))
    processes = max(1, min(processes, len(unique) or 1))
    stop = stop if stop is not None else threading.Event()
    context = multiprocessing.get_context("spawn")
    pending = list(unique)
    running: list[_Child] = []
    outcomes: dict[str, VersionRebuild] = {}
    stopping_since: float | None = None
    began = time.perf_counter()
    try:
        while pending or running:
            if stop.is_set() and stopping_since is None:
                stopping_since = time.monotonic()
                for reference in pending:
                    outcomes[reference] = VersionRebuild(reference, NOT_STARTED)
                pending.clear()
                for child in running:
                    child.process.terminate()  # SIGTERM: the child cancels its job
            while pending and len(running) < processes:
                running.append(
                    _start(
                        context,
                        pending.pop(0),
                        (
                            str(location),
                            None if models is None else str(models),
                            [str(d) for d in plugin_dirs],
                            batch_size,
                            lease_seconds,
                        ),
                    )
                )
            waitables: list[Any] = [c.connection for c in running]
            waitables += [c.process.sentinel for c in running]
            wait(waitables, timeout=_POLL)
            for child in list(running):
                child.drain(on_progress)
                if child.process.is_alive():
                    continue
                child.process.join()
                child.drain(on_progress)  # what it sent just before it ended
                child.connection.close()
                running.remove(child)
                outcomes[child.reference] = child.outcome()
            if stopping_since is not None and time.monotonic() - stopping_since > stop_grace:
                for child in running:
                    child.process.kill()
    except BaseException:  # the parent is failing: no process may outlive it
        for child in running:
            child.process.kill()
            child.process.join()
        raise
    seconds = time.perf_counter() - began
    return RebuildReport(tuple(outcomes[r] for r in unique), processes, seconds)


class _Child:
    """One version's process and the parent's end of its pipe."""

    def __init__(self, reference: str, process: BaseProcess, connection: Connection) -> None:
        self.reference = reference
        self.process = process
        self.connection = connection
        self.final: tuple[Any, ...] | None = None

    def drain(self, on_progress: RebuildProgress | None) -> None:
        """Take every message waiting: progress goes on, the last word is kept."""
        connection = self.connection
        try:
            while connection.poll():
                message = connection.recv()
                if message[0] == "progress":
                    if on_progress is not None:
                        on_progress(self.reference, message[1], message[2])
                else:
                    self.final = message
        except (EOFError, OSError):
            pass  # the process ended mid-message: its exit code tells the rest

    def outcome(self) -> VersionRebuild:
        """How it ended: its last word, or how its process died without one."""
        if self.final is not None:
            kind, payload = self.final
            if kind in (REBUILT, FAULTED):
                return VersionRebuild(self.reference, kind, result=payload)
            return VersionRebuild(self.reference, kind, detail=payload)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return VersionRebuild(
            self.reference,
            FAILED,
            detail=f"its rebuild process {how}; the batches it committed are kept",
        )


def _start(context: Any, reference: str, settings: tuple[Any, ...]) -> _Child:
    """Start one version's process. In the main thread, with Ctrl-C ignored meanwhile:
    the child inherits that (it is an ``exec``), so a Ctrl-C before it has set its own
    handler is not a traceback from its imports; the parent's handler comes back."""
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(
        target=_rebuild_one,
        args=(reference, *settings, theirs),
        name=f"eventscope-rebuild {reference}",
        daemon=True,
    )
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
    else:
        process.start()
    theirs.close()
    return _Child(reference, process, ours)


def _rebuild_one(
    reference: str,
    location: str,
    models: str | None,
    plugin_dirs: list[str],
    batch_size: int | None,
    lease_seconds: float | None,
    connection: Connection,
) -> None:
    """The child: rebuild one version under its lease, telling the parent as it goes."""
    from core.jobs import Job  # the child's imports: not the parent's business

    job = Job(lambda done, total: connection.send(("progress", done, total)))

    def cancel(_signum: int, _frame: object) -> None:
        # On a thread of its own: the handler may interrupt this thread inside the
        # job's lock, which cancel takes too.
        threading.Thread(target=job.cancel, daemon=True).start()

    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)
    try:
        final = _rebuild_under_lease(
            reference, location, models, plugin_dirs, batch_size, lease_seconds, job
        )
    except BaseException as error:  # reported, whatever it is: the parent names the version
        final = (FAILED, _one_line(error))
    try:
        connection.send(final)
        connection.close()
    except OSError:
        pass  # the parent is gone: nobody to tell


def _rebuild_under_lease(
    reference: str,
    location: str,
    models: str | None,
    plugin_dirs: list[str],
    batch_size: int | None,
    lease_seconds: float | None,
    job: Job,
) -> tuple[str, Any]:
    from core.errors import Cancelled
    from core.projections.runner import ProjectionInactive
    from core.services.projections import DEFAULT_LEASE_SECONDS, ProjectionLeased
    from core.workspace import Workspace

    with Workspace.open(
        location, read_only=False, plugin_dirs=plugin_dirs, models=models
    ) as workspace:
        projections = workspace.projections
        try:
            with job.running():
                result = projections.run_leased(
                    reference,
                    rebuild=True,
                    batch_size=batch_size,
                    lease_seconds=lease_seconds or DEFAULT_LEASE_SECONDS,
                )
        except Cancelled:
            checkpoint = projections.status(reference).checkpoint
            return CANCELLED, f"cancelled at checkpoint {checkpoint}; the batches done are kept"
        except ProjectionInactive as inactive:
            return INACTIVE, inactive.status.state
        except ProjectionLeased as leased:
            return LEASED, str(leased)
    return (FAULTED if result.fault is not None else REBUILT), result


def _one_line(error: BaseException) -> str:
    from core.errors import EventscopeError, last_line

    text = last_line(str(error)) if str(error) else ""
    if isinstance(error, EventscopeError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
