"""Console benchmarks of time travel and compare (issue 13), on the 1M-event orders store.

Run with ``make bench-console`` (after the event-log figures) or alone:
``python -m tests.benchmarks.console_timetravel [--orders N] [--diff-orders N]``.

The parent prepares the stores exactly as ``make bench-timetravel`` does (the cached
orders demo stores, copied; ``order_summary:1`` run on the big one, ``:1`` and ``:2`` on
the diff store), then starts an offscreen child that opens the panels on them, so the
child's peak RSS is the console's own:

- a drag of the time-travel cursor: the cursor line is moved (as a mouse drag moves it)
  to a random point and left there; timed from that last move until the table shows the
  model there (``documents_loaded``). The panel waits ``DRAG_DELAY_MS`` for the drag to
  pause before it loads, and that wait is inside the figure;
- one step: the Right key in the table, until the step's effect is shown;
- the compare summary of ``order_summary:1`` against ``:2`` (100,000 documents each),
  until the final summary, with a 10 ms heartbeat timer on the GUI thread whose late
  ticks are the GUI's stalls.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import psutil

from tests.benchmarks.projections import Row, render
from tests.benchmarks.run import ROOT, environment, write_markdown
from tests.benchmarks.timetravel import MODEL, OTHER, prepare

REPORT: Final = ROOT / "docs" / "benchmarks-console-timetravel.md"
DRAGS: Final = 60
STEPS: Final = 60
COMPARES: Final = 2
HEARTBEAT_MS: Final = 10
DRAG_TARGET: Final = 0.100  # seconds, p95
STEP_TARGET: Final = 0.050  # seconds, p95
COMPARE_TARGET: Final = 2.0  # seconds
HEARTBEAT_TARGET: Final = 0.100  # seconds, p99 of the gaps between ticks
RSS_TARGET_MB: Final = 400.0


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, (len(ordered) * q + 99) // 100 - 1))]


def child(plan_path: Path) -> None:
    """Inside the offscreen subprocess: open the panels and time them."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from console.panels.compare import ComparePanel
    from console.panels.timetravel import TimeTravelPanel
    from console.workers import TaskRunner
    from core.workspace import Workspace

    plan = json.loads(plan_path.read_text())
    app = QApplication.instance() or QApplication([])

    def wait(signal: Any, start: Any, timeout_ms: int = 120_000) -> float:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        began = time.perf_counter()
        start()
        loop.exec()
        QCoreApplication.processEvents()  # the paint of what arrived
        elapsed = time.perf_counter() - began
        signal.disconnect(loop.quit)
        return elapsed

    figures: dict[str, Any] = {}
    runner = TaskRunner()
    big = Workspace.open(plan["big"], read_only=True)
    panel = TimeTravelPanel(big.timetravel, big.events, big.projections, runner)
    panel.resize(1180, 660)
    wait(panel.step_shown, lambda: (panel.model_combo.setCurrentText(MODEL), panel.show()))
    wait(panel.step_shown, lambda: panel.show_position(plan["head"] // 2))
    line = panel.cursor_line
    drags = []
    for moment in plan["drag_times"]:
        drags.append(wait(panel.documents_loaded, lambda m=moment: line.setValue(m)))
    figures["drags"] = drags
    figures["drag_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = []
    panel.table.setFocus(Qt.FocusReason.OtherFocusReason)
    for _ in range(STEPS):
        steps.append(wait(panel.step_shown, lambda: QTest.keyClick(panel.table, Qt.Key.Key_Right)))
    figures["steps"] = steps

    small = Workspace.open(plan["small"], read_only=True)
    compare = ComparePanel(small.timetravel, small.projections, runner)
    compare.resize(1180, 660)
    compare.show()
    compare.set_references(MODEL, OTHER)
    clock = QElapsedTimer()
    gaps: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)

    def tick() -> None:
        gaps.append(clock.nsecsElapsed() / 1e9)
        clock.restart()

    heartbeat.timeout.connect(tick)
    summaries: list[dict[str, Any]] = []
    compare.compared.connect(summaries.append)
    times = []
    for _ in range(COMPARES):
        clock.start()
        heartbeat.start()
        times.append(wait(compare.compared, compare.compare))
        heartbeat.stop()
    figures["compares"] = times
    figures["summary"] = summaries[-1] if summaries else None
    figures["gaps"] = gaps
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runner.shutdown()
    big.close()
    small.close()
    print(json.dumps(figures))
    app.quit()


def drag_times(path: str, samples: int, seed: int = 13) -> list[float]:
    """Random points of the big store, as the chart's x values (seconds since the epoch)."""
    rng = random.Random(seed)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        head = int(conn.execute("SELECT max(position) FROM events").fetchone()[0])
        moments = [
            conn.execute(
                "SELECT recorded_at FROM events WHERE position = ?", (rng.randint(1, head),)
            ).fetchone()[0]
            / 1e6
            for _ in range(samples)
        ]
    conn.close()
    return moments


def rows(figures: dict[str, Any], plan: dict[str, Any], diff_orders: int) -> list[Row]:
    """The table."""
    drags, steps = figures["drags"], figures["steps"]
    slowest = max(figures["compares"])
    gaps = figures["gaps"]
    drag95, step95, gap99 = percentile(drags, 95), percentile(steps, 95), percentile(gaps, 99)
    return [
        Row(
            "1",
            f"cursor drag paused → table shows `{MODEL}` at the point, p95 of {len(drags)} "
            f"(median {percentile(drags, 50) * 1000:.0f} ms, max {max(drags) * 1000:.0f} ms; "
            f"includes the panel's wait for the pause)",
            f"{drag95 * 1000:.0f} ms",
            "—",
            "—",
            "< 100 ms",
            drag95 >= DRAG_TARGET,
        ),
        Row(
            "2",
            f"one step (Right key) → the event's effect shown, p95 of {len(steps)} "
            f"(median {percentile(steps, 50) * 1000:.0f} ms)",
            f"{step95 * 1000:.0f} ms",
            "—",
            "—",
            "< 50 ms",
            step95 >= STEP_TARGET,
        ),
        Row(
            "3",
            f"compare summary of `{MODEL}` vs `{OTHER}` ({diff_orders:,} documents each), "
            f"slowest of {len(figures['compares'])}",
            f"{slowest:.2f} s",
            "—",
            "—",
            "< 2 s",
            slowest >= COMPARE_TARGET,
        ),
        Row(
            "3b",
            f"GUI heartbeat ({HEARTBEAT_MS} ms timer) during the compares: p99 gap between "
            f"ticks (max {max(gaps) * 1000:.0f} ms, {len(gaps)} ticks)",
            f"{gap99 * 1000:.0f} ms",
            "—",
            "—",
            "< 100 ms",
            gap99 >= HEARTBEAT_TARGET,
        ),
        Row(
            "4",
            "peak RSS of the console process (rows 1–3)",
            f"{figures['peak_rss_mb']:.0f} MB",
            "—",
            "—",
            "< 400 MB",
            figures["peak_rss_mb"] >= RSS_TARGET_MB,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Prepare the stores, measure in an offscreen child, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=240_000, help="orders of the big store")
    parser.add_argument("--diff-orders", type=int, default=100_000, help="orders to compare")
    parser.add_argument("--output", type=Path, default=REPORT, help="markdown report")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return
    busy_before = psutil.cpu_percent(interval=1.0)
    folder = Path(tempfile.mkdtemp(prefix="eventscope-console-timetravel-"))
    try:
        plan = prepare(folder, args.orders, args.diff_orders)
        plan["drag_times"] = drag_times(plan["big"], DRAGS)
        plan_path = folder / "plan.json"
        plan_path.write_text(json.dumps(plan))
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        done = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.console_timetravel", "--child", plan_path],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"the measuring child failed:\n{done.stderr}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        table = render(rows(figures, plan, args.diff_orders))
        print(table)
        summary = figures["summary"] or {}
        notes = [
            f"- stores: as `make bench-timetravel` prepares them: `{MODEL}` run on the "
            f"{args.orders:,}-order store (head {plan['head']:,}), `{MODEL}` and `{OTHER}` on the "
            f"{args.diff_orders:,}-order store; the console opens both read-only in an "
            "offscreen child process.",
            f"- row 1: the cursor line set to {DRAGS} random events' times (a drag's last "
            "move); the figure runs from that move to the table's first page, and so "
            "includes the panel's 60 ms wait for the drag to pause.",
            "- row 3: the summary shown: "
            + ", ".join(f"{k} {v:,}" for k, v in summary.items() if isinstance(v, int)),
        ]
        write_markdown(
            args.output,
            title="Console benchmarks: time travel and compare",
            module="tests.benchmarks.console_timetravel",
            target="bench-console",
            scope="every figure in one run",
            header=environment(busy_before),
            table=table,
            notes=notes,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
