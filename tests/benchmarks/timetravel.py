"""Benchmarks of time travel (issue 6): pages, documents, lineage and diffs at past points.

Run on demand (``make bench-timetravel``), never collected by pytest::

    .venv/bin/python -m tests.benchmarks.timetravel [--orders N] [--diff-orders N] [--profile]

The parent process prepares the stores: the cached orders demo stores of
``tests.benchmarks.projections`` (``--orders 240000``, about 1M events, and
``--diff-orders 100000`` for the diff), copied into a temporary folder, with
``order_summary:1`` run on the first and ``order_summary:1`` and ``:2`` on the second. It
also draws the random points and keys (seeded). A child process
(``--measure PLAN``) then opens the prepared copies read-only, does every measured row,
samples its own RSS in a background thread, and prints its figures as JSON, so the peak
RSS of row 5 is that of the measured work alone, not of the preparation. The table is
also written to ``docs/benchmarks-timetravel.md``.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import itertools
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import psutil

from core.timetravel.diff import collect_diff
from core.workspace import Workspace
from tests.benchmarks.projections import MIB, Row, demo_store, fresh_copy, render
from tests.benchmarks.run import CACHE_DIR, ROOT, environment, profile, write_markdown

REPORT: Final = ROOT / "docs" / "benchmarks-timetravel.md"
SEED: Final = 6
MODEL: Final = "order_summary:1"
OTHER: Final = "order_summary:2"  # never run on the 1M store: answered by a fold
PAGE: Final = 50
PAGE_SAMPLES: Final = 200
DOCUMENT_SAMPLES: Final = 200
LINEAGE_SAMPLES: Final = 100
DIFF_RUNS: Final = 3
WARM_UP: Final = 5
FOLD_SAMPLES: Final = 3
SQL_PAGE: Final = 1000  # HistoryStore.iter_documents_at's page_size default
FOLD_CAP: Final = 90.0  # seconds: no new fold sample starts after this

PAGE_TARGET: Final = 0.025  # seconds, p99
DOCUMENT_TARGET: Final = 0.010
LINEAGE_TARGET: Final = 0.050
DIFF_TARGET: Final = 2.0
RSS_TARGET: Final = 300 * 1000 * 1000  # bytes (300 MB)


# -- the parent: prepare the stores and the plan ------------------------------------------------


def prepare(folder: Path, orders: int, diff_orders: int) -> dict[str, Any]:
    """Copy the demo stores, run the read models on the copies, draw the samples."""
    prepared: dict[str, Any] = {"runs": {}}
    big = fresh_copy(demo_store(orders), folder, "timetravel")
    small = fresh_copy(demo_store(diff_orders), folder, "diff")
    for path, references in ((big, [MODEL]), (small, [MODEL, OTHER])):
        workspace = Workspace.open(str(path), read_only=False)
        try:
            for reference in references:
                started = time.perf_counter()
                result = workspace.projections.run(reference)
                seconds = time.perf_counter() - started
                print(f"{path.name}: ran {reference} in {seconds:.1f} s", file=sys.stderr)
                prepared["runs"][f"{path.name} {reference}"] = [seconds, result.scanned]
        finally:
            workspace.close()
        with sqlite3.connect(path) as conn:  # fold the WAL in before the child reads
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    rng = random.Random(SEED)
    with sqlite3.connect(f"file:{big}?mode=ro", uri=True) as conn:
        head = int(conn.execute("SELECT max(position) FROM events").fetchone()[0])
        firsts = conn.execute(
            "SELECT key, min(valid_from) FROM read_model_docs WHERE model = ? GROUP BY key",
            (MODEL,),
        ).fetchall()
        versions = int(
            conn.execute(
                "SELECT count(*) FROM read_model_docs WHERE model = ?", (MODEL,)
            ).fetchone()[0]
        )
    conn.close()
    documents = rng.sample(firsts, DOCUMENT_SAMPLES)
    created = sorted(int(first) for _, first in firsts)
    prepared.update(
        big=str(big),
        small=str(small),
        head=head,
        keys=len(firsts),
        versions=versions,
        warm_up=[rng.randint(1, head) for _ in range(WARM_UP)],
        page_points=[rng.randint(1, head) for _ in range(PAGE_SAMPLES)],
        # an existing key, at a point between its first version and the head
        documents=[[key, rng.randint(int(first), head)] for key, first in documents],
        lineage_keys=[key for key, _ in rng.sample(firsts, LINEAGE_SAMPLES)],
        fold_points=[rng.randint(1, head) for _ in range(FOLD_SAMPLES)],
        first_version=created[0],
    )
    # documents created at or before each point (order summaries are never deleted)
    prepared["page_created"] = [bisect.bisect_right(created, p) for p in prepared["page_points"]]
    return prepared


def start_child(plan_path: Path) -> subprocess.Popen[bytes]:
    """The measuring child, started before the preparation: a process forked from the
    parent inherits its peak RSS as its own ``ru_maxrss`` (Linux keeps it across exec),
    so the child is forked while the parent is still small. It waits for the plan."""
    command = [sys.executable, "-m", "tests.benchmarks.timetravel", "--measure", str(plan_path)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)


def child_figures(child: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The child's JSON figures, once it is done."""
    out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the measuring child failed (exit status {child.returncode})")
    figures: dict[str, Any] = json.loads(out)
    return figures


