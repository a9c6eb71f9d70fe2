"""How the time-travel panel words events, document changes and A/B diffs (plain text)."""

from __future__ import annotations

from typing import Any

from console.panels.timetravel.documents_model import compact
from core.events import RecordedEvent, format_time
from core.timetravel.diff import DiffSummary
from core.timetravel.lineage import DocumentChange

__all__ = ["describe_change", "describe_diff", "describe_event"]


def _value_at(doc: dict[str, Any] | None, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def describe_change(change: DocumentChange) -> list[str]:
    """A changed document as lines: ``key  path: before → after`` per changed path."""
    if change.kind != "changed":
        return [f"{change.key}  {change.kind}"]
    return [
        f"{change.key}  {path}: {compact(_value_at(change.before, path))} → "
        f"{compact(_value_at(change.after, path))}"
        for path in change.paths
    ]


def describe_event(event: RecordedEvent) -> str:
    """``#151 · order-34@2 · OrderShipped · 2026-02-24 22:49:45.873780Z``."""
    moment = format_time(event.recorded_at).replace("T", " ")
    return f"#{event.position} · {event.stream_id}@{event.version} · {event.type} · {moment}"


def describe_diff(low: int, high: int, diff: DiffSummary) -> str:
    """A diff summary in one line."""
    paths = ", ".join(f"{path} {count}" for path, count in diff.paths.items())
    return (
        f"#{low} → #{high}: {diff.added} added, {diff.removed} removed, {diff.changed} changed"
        + (f" ({paths})" if paths else "")
        + f", {diff.unchanged} unchanged"
    )
