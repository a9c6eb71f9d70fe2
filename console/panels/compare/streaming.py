"""A read-model diff consumed on a worker thread and handed to the GUI in chunks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.jobs import checkpoint
from core.timetravel.diff import DiffEntry, ReadModelDiff

__all__ = [
    "CHUNK_ENTRIES",
    "CHUNK_SECONDS",
    "DiffChunk",
    "DiffFeed",
    "DiffTally",
    "entries_of",
    "stream_diff",
]

CHUNK_ENTRIES = 500
CHUNK_SECONDS = 0.1


class DiffTally:
    """What :func:`~core.timetravel.diff.summarize_diff` counts, one entry at a time, so
    a partial summary can be shown while the diff runs."""

    def __init__(self) -> None:
        self.counts = {"added": 0, "removed": 0, "changed": 0}
        self.paths: dict[str, int] = {}

    @property
    def total(self) -> int:
        """Entries counted so far."""
        return sum(self.counts.values())

    def add(self, entry: DiffEntry) -> None:
        """Count one entry and its changed paths."""
        self.counts[entry.kind] += 1
        for path in entry.paths:
            self.paths[path] = self.paths.get(path, 0) + 1

    def to_dict(self, unchanged: int) -> dict[str, Any]:
        """The summary so far, shaped as ``summarize_diff(...).to_dict()``."""
        return {**self.counts, "unchanged": unchanged, "paths": dict(sorted(self.paths.items()))}


@dataclass(frozen=True, slots=True)
class DiffChunk:
    """Entries for the table (none once it holds its maximum) and the summary so far."""

    generation: int
    entries: tuple[DiffEntry, ...]
    summary: dict[str, Any]
    final: bool = False


class DiffFeed(QObject):
    """Carries chunks from the worker thread to the GUI thread.

    It lives on the GUI thread; emitting from the worker queues each chunk there.
    """

    chunk_produced = Signal(object)  # a DiffChunk


def stream_diff(
    entries: Iterable[DiffEntry],
    unchanged: Callable[[], int],
    send: Callable[[DiffChunk], None],
    *,
    generation: int,
    keep: int,
    chunk_entries: int = CHUNK_ENTRIES,
    chunk_seconds: float = CHUNK_SECONDS,
) -> DiffChunk:
    """Consume a diff, sending a chunk every ``chunk_entries`` entries or ``chunk_seconds``.

    Runs on a worker thread: each chunk ends with :func:`core.jobs.checkpoint`, so a
    cancelled task stops there. The entries are closed when it returns or raises (a
    diff stopped early holds store reads open).

    Args:
        entries: the diff's entries in key order.
        unchanged: the unchanged count so far (final once ``entries`` is exhausted).
        send: called with each chunk but the last, from this thread.
        generation: stamped on each chunk, so stale ones can be dropped.
        keep: how many entries in all to hand on for the table; the rest are only counted.

    Returns:
        The last chunk (``final``): the remaining entries and the whole summary.
    """
    tally = DiffTally()
    batch: list[DiffEntry] = []
    pending = 0
    last_sent = time.monotonic()
    try:
        for entry in entries:
            tally.add(entry)
            if tally.total <= keep:
                batch.append(entry)
            pending += 1
            if pending >= chunk_entries or time.monotonic() - last_sent >= chunk_seconds:
                send(DiffChunk(generation, tuple(batch), tally.to_dict(unchanged())))
                batch, pending, last_sent = [], 0, time.monotonic()
                checkpoint()
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()
    return DiffChunk(generation, tuple(batch), tally.to_dict(unchanged()), final=True)


def entries_of(diff: ReadModelDiff) -> Iterator[DiffEntry]:
    """The entries of a contract diff (a what-if's), in key order as a streamed diff has."""
    keys = sorted({*diff["added"], *diff["removed"], *diff["changed"]})
    for key in keys:
        if key in diff["added"]:
            yield DiffEntry("added", key, None, diff["added"][key])
        elif key in diff["removed"]:
            yield DiffEntry("removed", key, diff["removed"][key], None)
        else:
            change = diff["changed"][key]
            yield DiffEntry(
                "changed", key, change["before"], change["after"], tuple(change["paths"])
            )