def wait_for_plan(plan_path: Path) -> dict[str, Any]:
    """The child's side: wait for the parent's plan (written whole, by a rename)."""
    parent = os.getppid()
    while not plan_path.exists():
        if os.getppid() != parent:
            raise SystemExit("the parent is gone")
        time.sleep(0.2)
    plan: dict[str, Any] = json.loads(plan_path.read_text())
    return plan


# -- the child: the measured rows ---------------------------------------------------------------


class RssSampler:
    """The process's RSS every few milliseconds in a thread: the peak, and the peak by phase."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.phase = "opened"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> None:
        rss = self.process.memory_info().rss
        if rss > self.peaks.get(self.phase, 0):
            self.peaks[self.phase] = rss

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        self.sample()
        self.phase = phase
        try:
            yield
        finally:
            self.sample()

    @property
    def peak(self) -> int:
        return max(self.peaks.values())


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (inclusive method)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max, in seconds."""
    return {
        "p50": statistics.median(values),
        "p99": percentile(values, 99),
        "max": max(values),
        "n": len(values),
    }


def first_page(workspace: Workspace, reference: str) -> tuple[int, bool]:
    """Locate a read model at a point and read its first page: (documents, from history)."""
    at = workspace.timetravel.locate(reference)
    page = list(itertools.islice(workspace.timetravel.iter_documents(at), PAGE))
    return len(page), at.from_history


def measure_pages(workspace: Workspace, plan: dict[str, Any]) -> dict[str, Any]:
    """Row 1."""
    for point in plan["warm_up"]:
        first_page(workspace, f"{MODEL}@{point}")
    times, sizes, folded = [], [], 0
    for point in plan["page_points"]:
        started = time.perf_counter()
        size, from_history = first_page(workspace, f"{MODEL}@{point}")
        times.append(time.perf_counter() - started)
        sizes.append(size)
        folded += not from_history
    slowest = sorted(zip(times, plan["page_points"], sizes, plan["page_created"], strict=True))
    return {
        **summary(times),
        "short_pages": sum(s < PAGE for s in sizes),
        "folded": folded,
        "slowest": slowest[-6:][::-1],
        "sparse": sum(created < SQL_PAGE for created in plan["page_created"]),
        "dense_max": max((t for t, *_, c in slowest if c >= SQL_PAGE), default=0.0),
        "sparse_fastest": min((t for t, *_, c in slowest if c < SQL_PAGE), default=0.0),
    }


def measure_documents(workspace: Workspace, plan: dict[str, Any]) -> dict[str, Any]:
    """Row 2: ``document`` alone (the gated figure) and with its ``locate``."""
    alone, with_locate, missing, folded = [], [], 0, 0
    for key, point in plan["documents"]:
        started = time.perf_counter()
        at = workspace.timetravel.locate(f"{MODEL}@{point}")
        located = time.perf_counter()
        doc = workspace.timetravel.document(at, key)
        done = time.perf_counter()
        alone.append(done - located)
        with_locate.append(done - started)
        missing += doc is None
        folded += not at.from_history
    return {
        **summary(alone),
        "with_locate": summary(with_locate),
        "missing": missing,
        "folded": folded,
    }


