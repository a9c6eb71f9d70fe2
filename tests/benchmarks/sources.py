"""Other tools' stores (issue 17): the console and ``import-from`` on a 1M-event store the
``eventsourcing`` library wrote itself (SQLite), with gaps in its positions.

Rows: the event log's first paint and 30 jumps anywhere (p90) over the source, and the
rate of ``import-from`` against Eventscope's own bulk import of the same events, in the
same run. Writes docs/benchmarks-sources.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import psutil
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from core.store.jsonlines import export_line
from core.workspace import Workspace
from tests.benchmarks.run import CACHE_DIR, ROOT, environment, per_second, write_markdown

REPORT: Final = ROOT / "docs" / "benchmarks-sources.md"
#: Events per account: one Opened, then deposits.
PER_ACCOUNT: Final = 5
#: Accounts saved by one ``Application.save`` (one transaction of the library's).
SAVE_BATCH: Final = 2_000
#: One row in this many is deleted from the measured copy: gaps, as rolled-back
#: PostgreSQL sequences leave them.
GAP_EVERY: Final = 1_000
JUMPS: Final = 30
FIRST_PAINT_TARGET_MS: Final = 500
JUMP_TARGET_MS: Final = 50
IMPORT_RATIO_TARGET: Final = 0.5


class Account(Aggregate):
    """The application the library writes: accounts opened, then deposits."""

    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event("Deposited")
    def deposit(self, amount: int, note: str) -> None:
        self.balance += amount


def build_store(path: Path, events: int) -> None:
    """``events`` events written by the library's own application and SQLite recorder."""
    app = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    rng = random.Random(7)
    accounts = events // PER_ACCOUNT
    for start in range(0, accounts, SAVE_BATCH):
        batch = []
        for n in range(start, min(accounts, start + SAVE_BATCH)):
            account = Account(owner=f"owner-{n:07d}")
            for _ in range(PER_ACCOUNT - 1):
                account.deposit(rng.randint(1, 10_000), note=f"sku-{rng.randint(1, 5_000)}")
            batch.append(account)
        app.save(*batch)
    app.close()


