"""Console benchmarks on a large store (issue 4): first paint, jumps, search, timeline, memory.

Run with ``make bench-console`` (``python -m tests.benchmarks.console [--events N]
[--runs cold,warm]``). The store is built once with the store's own schema and cached
(10M events take a few minutes and about 4 GB); every measurement runs in a fresh
offscreen subprocess, so its peak RSS is the console's own. It runs twice: cold (the OS
page cache dropped first, as on a first open; needs root) and warm, and the last step
of each is a type-filtered jump to the end of the log (issue 15, point 8). Prints one
table and writes docs/benchmarks-console.md.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

from core.store import SqlEventStore
from tests.benchmarks.run import StoreSchema, export_store

REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks-console.md"


RUN_NOTES = {
    "cold": "(OS page cache dropped first)",
    "warm": "(store pages cached)",
    "slow": "(each store read delayed {delay:.0f} ms)",
}
MEMORY_NOTES = """\
Memory (issue 15, point 8). Peak RSS is now the child's own high-water mark
(`VmHWM`). It was `ru_maxrss`, which Linux carries over from the parent at exec:
a child that prints only its `ru_maxrss`, started by a parent that once held
400 MB, reports 411 MB (its `VmHWM`: 10 MB). So the 366 MB measured cold right
after the benchmark had built and indexed the 10M store in its own process was
that process's peak, not the console's (168 MB run again, when nothing is built).
Measured directly, a cold run (OS page cache dropped) and a slow run (each store
read delayed) peak within 2 MB of the warm one: nothing queues up while reads are
slow (page loads are bounded by MAX_IN_FLIGHT and MAX_WANTED, the queries of a
jump or a filter are cancelled by the next, the timeline is one task per range).
A type-filtered jump to the end of the log used to read every match up to the
head into one list that was never trimmed: OrderPaid, 1,250,000 rows, 2,198 MB,
still loading after 60 s. The filtered log is now a window of at most 8 pages of
200 matches, and that jump reads the page of matches before the head and the page
from it: 200 rows held (its time is in the table).
"""
FILTERED_TYPE = "OrderPaid"  # about one event in eight: a jump to the end passes ~1.2M


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB.

    ``VmHWM``, the high-water mark of this process's own memory, not ``ru_maxrss``:
    Linux folds the parent's peak into a child's ``ru_maxrss`` at exec, so a child
    started by a parent that had just built and indexed the store reported the
    parent's 366 MB as its own (a child printing nothing but ``ru_maxrss`` reports
    411 MB under a parent that once held 400 MB; its ``VmHWM`` is 10 MB).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def rss_mb() -> float:
    """This process's resident set now, in MB."""
    return psutil.Process().memory_info().rss / 1024 / 1024