def measure_lineage(workspace: Workspace, plan: dict[str, Any]) -> dict[str, Any]:
    """Row 3."""
    times, changes = [], []
    for key in plan["lineage_keys"]:
        started = time.perf_counter()
        found = workspace.timetravel.lineage(MODEL, key)
        times.append(time.perf_counter() - started)
        changes.append(len(found))
    return {
        **summary(times),
        "changes_median": statistics.median(changes),
        "changes_max": max(changes),
    }


def one_diff(workspace: Workspace) -> dict[str, int]:
    """Row 4's work: the whole diff of the two versions at the head, collected."""
    result = collect_diff(workspace.timetravel.diff(MODEL, OTHER))
    counts = {kind: len(result[kind]) for kind in ("added", "removed", "changed")}  # type: ignore[literal-required]
    counts["unchanged"] = result["unchanged"]
    return counts


def measure_diff(workspace: Workspace) -> dict[str, Any]:
    """Row 4: ``DIFF_RUNS`` timed runs (the slowest is gated)."""
    both = [
        workspace.timetravel.locate(MODEL).from_history,
        workspace.timetravel.locate(OTHER).from_history,
    ]
    times, counts = [], {}
    for _ in range(DIFF_RUNS):
        gc.collect()
        started = time.perf_counter()
        counts = one_diff(workspace)
        times.append(time.perf_counter() - started)
    return {"times": times, "counts": counts, "from_history": all(both)}


def measure_folds(path: str, plan: dict[str, Any]) -> dict[str, Any]:
    """The info row: the first page of a version never run, by folding the log (a fresh
    workspace per sample: no snapshot of an earlier fold), then one warm sample."""
    samples: list[dict[str, Any]] = []
    started_all = time.perf_counter()
    warm: dict[str, Any] | None = None
    for point in plan["fold_points"]:
        if time.perf_counter() - started_all > FOLD_CAP:
            break
        workspace = Workspace.open(path, read_only=True)
        try:
            started = time.perf_counter()
            _, from_history = first_page(workspace, f"{OTHER}@{point}")
            seconds = time.perf_counter() - started
            samples.append({"point": point, "seconds": seconds, "history": from_history})
            print(f"fold of {OTHER}@{point}: {seconds:.1f} s", file=sys.stderr)
            if warm is None:  # the same workspace, a little later: from its snapshot, if kept
                later = min(point + 1000, plan["head"])
                kept = len(workspace.timetravel.snapshots)
                started = time.perf_counter()
                first_page(workspace, f"{OTHER}@{later}")
                warm = {
                    "point": later,
                    "seconds": time.perf_counter() - started,
                    "snapshots": kept,
                }
        finally:
            workspace.close()
    return {"samples": samples, "warm": warm, "rss_after": psutil.Process().memory_info().rss}


def child_profiles(big: Workspace, small: Workspace, plan: dict[str, Any], missed: set[str]) -> str:
    """cProfile tables of the missed rows' work."""
    parts: list[str] = []
    if "1" in missed:
        points = plan["page_points"][:50]
        parts.append(
            profile(
                f"row 1: first pages of `{MODEL}` at 50 of the points",
                lambda: [first_page(big, f"{MODEL}@{p}") for p in points],
            )
        )
    if "2" in missed:
        parts.append(
            profile(
                f"row 2: `document` at the {DOCUMENT_SAMPLES} (key, point) samples",
                lambda: [
                    big.timetravel.document(big.timetravel.locate(f"{MODEL}@{point}"), key)
                    for key, point in plan["documents"]
                ],
            )
        )
    if "3" in missed:
        parts.append(
            profile(
                f"row 3: lineage of the {LINEAGE_SAMPLES} keys",
                lambda: [big.timetravel.lineage(MODEL, key) for key in plan["lineage_keys"]],
            )
        )
    if "4" in missed:
        parts.append(
            profile(f"row 4: one diff of `{MODEL}` and `{OTHER}`", lambda: one_diff(small))
        )
    return "".join(parts)