def cached_store(events: int) -> Path:
    """The library's store of ``events`` events, built once under the bench cache."""
    path = CACHE_DIR / f"eventsourcing-{events}-v1.db"
    if not path.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        building = path.with_suffix(".building")
        building.unlink(missing_ok=True)
        print(f"building the eventsourcing store ({events:,} events) ...", file=sys.stderr)
        began = time.perf_counter()
        build_store(building, events)
        building.rename(path)
        print(f"built in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return path


def gappy_copy(source: Path, folder: Path) -> tuple[Path, int]:
    """A copy with one row in GAP_EVERY deleted; returns it and the rows left."""
    copy = folder / "source.db"
    shutil.copyfile(source, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid % ? = 0", (GAP_EVERY,))
        (left,) = conn.execute("SELECT count(*) FROM stored_events").fetchone()
    conn.close()
    return copy, int(left)


def console(url: str) -> dict[str, Any]:
    """The event log over the source, offscreen: first paint, then jumps anywhere."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from console.panels.event_log import EventLogPanel
    from console.workers import TaskRunner

    app = QApplication.instance() or QApplication([])

    def wait(signal: Any, start: Any, timeout_ms: int = 60_000) -> float:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        began = time.perf_counter()
        start()
        loop.exec()
        QCoreApplication.processEvents()  # the paint of what arrived
        elapsed = time.perf_counter() - began
        signal.disconnect(loop.quit)
        return elapsed * 1000

    workspace = Workspace.open(url, load_plugins=False)
    runner = TaskRunner()
    log = EventLogPanel(workspace.events, runner, live_tail=False)
    log.resize(1000, 700)
    first = wait(log.first_page_loaded, log.show)
    head = workspace.events.head_position()
    rng = random.Random(11)
    jumps = []
    for _ in range(JUMPS):
        target = rng.randint(1, head)
        jumps.append(wait(log.event_selected, lambda t=target: log.jump_to_position(t)))
        current = log.current_event()
        assert current is not None and current.position >= target, (target, current)
    log.close()
    runner.shutdown()
    workspace.close()
    app.processEvents()
    jumps.sort()
    return {
        "first_paint_ms": first,
        "jump_median_ms": statistics.median(jumps),
        "jump_p90_ms": jumps[int(len(jumps) * 0.9)],
    }


def imports(url: str, folder: Path) -> dict[str, Any]:
    """``import-from`` the source, then Eventscope's own bulk import of the same events
    (the copy's export as JSON lines), each into a fresh store."""
    from core.sources import open_source

    target = folder / "imported.db"
    with (
        open_source(url) as source,
        Workspace.open(str(target), read_only=False, load_plugins=False) as workspace,
    ):
        began = time.perf_counter()
        copied = workspace.writing.import_from(source)
        from_seconds = time.perf_counter() - began
        lines = [export_line(row) for row in workspace.handle.store.iter_raw()]
    with Workspace.open(str(folder / "native.db"), read_only=False, load_plugins=False) as native:
        began = time.perf_counter()
        again = native.writing.import_lines(lines)
        native_seconds = time.perf_counter() - began
    assert again.appended == copied.appended
    return {
        "events": copied.appended,
        "from_seconds": from_seconds,
        "native_seconds": native_seconds,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    busy_before = psutil.cpu_percent(interval=1.0)
    started = time.perf_counter()
    built = cached_store(args.events)
    folder = Path(tempfile.mkdtemp(prefix="eventscope-sources-bench-"))
    try:
        copy, rows = gappy_copy(built, folder)
        url = f"eventsourcing+sqlite:///{copy}"
        shown = console(url)
        print(shown, file=sys.stderr)
        imported = imports(url, folder)
        print(imported, file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    events = imported["events"]
    from_rate = events / imported["from_seconds"]
    native_rate = events / imported["native_seconds"]
    ratio = from_rate / native_rate
    table = "\n".join(
        [
            "| # | benchmark | Eventscope | baseline (same run) | ratio | target | result |",
            "|---|---|--:|--:|--:|---|---|",
            f"| 1 | event log over the source: first paint | {shown['first_paint_ms']:,.0f} ms "
            f"| — | — | < {FIRST_PAINT_TARGET_MS} ms "
            f"| {'PASS' if shown['first_paint_ms'] < FIRST_PAINT_TARGET_MS else 'MISS'} |",
            f"| 2 | event log over the source: jump to a random position, p90 of {JUMPS} "
            f"(median {shown['jump_median_ms']:,.1f} ms) | {shown['jump_p90_ms']:,.1f} ms | — "
            f"| — | < {JUMP_TARGET_MS} ms "
            f"| {'PASS' if shown['jump_p90_ms'] < JUMP_TARGET_MS else 'MISS'} |",
            f"| 3 | `import-from` the source ({events:,} events) vs Eventscope's own bulk import "
            "of the same events (`import` of their JSON lines) "
            f"| {per_second(events, imported['from_seconds'])} "
            f"| {per_second(events, imported['native_seconds'])} | {ratio:.2f}x "
            f"| ≥ {IMPORT_RATIO_TARGET}x | {'PASS' if ratio >= IMPORT_RATIO_TARGET else 'MISS'} |",
        ]
    )
    print(table)
    notes = [
        f"- source: {args.events:,} events written by the eventsourcing library itself "
        f"(`Application.save` of {SAVE_BATCH:,} `Account` aggregates at a time, "
        f"{PER_ACCOUNT} events each, its SQLite recorder, default JSON transcoder), built "
        f"once and cached under {CACHE_DIR}; every run measures a copy from which one row "
        f"in {GAP_EVERY:,} was deleted ({rows:,} rows left): gaps in its positions, as "
        "rolled-back PostgreSQL sequences leave them.",
        "- rows 1-2: an `EventLogPanel` (1000x700, offscreen, live tail off) over "
        "`Workspace.open('eventsourcing+sqlite:///…').events`; first paint is from `show()` "
        "to the first page loaded and painted; each jump is `jump_to_position` of a random "
        "position (the first event at or after it) until the event is selected and painted; "
        "every jump's event is checked to be at or after its target.",
        "- row 3: `Writing.import_from` of the source into a new SQLite store (chunks of "
        "50,000, ids derived as DESIGN §8 says, versions rebased), then the same events as "
        "that store exports them, as JSON lines in memory, through `Writing.import_lines` "
        "into another new store; each timed alone, the search index update included.",
        f"- whole run: {time.perf_counter() - started:.0f} s.",
    ]
    write_markdown(
        args.output,
        title="Benchmarks: other tools' stores",
        module="tests.benchmarks.sources",
        target="bench-sources",
        scope="every figure in one run",
        header=environment(busy_before),
        table=table,
        notes=notes,
    )


if __name__ == "__main__":
    main()
