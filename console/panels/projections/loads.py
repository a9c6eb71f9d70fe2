"""What the projections panel asks the services, as plain functions run on the task runner,
and the words it shows figures in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.events import from_micros, wall_clock_micros
from core.jobs import checkpoint
from core.services.events import EventQueries
from core.services.projections import ProjectionService, ProjectionStatus

__all__ = [
    "HISTORY_WINDOW_US",
    "MAX_RUNS",
    "History",
    "Run",
    "format_duration",
    "format_lag",
    "format_rate",
    "load_history",
    "load_statuses",
    "stored_versions",
]

#: How far back the charts and the run table go.
HISTORY_WINDOW_US: Final = 3_600_000_000
#: The most runs read for them (a projection run every second for an hour has 3,600).
MAX_RUNS: Final = 300
_SECOND: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the history, as the panel shows it (times in microseconds)."""

    started_at: int
    duration_us: int
    from_position: int
    to_position: int
    events: int
    outcome: str
    error: str | None
    worker: str | None

    @property
    def ended_at(self) -> int:
        """When it ended."""
        return self.started_at + self.duration_us

    @property
    def throughput(self) -> float | None:
        """Positions per second while it ran (None for a run that moved nothing)."""
        moved = self.to_position - self.from_position
        if moved <= 0 or self.duration_us <= 0:
            return None
        return moved * _SECOND / self.duration_us


@dataclass(frozen=True, slots=True)
class History:
    """A projection version's runs of the last hour and the chart series drawn from them.

    Lag is what can be derived honestly: the run history stores no head, but the log
    does. Positions' ``recorded_at`` never decrease (DESIGN §2), so the head at a moment
    T is the last position recorded at or before T (``EventQueries.position_at``). The
    lag series therefore has, per run, the events behind at its start (head then minus
    ``from_position``) and at its end (head then minus ``to_position``), plus the lag
    now: a sawtooth that is exact at those moments (as exact as the store's clock) and
    says nothing about the time in between. Throughput is one point per run that moved
    the checkpoint: positions covered over its duration, at its end.

    Times are seconds since the epoch (what pyqtgraph's date axis takes).
    """

    reference: str
    runs: list[Run]  # newest first
    lag_times: list[float]
    lag_events: list[int]
    rate_times: list[float]
    rate_values: list[float]


def load_statuses(projections: ProjectionService) -> list[ProjectionStatus]:
    """Every loaded projection version's status."""
    return projections.statuses()


def load_history(
    projections: ProjectionService,
    events: EventQueries | None,
    reference: str,
    *,
    now_us: int | None = None,
) -> History:
    """The runs of ``reference`` started in the last hour, with the lag and throughput
    series of :class:`History` (two index probes of the log per run; without the log,
    ``events`` None, the lag series is the lag now only)."""
    now = wall_clock_micros() if now_us is None else now_us
    since = now - HISTORY_WINDOW_US
    runs = [
        Run(
            record.started_at,
            record.duration_us,
            record.from_position,
            record.to_position,
            record.events,
            record.outcome,
            record.error,
            record.worker,
        )
        for record in projections.runs(reference, limit=MAX_RUNS)
        if record.started_at >= since
    ]
    lag_times: list[float] = []
    lag_events: list[int] = []
    rate_times: list[float] = []
    rate_values: list[float] = []
    for run in reversed(runs):  # oldest first
        checkpoint()  # a new selection cancels this load
        if events is not None:
            for moment, position in (
                (run.started_at, run.from_position),
                (run.ended_at, run.to_position),
            ):
                lag_times.append(moment / _SECOND)
                lag_events.append(max(0, events.position_at(from_micros(moment)) - position))
        if run.throughput is not None:
            rate_times.append(run.ended_at / _SECOND)
            rate_values.append(run.throughput)
    status = projections.status(reference)
    lag_times.append(now / _SECOND)
    lag_events.append(status.lag)
    return History(reference, runs, lag_times, lag_events, rate_times, rate_values)


def stored_versions(projections: ProjectionService, reference: str) -> int:
    """How many document versions a projection version keeps (its documents and their
    history): what a reset or a retire drops."""
    return projections.history().versions(projections.projection_of(reference).reference())


def format_lag(events: int, seconds: float) -> str:
    """``0`` when caught up, else ``1,204 ev · 3.2 s``."""
    if events <= 0:
        return "0"
    return f"{events:,} ev · {format_duration(seconds)}"


def format_duration(seconds: float) -> str:
    """``850 ms``, ``3.2 s``, ``4 min 5 s``, ``2 h 3 min``, ``3 d 4 h``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86_400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86_400} d {whole % 86_400 // 3600} h"


def format_rate(per_second: float) -> str:
    """``0``, ``8.5 ev/s``, ``12,400 ev/s``."""
    if per_second <= 0:
        return "0"
    if per_second < 10:
        return f"{per_second:.1f} ev/s"
    return f"{round(per_second):,} ev/s"