def measure(plan_path: Path) -> None:
    """The child: every measured row on the prepared copies; JSON to stdout."""
    plan = wait_for_plan(plan_path)
    process = psutil.Process()
    figures: dict[str, Any] = {"rss_before": process.memory_info().rss}
    big = Workspace.open(plan["big"], read_only=True)
    small = Workspace.open(plan["small"], read_only=True)
    figures["rss_opened"] = process.memory_info().rss
    try:
        with RssSampler() as sampler:
            with sampler.during("1"):
                figures["pages"] = measure_pages(big, plan)
            print(f"row 1: {figures['pages']}", file=sys.stderr)
            with sampler.during("2"):
                figures["documents"] = measure_documents(big, plan)
            print(f"row 2: {figures['documents']}", file=sys.stderr)
            with sampler.during("3"):
                figures["lineage"] = measure_lineage(big, plan)
            print(f"row 3: {figures['lineage']}", file=sys.stderr)
            with sampler.during("4"):
                figures["diff"] = measure_diff(small)
            print(f"row 4: {figures['diff']}", file=sys.stderr)
        figures["rss_peak"] = sampler.peak
        figures["rss_peaks"] = sampler.peaks
        figures["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        figures["folds"] = measure_folds(plan["big"], plan)
        figures["maxrss_after_folds"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        missed = {number for number, miss in misses(figures).items() if miss}
        figures["profiles"] = child_profiles(big, small, plan, missed) if plan["profile"] else ""
    finally:
        big.close()
        small.close()
    sys.stdout.write(json.dumps(figures))


def misses(figures: dict[str, Any]) -> dict[str, bool]:
    """Which targets each row missed."""
    return {
        "1": figures["pages"]["p99"] >= PAGE_TARGET or figures["pages"]["folded"] > 0,
        "2": figures["documents"]["p99"] >= DOCUMENT_TARGET,
        "3": figures["lineage"]["p99"] >= LINEAGE_TARGET,
        "4": max(figures["diff"]["times"]) >= DIFF_TARGET,
        "5": max(figures["rss_peak"], figures["maxrss"]) >= RSS_TARGET,
    }


# -- the report ---------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def rows(figures: dict[str, Any], plan: dict[str, Any], diff_orders: int) -> list[Row]:
    """The table's rows from the child's figures."""
    missed = misses(figures)
    pages, docs, lineage, diff = (
        figures["pages"],
        figures["documents"],
        figures["lineage"],
        figures["diff"],
    )
    counts = diff["counts"]
    compared = sum(counts.values())
    table = [
        Row(
            "1",
            f"first page ({PAGE} documents) of `{MODEL}` at a random point, from history "
            f"(`locate` + `iter_documents`), p99 of {pages['n']} (p50 {ms(pages['p50'])}, "
            f"max {ms(pages['max'])})",
            ms(pages["p99"]),
            "—",
            "—",
            f"< {PAGE_TARGET * 1000:.0f} ms",
            missed["1"],
        ),
        Row(
            "2",
            f"one document at a random point (`document(at, key)`), p99 of {docs['n']} "
            f"(p50 {ms(docs['p50'])}, max {ms(docs['max'])}; with its `locate`: p99 "
            f"{ms(docs['with_locate']['p99'])})",
            ms(docs["p99"]),
            "—",
            "—",
            f"< {DOCUMENT_TARGET * 1000:.0f} ms",
            missed["2"],
        ),
        Row(
            "3",
            f"lineage of one document (`lineage('{MODEL}', key)`), p99 of {lineage['n']} "
            f"(p50 {ms(lineage['p50'])}, max {ms(lineage['max'])}; "
            f"{lineage['changes_median']:g} changes median, {lineage['changes_max']} max)",
            ms(lineage["p99"]),
            "—",
            "—",
            f"< {LINEAGE_TARGET * 1000:.0f} ms",
            missed["3"],
        ),
        Row(
            "4",
            f"full diff `{MODEL}` vs `{OTHER}` (`collect_diff(workspace.timetravel.diff(...))`, "
            f"{diff_orders:,}-order store, {compared:,} documents compared: "
            f"{counts['changed']:,} changed, {counts['added']:,} added, "
            f"{counts['removed']:,} removed, {counts['unchanged']:,} unchanged), slowest of "
            f"{len(diff['times'])} (fastest {min(diff['times']):.2f} s)",
            f"{max(diff['times']):.2f} s",
            "—",
            "—",
            f"< {DIFF_TARGET:g} s",
            missed["4"],
        ),
        Row(
            "5",
            "peak RSS of the measuring process during rows 1–4 (psutil, sampled every 2 ms; "
            f"`ru_maxrss` {figures['maxrss'] / MIB:,.1f} MiB; "
            f"{figures['rss_opened'] / MIB:,.1f} MiB before row 1)",
            f"{figures['rss_peak'] / MIB:,.1f} MiB",
            "—",
            "—",
            f"< 300 MB ({RSS_TARGET / MIB:,.0f} MiB)",
            missed["5"],
        ),
    ]
    folds = figures["folds"]
    if folds["samples"]:
        seconds = [sample["seconds"] for sample in folds["samples"]]
        shown = ", ".join(
            f"@{sample['point']:,}: {sample['seconds']:.1f} s" for sample in folds["samples"]
        )
        table.append(
            Row(
                "6",
                f"contrast: the same first page of `{OTHER}` (never run here: a fold of the log "
                f"to the point, fresh workspace each), {len(seconds)} samples ({shown}); "
                "vs row 1's p50",
                f"{statistics.median(seconds):.1f} s",
                ms(pages["p50"]),
                f"{statistics.median(seconds) / pages['p50']:,.0f}x",
                "—",
            )
        )
    return table


def notes(figures: dict[str, Any], plan: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """How the rows were measured."""
    pages, docs, diff, folds = (
        figures["pages"],
        figures["documents"],
        figures["diff"],
        figures["folds"],
    )
    runs = "; ".join(f"{name} {s:.1f} s" for name, (s, _) in plan["runs"].items())
    peaks = ", ".join(
        f"row {phase} {rss / MIB:,.1f} MiB" for phase, rss in figures["rss_peaks"].items()
    )
    lines = [
        f"- stores: the orders demo stores of `tests/benchmarks/projections.py` "
        f"(`demo_store({args.orders})`, {plan['head']:,} events, and "
        f"`demo_store({args.diff_orders})` for row 4), cached under `{CACHE_DIR}`, copied "
        f"into a temporary folder; the parent ran the read models on the copies before "
        f"anything was measured ({runs}); `{MODEL}` on the large store: "
        f"{plan['keys']:,} documents, {plan['versions']:,} versions.",
        "- the measured rows run in a child process "
        "(`python -m tests.benchmarks.timetravel --measure PLAN`) that opens both copies "
        "read-only; the parent drew the points and keys with `random.Random"
        f"({SEED})` and passed them in the plan. Times are `time.perf_counter()` around "
        "each call, one call per sample.",
        f"- row 1: {WARM_UP} untimed warm-up pages, then {pages['n']} points uniform in "
        f"[1, head]; each sample is `workspace.timetravel.locate('{MODEL}@P')` (checked: "
        f"{pages['n'] - pages['folded']} of {pages['n']} answered from history) and "
        f"`list(itertools.islice(workspace.timetravel.iter_documents(at), {PAGE}))`. "
        f"{pages['short_pages']} points were so early that fewer than {PAGE} documents "
        "existed.",
        f"- row 2: {docs['n']} keys drawn from `{MODEL}`'s documents, each at a point "
        "uniform between its first version and the head (so it exists); the gated time is "
        "`timetravel.document(at, key)` alone, `locate` outside it (the row also shows both "
        f"together). Documents not found: {docs['missing']}; folded: {docs['folded']}.",
        f"- row 3: {LINEAGE_SAMPLES} keys drawn from `{MODEL}`'s documents; "
        f"`timetravel.lineage('{MODEL}', key)` at the head (from history: its versions, and "
        "the event of each change looked up).",
        f"- row 4: `collect_diff(timetravel.diff('{MODEL}', '{OTHER}'))` at the head, both "
        f"from history ({'checked' if diff['from_history'] else '**NOT from history**'}); "
        f"{DIFF_RUNS} runs: {', '.join(f'{s:.2f} s' for s in diff['times'])}.",
        f"- row 5: RSS of the child from `psutil` sampled every 2 ms in a thread during rows "
        f"1–4 (by row: {peaks}); `ru_maxrss` of the child after row 4 (start-up and imports "
        f"included): {figures['maxrss'] / MIB:,.1f} MiB. The child started at "
        f"{figures['rss_before'] / MIB:,.1f} MiB after its imports, "
        f"{figures['rss_opened'] / MIB:,.1f} MiB with both stores open.",
    ]
    warm = folds["warm"]
    fold_line = (
        f"- row 6 (info): up to {FOLD_SAMPLES} points, no new sample after {FOLD_CAP:.0f} s; "
        f"each in a freshly opened workspace (no fold snapshot yet), `locate('{OTHER}@P')` "
        "(from history: "
        f"{sum(s['history'] for s in folds['samples'])} of {len(folds['samples'])}) and the "
        "first page. Run after row 5's peak was taken: the child's `ru_maxrss` after the "
        f"folds was {figures['maxrss_after_folds'] / MIB:,.1f} MiB."
    )
    if warm is not None:
        fold_line += (
            f" In the first sample's workspace, the page at @{warm['point']:,} (1,000 "
            f"positions later) then took {warm['seconds']:.2f} s; snapshots kept after the "
            f"first fold: {warm['snapshots']}."
        )
    lines.append(fold_line)
    return lines


def why_pages_miss(figures: dict[str, Any], plan: dict[str, Any]) -> str:
    """Row 1's miss in figures of the same run: which points were slow, and why."""
    pages = figures["pages"]
    slow = "; ".join(
        f"@{point:,}: {seconds * 1000:,.1f} ms, {size} documents on the page, "
        f"{created:,} documents existing"
        for seconds, point, size, created in pages["slowest"]
    )
    return "\n".join(
        [
            "",
            "## Why row 1 misses",
            "",
            f"- The median page takes {pages['p50'] * 1000:,.1f} ms; the tail is a few points "
            f"early in the log. The slowest samples: {slow}.",
            f"- {pages['sparse']} of the {pages['n']} points had fewer than {SQL_PAGE:,} "
            f"documents (`HistoryStore.iter_documents_at`'s `page_size`; the model's first "
            f"version is at position {plan['first_version']:,}: the demo store writes its "
            "customers first). Each of them took at least "
            f"{pages['sparse_fastest'] * 1000:,.1f} ms; no point with {SQL_PAGE:,} documents "
            f"or more took over {pages['dense_max'] * 1000:,.1f} ms.",
            "- How a page is read (schema 8's append-only history): each key's latest "
            "version at P, `max(valid_from)` per key along the primary key (model, key, "
            "valid_from) from the last key on (SQLite; `DISTINCT ON` on PostgreSQL), the "
            "first page of 64 documents and each next one twice the last; at a point by "
            "which few versions had begun, those versions from the (model, valid_from) "
            "index instead. The cProfile table shows where the slow samples spent their "
            "time.",
            "",
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.timetravel", description=__doc__
    )
    parser.add_argument("--orders", type=int, default=240_000, help="orders of the main store")
    parser.add_argument("--diff-orders", type=int, default=100_000, help="orders of row 4's store")
    parser.add_argument("--profile", action="store_true", help="profile rows that miss")
    parser.add_argument("--output", type=Path, default=REPORT, help="markdown report")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Prepare the stores, measure in a child, print the table, write the report."""
    args = parse_args(argv)
    if args.measure is not None:
        measure(args.measure)
        return
    busy_before = psutil.cpu_percent(interval=1.0)
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="eventscope-timetravel-"))
    plan_path = folder / "plan.json"
    child = start_child(plan_path)
    try:
        plan = prepare(folder, args.orders, args.diff_orders)
        plan["profile"] = args.profile
        writing = folder / "plan.json.writing"
        writing.write_text(json.dumps(plan))
        parent_rss = psutil.Process().memory_info().rss
        os.replace(writing, plan_path)
        figures = child_figures(child)
        table = render(rows(figures, plan, args.diff_orders))
        print(table)
        lines = notes(figures, plan, args)
        lines.append(
            f"- the parent was at {parent_rss / MIB:,.0f} MiB RSS after the preparation, "
            "when it handed the plan over; the child was started before the preparation (a "
            "forked child inherits its parent's peak RSS as its own `ru_maxrss`: Linux keeps "
            "it across exec), and waited for the plan. Whole run "
            f"{time.perf_counter() - started:.0f} s (store builds included if they were built)."
        )
        if figures["profiles"]:
            print(figures["profiles"])
        extra = why_pages_miss(figures, plan) if misses(figures)["1"] else ""
        write_markdown(
            args.output,
            title="Time-travel benchmarks",
            module="tests.benchmarks.timetravel",
            target="bench-timetravel",
            scope="every figure in one run",
            header=environment(busy_before),
            table=table,
            notes=lines,
            extra=extra,
            profiles=figures["profiles"],
        )
    finally:
        if child.poll() is None:  # the preparation failed: the child still waits
            child.kill()
            child.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
