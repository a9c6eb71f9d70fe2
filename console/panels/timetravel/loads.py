"""What the time-travel panel asks the services, as plain functions run on the task runner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from console.panels.timeline import BucketPlan, plan_buckets
from core.events import RecordedEvent, from_micros, to_micros
from core.jobs import checkpoint
from core.services.events import EventQueries
from core.services.projections import ProjectionService
from core.services.timetravel import ReadModelAt, TimeTravel
from core.store import EventFilter
from core.timetravel.diff import DiffSummary, summarize_diff
from core.timetravel.lineage import EventEffect

__all__ = [
    "PAGE_SIZE",
    "Overview",
    "Page",
    "View",
    "load_overview",
    "load_page",
    "load_view",
]

PAGE_SIZE = 200
_MARGIN_FRACTION = 0.02
_MIN_MARGIN_US = 1_000_000
_MAX_MARKS = 500
_MAX_STREAM_EVENTS = 2_000


@dataclass(frozen=True, slots=True)
class Overview:
    """The chart's data: buckets over the store's span, the head, run and audit times."""

    head: int
    plan: BucketPlan | None  # None: the store is empty
    counts: list[int]
    view_us: tuple[int, int]
    runs_us: list[int]
    audits_us: list[int]


@dataclass(frozen=True, slots=True)
class Page:
    """Documents in key order, and whether more follow."""

    rows: list[tuple[str, dict[str, Any]]]
    has_more: bool


@dataclass(frozen=True, slots=True)
class View:
    """Everything shown for one point: the event there, and the read model or the stream."""

    position: int
    event: RecordedEvent | None  # the event at the position (None at 0)
    at: ReadModelAt | None = None
    page: Page | None = None
    effect: EventEffect | None = None
    diff: DiffSummary | None = None
    stream_events: list[RecordedEvent] | None = None
    stream_state: dict[str, Any] | None = None


def load_overview(events: EventQueries, projections: ProjectionService, target: int) -> Overview:
    """Buckets of about ``target`` slices over the store's span, with the marks."""
    head = events.head_position()
    span = events.time_span()
    if span is None:
        return Overview(head, None, [], (0, 1), [], [])
    first, last = to_micros(span[0]), to_micros(span[1])
    margin = max(_MIN_MARGIN_US, int((last - first) * _MARGIN_FRACTION))
    view_us = (first - margin, last + margin)
    plan = plan_buckets(view_us[0], view_us[1], target)
    counts = events.timeline(*_edges(plan), plan.count)
    runs = [run.started_at for run in projections.runs(limit=_MAX_MARKS)]
    audits = [
        to_micros(event.recorded_at)
        for event in events.read(EventFilter(stream_id="$audit"), limit=_MAX_MARKS)
    ]
    return Overview(head, plan, counts, view_us, runs, audits)


def _edges(plan: BucketPlan) -> tuple[datetime, datetime]:
    return from_micros(plan.start_us), from_micros(plan.end_us)


def load_page(timetravel: TimeTravel, at: ReadModelAt, after_key: str | None) -> Page:
    """The next page of a located read model's documents after ``after_key``."""
    rows = list(islice(timetravel.iter_documents(at, after_key=after_key), PAGE_SIZE + 1))
    return Page(rows[:PAGE_SIZE], len(rows) > PAGE_SIZE)


def load_view(
    timetravel: TimeTravel,
    events: EventQueries,
    point: int | datetime | None,
    *,
    model: str | None = None,
    stream_id: str | None = None,
    b_position: int | None = None,
    forward: bool = False,
) -> View:
    """The view at a point (a position, a time, or None: the head) of a read model
    ``model`` (``name:version``) or of a stream; a fold reports its progress.

    A position where no event is (a gap in another tool's store) shows the event before
    it, whose state is the same; or, ``forward`` (a step forward), the event after it.
    """
    head = events.head_position()
    if point is None:
        position = head
    elif isinstance(point, datetime):
        position = events.position_at(point)
    else:
        position = max(0, min(point, head))
    event = events.event_at(position) if position > 0 else None
    if event is None and position > 0:
        where = EventFilter(from_position=position)
        event = next(events.read(where, backwards=not forward, limit=1), None)
        if event is None and forward:  # nothing after the gap: stay where it was
            event = next(events.read(where, backwards=True, limit=1), None)
        position = event.position if event is not None else 0
    if stream_id is not None:
        where = EventFilter(stream_id=stream_id, to_position=position)
        shown = list(events.read(where, limit=_MAX_STREAM_EVENTS))
        version = shown[-1].version if shown else None
        state = timetravel.stream_state(stream_id, version).to_dict() if shown else None
        return View(position, event, stream_events=shown, stream_state=state)
    if model is None:
        return View(position, event)
    at = timetravel.locate(f"{model}@{position}")
    if not at.from_history:
        checkpoint(0, max(1, position))  # a fold: say so at once, then as the log is read
    page = load_page(timetravel, at, None)
    effect = timetravel.step(f"{model}@{position}") if event is not None else None
    diff = None
    if b_position is not None:
        low, high = sorted((b_position, position))
        diff = summarize_diff(timetravel.diff(f"{model}@{low}", f"{model}@{high}"))
    if not at.from_history:
        checkpoint(max(1, position), max(1, position))
    return View(position, event, at, page, effect, diff)