def rss_split_mb() -> dict[str, float]:
    """This process's resident set now by kind (Linux): heap and other anonymous memory,
    and file pages mapped (libraries, memory-mapped files), in MB."""
    fields = {"RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}
    split: dict[str, float] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition("\t")
            if name in fields:
                split[fields[name]] = int(rest.split()[0]) / 1024
    return split


def drop_page_cache() -> bool:
    """Write dirty pages and drop the OS page cache (Linux, root); whether it was dropped."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True


SLOW_READS = (  # what the event log and the timeline ask the store
    "read", "head_position", "position_at", "event_by_id", "count", "time_span", "timeline",
)  # fmt: skip


def slow_down(events: Any, delay_ms: float) -> None:
    """Make each of ``events``' read calls wait ``delay_ms`` first (on the worker thread
    that calls it), as a disk far slower than this one would."""
    for name in SLOW_READS:
        method = getattr(events, name)

        def slow(*args: Any, _method: Any = method, **options: Any) -> Any:
            time.sleep(delay_ms / 1000)
            return _method(*args, **options)

        setattr(events, name, slow)


def child(store: str, read_delay_ms: float = 0) -> None:
    """Inside the subprocess: open the window's panels on the store and time them."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from console.panels.event_log import EventLogPanel
    from console.panels.timeline import TimelinePanel
    from console.workers import TaskRunner
    from core.store import EventFilter
    from core.workspace import Workspace

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
        return elapsed

    results: dict[str, Any] = {}
    began = time.perf_counter()
    workspace = Workspace.open(store, read_only=True, load_plugins=False)
    if read_delay_ms:
        slow_down(workspace.events, read_delay_ms)
    runner = TaskRunner()
    log = EventLogPanel(workspace.events, runner)
    log.resize(1000, 700)
    log.set_live_tail(False)
    opened = time.perf_counter()
    wait(log.first_page_loaded, log.show)
    results["first_paint_ms"] = (time.perf_counter() - opened) * 1000
    results["first_paint_rss_mb"] = peak_rss_mb()
    results["first_paint_split_mb"] = rss_split_mb()
    results["open_ms"] = (opened - began) * 1000
    head = workspace.events.head_position()
    rng = random.Random(7)
    jumps = []
    for _ in range(30):
        target = rng.randint(1, head)
        jumps.append(wait(log.event_selected, lambda t=target: log.jump_to_position(t)) * 1000)
    jumps.sort()
    results["jump_median_ms"] = jumps[len(jumps) // 2]
    results["jump_p90_ms"] = jumps[int(len(jumps) * 0.9)]
    results["jumps_rss_mb"] = peak_rss_mb()
    results["jumps_split_mb"] = rss_split_mb()
    correlation = orjson.loads(
        next(
            iter(workspace.handle.store.iter_raw(EventFilter(from_position=head // 2), limit=1))
        ).metadata
    )["correlation_id"]
    searches = (
        ("search_common_ms", EventFilter(text="warehouse")),
        ("search_rare_ms", EventFilter(text="SKU-04242-M")),
        ("search_typed_ms", EventFilter(text="SKU-04242", types=("ItemAdded",))),
        ("search_prefix_ms", EventFilter(text="SKU-0424*")),
        ("search_broad_ms", EventFilter(text="ware*")),
        ("correlation_ms", EventFilter(correlation_id=correlation)),
    )
    for name, where in searches:
        results[name] = (
            wait(log.model.first_page_loaded, lambda w=where: log.model.set_filter(w)) * 1000
        )
        results[name.replace("_ms", "_rows")] = log.model.rowCount()
        results[name.replace("_ms", "_rss_mb")] = peak_rss_mb()
    results["searches_split_mb"] = rss_split_mb()
    timeline = TimelinePanel(workspace.events, runner)
    timeline.resize(1000, 250)
    results["timeline_ms"] = wait(timeline.timeline_loaded, timeline.show) * 1000
    results["timeline_rss_mb"] = peak_rss_mb()
    results["timeline_split_mb"] = rss_split_mb()
    # A type filter, then a jump to the end of the log (issue 15, point 8).
    results["filtered_rss_before_mb"] = rss_mb()
    edit = log.filter_edit("types")
    edit.setText(FILTERED_TYPE)
    wait(log.model.first_page_loaded, edit.returnPressed.emit)
    results["filtered_jump_ms"] = (
        wait(log.event_selected, lambda: log.jump_to_position(head)) * 1000
    )
    results["filtered_jump_rows"] = log.model.held_rows
    results["filtered_jump_rss_mb"] = peak_rss_mb()
    results["filtered_jump_split_mb"] = rss_split_mb()
    results["peak_rss_mb"] = peak_rss_mb()
    runner.shutdown()
    workspace.close()
    print(orjson.dumps(results).decode())
    app.quit()


def main(argv: list[str] | None = None) -> None:
    """Build (or reuse) the store, measure in a subprocess, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--runs",
        default="cold,warm,slow",
        help="comma-separated: cold (page cache dropped first; root), warm, and/or slow "
        "(warm, each read delayed by --read-delay-ms)",
    )
    parser.add_argument(
        "--read-delay-ms", type=float, default=50, help="the slow run's delay per store read"
    )
    parser.add_argument("--child", metavar="STORE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.read_delay_ms if args.runs == "slow" else 0)
        return
    folder = Path(tempfile.mkdtemp(prefix="eventscope-console-bench-"))
    store = export_store(args.events, StoreSchema.from_store(folder))
    began = time.perf_counter()
    with SqlEventStore.open(store) as writable:  # the search index, built once per store
        indexed = writable.update_index(batch=200_000)
    timing = Path(f"{store}.index-seconds")  # measured when the cached store was indexed
    if indexed:
        timing.write_text(f"{time.perf_counter() - began:.1f}\n")
    index_seconds = float(timing.read_text()) if timing.exists() else float("nan")
    builder_peak = peak_rss_mb()  # this process: building and indexing the store
    runs: dict[str, dict[str, Any]] = {}
    for run in args.runs.split(","):
        if run == "cold" and not drop_page_cache():
            print("cold run skipped: dropping the page cache needs root", file=sys.stderr)
            continue
        result = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.console", "--child", str(store),
             "--runs", run, "--read-delay-ms", str(args.read_delay_ms)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        )  # fmt: skip
        runs[run] = orjson.loads(result.stdout.strip().splitlines()[-1])
        print(run, orjson.dumps(runs[run]).decode(), flush=True)
    r = runs.get("warm") or next(iter(runs.values()))
    rows = [
        ("event log first paint after the store is open", r["first_paint_ms"], "< 500 ms"),
        ("jump anywhere in the log (median of 30)", r["jump_median_ms"], "< 50 ms"),
        ("jump anywhere in the log (p90 of 30)", r["jump_p90_ms"], "< 50 ms"),
        (f"payload search, common word: first page ({r['search_common_rows']} rows)",
         r["search_common_ms"], "< 1000 ms"),
        (f"payload search, rare SKU: first page ({r['search_rare_rows']} rows)",
         r["search_rare_ms"], "< 1000 ms"),
        (f"payload search + type filter: first page ({r['search_typed_rows']} rows)",
         r["search_typed_ms"], "< 1000 ms"),
        (f"payload search, prefix `SKU-0424*`: first page ({r['search_prefix_rows']} rows)",
         r["search_prefix_ms"], "< 1000 ms"),
        (f"payload search, prefix of a word in every event `ware*`: first page "
         f"({r['search_broad_rows']} rows)", r["search_broad_ms"], "< 1000 ms"),
        (f"correlation id lookup ({r['correlation_rows']} rows)",
         r["correlation_ms"], "< 1000 ms"),
        ("unfiltered timeline, first draw", r["timeline_ms"], "< 200 ms"),
    ]  # fmt: skip
    limits = {"< 500 ms": 500, "< 50 ms": 50, "< 1000 ms": 1000, "< 200 ms": 200}
    lines = [
        f"| measurement ({args.events:,} events) | Eventscope | target | result |",
        "|---|--:|---|---|",
    ]
    for label, value, target in rows:
        verdict = "PASS" if value < limits[target] else "MISS"
        lines.append(f"| {label} | {value:,.0f} ms | {target} | {verdict} |")
    jump = r["filtered_jump_rss_mb"]
    lines.append(
        f"| type filter `{FILTERED_TYPE}`, jump to the end: {r['filtered_jump_ms']:,.0f} ms, "
        f"{r['filtered_jump_rows']:,} rows held; peak RSS of the process by then "
        f"| {jump:,.0f} MB | < 400 MB | {'PASS' if jump < 400 else 'MISS'} |"
    )
    for run, measured in runs.items():
        peak = measured["peak_rss_mb"]
        lines.append(
            f"| peak RSS of the console process, {run} "
            f"{RUN_NOTES[run].format(delay=args.read_delay_ms)} "
            f"| {peak:,.0f} MB | < 300 MB | {'PASS' if peak < 300 else 'MISS'} |"
        )
    lines.append(
        f"| this benchmark's own process (builds the store; a child's `ru_maxrss` "
        f"inherits it, which `VmHWM` does not) | {builder_peak:,.0f} MB | info | — |"
    )
    lines.append(
        f"| building the search index (once per store; appends do not wait for it) "
        f"| {index_seconds:,.0f} s | info | — |"
    )
    phases = (
        ("first paint", "first_paint_rss_mb"),
        ("30 jumps", "jumps_rss_mb"),
        *((f"search `{key[:-7].removeprefix('search_')}`", key) for key in r
          if key.endswith("_rss_mb") and key.startswith(("search_", "correlation_"))),
        ("timeline", "timeline_rss_mb"),
        (f"type filter `{FILTERED_TYPE}` + jump to the end", "filtered_jump_rss_mb"),
    )  # fmt: skip
    lines += [
        "",
        "| peak RSS after | " + " | ".join(runs) + " |",
        "|---" + "|--:" * len(runs) + "|",
    ]
    for label, key in phases:
        cells = " | ".join(
            f"{measured.get(key, float('nan')):,.0f} MB" for measured in runs.values()
        )
        lines.append(f"| {label} | {cells} |")
    table = "\n".join(lines)
    print(table)
    REPORT.write_text(
        "# Console benchmarks\n\n"
        f"Measured by `tests/benchmarks/console.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"store {store} (built by `tests/benchmarks/run.py`'s generator), opening the "
        "store read-only and showing the event log and timeline offscreen in a fresh "
        f"process ({os.cpu_count()} cores).\n\n{table}\n\n{MEMORY_NOTES}"
    )


if __name__ == "__main__":
    main()
