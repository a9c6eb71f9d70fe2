"""Damaged and foreign store files: typed errors or a check that names the damage, never a
crash, a traceback or a changed file (issue 15, point 4).

    .venv/bin/python -m tests.reliability.run --only corrupt_files

Every damaged copy is opened read-only through the API in a child process (so a crash is
counted, not fatal), read to the end and checked; a sample goes through the command line
too. The file's bytes and its folder's listing are compared before and after.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

TITLE: Final = "Damaged and foreign store files"

ROOT: Final = Path(__file__).resolve().parents[2]
#: Kinds of damage, in the report's order.
KINDS: Final = ("truncated", "bytes flipped", "not SQLite", "newer schema")
#: What the command line is asked of each sampled file.
CLI_COMMANDS: Final = (("read",), ("streams",), ("check",), ("export",))
#: Seconds a child may spend on one file before it counts as hung.
PROBE_TIMEOUT: Final = 60.0
SEED: Final = 15
#: What SQLite adds next to a WAL store on any read-only open (an empty log and the
#: shared-memory index), healthy or not: counted apart, not as a change.
WAL_SIDE_FILES: Final = frozenset({"store.db-wal", "store.db-shm"})
#: The fixed cases make test sends through the command line (the full run sends all).
QUICK_CLI_LABELS: Final = frozenset({"a PNG", "schema 99"})


@dataclass(frozen=True)
class Counts:
    """How many of each case to make (``full``: the report's; otherwise make test's)."""

    random_truncations: int
    flipped_copies: int
    cli_flipped: int
    cli_truncated: int

    @classmethod
    def of(cls, full: bool) -> Counts:
        return cls(100, 1000, 40, 10) if full else cls(5, 50, 2, 1)


@dataclass
class Case:
    """One damaged file (or folder) in its own folder, and what the probes saw."""

    kind: str
    label: str
    path: Path
    digest: str = ""
    listing: tuple[str, ...] = ()
    outcome: str = ""  # ok, typed, damage, other, traceback, crash, hung
    detail: str = ""
    read_refused_check_ok: bool = False
    cli: dict[str, str] = field(default_factory=dict)


@dataclass
class Figures:
    """The study's counts: per kind and outcome, and the failures."""

    api: dict[str, Counter[str]]
    cli: dict[str, Counter[str]]
    changed: list[str]
    side_files: int
    failures: list[str]
    read_refused_check_ok: int
    cli_runs: int
    files: int
    #: Where the flipped bytes of copies that read and checked ok landed (dbstat names).
    unharmed_pages: Counter[str]


# -- making damaged files -----------------------------------------------------------------


def build_seed(path: Path, events: int) -> None:
    """A store like a user's: orders with lines, indexed for search, closed cleanly."""
    from core.events import NewEvent
    from core.store import SqlEventStore

    rng = random.Random(SEED)
    with SqlEventStore.open(path) as store:
        appended = 0
        order = 0
        while appended < events:
            lines = [
                NewEvent(
                    "LineAdded", {"sku": f"sku-{rng.randrange(500)}", "qty": rng.randint(1, 9)}
                )
                for _ in range(rng.randint(1, 6))
            ]
            batch = [NewEvent("OrderPlaced", {"customer": f"c-{order % 97}", "note": "x" * 40})]
            store.append_to_stream(f"order-{order}", [*batch, *lines])
            appended += 1 + len(lines)
            order += 1
        store.update_index()


def make_cases(seed: Path, workdir: Path, counts: Counts) -> Iterator[Case]:
    """Every damaged file of the study, one folder each, in the report's kinds."""
    rng = random.Random(SEED)
    data = seed.read_bytes()
    number = 0

    def place(kind: str, label: str, content: bytes | None) -> Case:
        nonlocal number
        number += 1
        folder = workdir / f"case-{number:05d}"
        folder.mkdir()
        path = folder / "store.db"
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
        return Case(kind, label, path)

    for size in (0, 100, 4096):
        yield place("truncated", f"at {size:,} bytes", data[:size])
    for _ in range(counts.random_truncations):
        size = rng.randrange(1, len(data))
        yield place("truncated", f"at {size:,} bytes (random)", data[:size])
    for _ in range(counts.flipped_copies):
        damaged = bytearray(data)
        flips = rng.randint(1, 16)
        for _ in range(flips):
            damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
        yield place("bytes flipped", f"{flips} byte(s) flipped", bytes(damaged))
    yield place("not SQLite", "a text file", (ROOT / "README.md").read_bytes())
    yield place("not SQLite", "a PNG", (ROOT / "resources/icons/eventscope-32.png").read_bytes())
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("store.db", data)
    yield place("not SQLite", "a zip of a store", archive.getvalue())
    yield place("not SQLite", "an empty file", b"")
    yield place("not SQLite", "a folder", None)
    newer = place("newer schema", "schema 99", data)
    with sqlite3.connect(newer.path) as raw:
        raw.execute("UPDATE eventscope_meta SET value = '99' WHERE key = 'schema_version'")
    raw.close()
    yield newer


def fingerprint(case: Case) -> tuple[str, tuple[str, ...]]:
    """The file's SHA-256 (a folder's: its listing) and its folder's listing."""
    listing = tuple(sorted(os.listdir(case.path.parent)))
    if case.path.is_dir():
        return "folder:" + ",".join(sorted(os.listdir(case.path))), listing
    return hashlib.sha256(case.path.read_bytes()).hexdigest(), listing


# -- the API probe, in a child process ----------------------------------------------------


def probe(path: Path) -> dict[str, Any]:
    """Open read-only, read every event and stream, export, check: what each step did."""
    from core.errors import EventscopeError, StoreUnusable
    from core.store import SqlEventStore

    seen: dict[str, Any] = {"open": None, "read": None, "check": None, "untyped": None}

    def named(error: BaseException) -> str:
        return ("typed:" if isinstance(error, StoreUnusable) else "other:") + type(error).__name__

    try:
        store = SqlEventStore.open(path, read_only=True)
    except EventscopeError as error:
        seen["open"] = named(error)
        return seen
    except Exception as error:
        seen["untyped"] = f"open: {type(error).__name__}: {error}"
        return seen
    seen["open"] = "ok"
    try:
        try:
            for _ in store.read():
                pass
            for _ in store.iter_raw():
                pass
            for _ in store.list_streams():
                pass
            seen["read"] = "ok"
        except EventscopeError as error:
            seen["read"] = named(error)
        try:
            report = store.check()
            seen["check"] = "ok" if report.ok else "damage"
            seen["problems"] = list(report.problems)[:2]
        except EventscopeError as error:
            seen["check"] = named(error)
    except Exception as error:
        seen["untyped"] = f"{type(error).__name__}: {error}"
    finally:
        store.close()
    return seen


def probe_child(listing: Path, results: Path) -> None:
    """The child's loop: a ``start`` line before each file, its outcome after."""
    paths = listing.read_text(encoding="utf-8").splitlines()
    with results.open("a", encoding="utf-8") as out:
        for index, path in enumerate(paths):
            out.write(f"start\t{index}\n")
            out.flush()
            seen = probe(Path(path))
            out.write(f"done\t{index}\t{json.dumps(seen)}\n")
            out.flush()


def run_probes(cases: list[Case], scratch: Path) -> None:
    """Probe every case in child processes; a child that dies or hangs on a file is
    recorded against that file, and a new child goes on with the next."""
    pending = list(range(len(cases)))
    round_number = 0
    while pending:
        round_number += 1
        listing = scratch / f"probe-{round_number}.txt"
        results = scratch / f"probe-{round_number}.out"
        listing.write_text("\n".join(str(cases[i].path) for i in pending), encoding="utf-8")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.corrupt_files", str(listing), str(results)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        last_progress = time.monotonic()
        seen_lines = 0
        hung = False
        while child.poll() is None:
            time.sleep(0.05)
            lines = results.read_text(encoding="utf-8").count("\n") if results.exists() else 0
            if lines != seen_lines:
                seen_lines, last_progress = lines, time.monotonic()
            elif time.monotonic() - last_progress > PROBE_TIMEOUT:
                child.kill()
                hung = True
        _, stderr = child.communicate()
        started: int | None = None
        done: set[int] = set()
        for line in results.read_text(encoding="utf-8").splitlines():
            tag, index, *rest = line.split("\t")
            case = cases[pending[int(index)]]
            if tag == "start":
                started = int(index)
                continue
            done.add(int(index))
            _record_probe(case, json.loads(rest[0]))
        if started is not None and started not in done:
            case = cases[pending[started]]
            case.outcome = "hung" if hung else "crash"
            case.detail = f"exit {child.returncode}: {stderr.decode(errors='replace')[-300:]}"
            done.add(started)
        elif child.returncode != 0:
            raise RuntimeError(f"the probe child failed: {stderr.decode(errors='replace')}")
        pending = [i for n, i in enumerate(pending) if n not in done]


def _record_probe(case: Case, seen: dict[str, Any]) -> None:
    steps = [seen["open"], seen["read"], seen["check"]]
    if seen["untyped"]:
        case.outcome, case.detail = "traceback", seen["untyped"]
    elif any(step and step.startswith("typed:") for step in steps):
        case.outcome = "typed"
        case.detail = next(step for step in steps if step and step.startswith("typed:"))
    elif seen["check"] == "damage":
        case.outcome, case.detail = "damage", "; ".join(seen.get("problems", []))
    elif any(step and step.startswith("other:") for step in steps):
        case.outcome = "other"
        case.detail = next(step for step in steps if step and step.startswith("other:"))
    else:
        case.outcome = "ok"
    case.read_refused_check_ok = seen["read"] not in (None, "ok") and seen["check"] == "ok"


# -- the command line, on a sample --------------------------------------------------------


def run_cli(case: Case, command: tuple[str, ...]) -> str:
    """One ``eventscope`` command on a damaged file: its outcome, or a failure's name."""
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", str(case.path), *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    name = command[0]
    if result.returncode < 0:
        return f"crash (signal {-result.returncode})"
    if "Traceback" in result.stderr:
        return "traceback: " + result.stderr.strip().splitlines()[-1]
    try:
        for line in result.stdout.splitlines():  # read and export stream what they could
            json.loads(line)
    except ValueError:
        return f"output is not JSON lines ({name}, exit {result.returncode})"
    if result.returncode == 5:
        lines = result.stderr.splitlines()
        if len(lines) != 1 or not lines[0].startswith("eventscope: "):
            return "unclear refusal: " + result.stderr.strip()[:200]
        return "typed"
    if name == "check" and result.returncode == 1:
        report = json.loads(result.stdout)
        return "damage" if report["problems"] else f"check exit 1 without problems: {report}"
    if result.returncode != 0:
        return f"exit {result.returncode}: {result.stderr.strip()[:200]}"
    return "ok"


def cli_sample(cases: list[Case], counts: Counts, full: bool) -> list[Case]:
    """The fixed cases (make test: a few), plus the first flipped and randomly truncated
    copies."""
    chosen: list[Case] = []
    flipped = truncated = 0
    for case in cases:
        if case.kind == "bytes flipped":
            flipped += 1
            if flipped > counts.cli_flipped:
                continue
        elif case.kind == "truncated" and "random" in case.label:
            truncated += 1
            if truncated > counts.cli_truncated:
                continue
        elif not full and case.label not in QUICK_CLI_LABELS:
            continue
        chosen.append(case)
    return chosen


def pages_hit(seed: Path, cases: list[Case]) -> Counter[str]:
    """The tables and indexes (SQLite's ``dbstat`` names) whose pages hold the bytes
    flipped in these copies of ``seed``."""
    original = seed.read_bytes()
    with sqlite3.connect(f"file:{seed}?mode=ro", uri=True) as raw:
        owners = dict(raw.execute("SELECT pageno, name FROM dbstat"))
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    raw.close()
    hit: Counter[str] = Counter()
    for case in cases:
        damaged = case.path.read_bytes()
        for offset, (before, after) in enumerate(zip(original, damaged, strict=True)):
            if before != after:
                hit[owners.get(offset // page_size + 1, "free list")] += 1
    return hit


# -- the study ----------------------------------------------------------------------------


def study(full: bool, workdir: Path) -> Figures:
    """Make the damaged files, probe them all through the API and a sample through the
    command line, and count."""
    counts = Counts.of(full)
    seed = workdir / "seed.db"
    build_seed(seed, 2000 if full else 600)
    cases = list(make_cases(seed, workdir, counts))
    for case in cases:
        case.digest, case.listing = fingerprint(case)
    scratch = workdir / "scratch"
    scratch.mkdir()
    run_probes(cases, scratch)
    sample = cli_sample(cases, counts, full)
    jobs = [(case, command) for case in sample for command in CLI_COMMANDS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for (case, command), outcome in zip(
            jobs, pool.map(lambda job: run_cli(*job), jobs), strict=True
        ):
            case.cli[command[0]] = outcome
    api: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    cli: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    changed: list[str] = []
    side_files = 0
    failures: list[str] = []
    for case in cases:
        api[case.kind][case.outcome] += 1
        if case.outcome in ("traceback", "crash", "hung"):
            failures.append(f"API, {case.kind} {case.label}: {case.outcome}: {case.detail}")
        for name, outcome in case.cli.items():
            cli[case.kind][outcome if outcome in ("ok", "typed", "damage") else "failure"] += 1
            if outcome not in ("ok", "typed", "damage"):
                failures.append(f"CLI {name}, {case.kind} {case.label}: {outcome}")
        digest, listing = fingerprint(case)
        added = set(listing) - set(case.listing)
        side_files += bool(added & WAL_SIDE_FILES)
        if digest != case.digest or added - WAL_SIDE_FILES or set(case.listing) - set(listing):
            changed.append(f"{case.kind} {case.label}")
    unharmed = [case for case in cases if case.kind == "bytes flipped" and case.outcome == "ok"]
    return Figures(
        api,
        cli,
        changed,
        side_files,
        failures,
        sum(case.read_refused_check_ok for case in cases),
        len(jobs),
        len(cases),
        pages_hit(seed, unharmed),
    )


def run(full: bool, workdir: Path) -> str:
    """The report's section: method, figures, and the command that reproduces them."""
    figures = study(full, workdir)
    counts = Counts.of(full)
    rows = []
    for kind in KINDS:
        seen = figures.api[kind]
        crashes = seen["crash"] + seen["hung"]
        rows.append(
            f"| {kind} | {sum(seen.values()):,} | {seen['ok']:,} | {seen['typed']:,} | "
            f"{seen['damage']:,} | {seen['other']:,} | {crashes} | {seen['traceback']} |"
        )
    cli_rows = []
    for kind in KINDS:
        seen = figures.cli[kind]
        if sum(seen.values()):
            cli_rows.append(
                f"| {kind} | {sum(seen.values()):,} | {seen['ok']:,} | {seen['typed']:,} | "
                f"{seen['damage']:,} | {seen['failure']} |"
            )
    sampled_fixed = "every fixed case" if full else "2 fixed cases"
    unharmed = (
        ", ".join(f"`{name}` ({n})" for name, n in figures.unharmed_pages.most_common()) or "none"
    )
    failures = "\n".join(f"- {line}" for line in figures.failures[:20]) or "- none"
    return f"""
Each case is a copy of a store written by Eventscope ({2000 if full else 600} events of
orders and their lines, search index built, closed cleanly), damaged one way, in a folder
of its own: truncated at 0, 100 and 4,096 bytes and at {counts.random_truncations} random
points; {counts.flipped_copies:,} copies with 1 to 16 random bytes XOR-ed with a random
value; files that are not SQLite (a text file, a PNG, a zip of a store, an empty file, a
folder); and a store whose schema version says 99. Through the API, in a child process
(a crash or a hang of over {PROBE_TIMEOUT:.0f} s is recorded against its file and a new
child goes on): `SqlEventStore.open(path, read_only=True)`, every event read (`read`,
`iter_raw`), every stream listed, `check()`. Through the command line, {sampled_fixed},
{counts.cli_truncated} random truncations and {counts.cli_flipped} flipped copies, with
`eventscope --store FILE read`, `streams`, `check` and `export`: exit 5 with one line on
stderr is a typed refusal, `check` exit 1 with problems is damage found, and exit 0 must
print JSON lines. Before and after, each file's SHA-256 (a folder's: its listing) and
the listing of the folder holding it are compared.

API ({figures.files:,} files): *read ok* means opened, read to the end, and `check` ok
(a flip can land in free space or slack); *typed error* means `StoreCorrupt`,
`NotAnEventStore`, `NewerSchema` (exit 5 on the command line) at open, read or check;
*check found damage* means opened and read, and `check` reported the damage (`ok: false`,
the positions or SQLite's messages); *other error* means a `StoreError` that is not
"store unusable" (exit 1).

| kind | files | read ok | typed error | check found damage | other error | crashes | tracebacks |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Reads refused while `check` said ok: {figures.read_refused_check_ok}. The flipped copies
that read and checked ok had their bytes flipped in pages of (SQLite's `dbstat` names)
{unharmed}: {figures.unharmed_pages["events"]} in the events table's own pages, and
SQLite's own check found nothing wrong in the others (most likely space no cell uses). Files whose
bytes changed, or with a file added or removed next to them: {len(figures.changed)}. Folders
where SQLite left its WAL side files (an empty `-wal` and the `-shm` index, as any
read-only open of a WAL store does, healthy or not): {figures.side_files:,}.

Command line ({figures.cli_runs:,} runs):

| kind | runs | ok | exit 5 | check found damage | crash, traceback or bad output |
|---|---:|---:|---:|---:|---:|
{chr(10).join(cli_rows)}

Failures:

{failures}

Bugs this study found, each fixed in core with a test that failed before:

- a payload no longer JSON: `read` ended in a raw `orjson` traceback, and `eventscope
  read`/`export` printed a line that is not JSON with exit 0, while `check` said ok;
- a row whose text is no longer UTF-8: exit 1 with a driver message, no position;
- a `recorded_at` that is not a number or out of range: `TypeError`/`OverflowError`
  tracebacks from `read`, `export` and `streams` (a damaged streams row);
- a damaged schema whose SQLite message quotes bytes that are not UTF-8: a
  `UnicodeDecodeError` traceback at open;
- an `event_id` holding a quote or a control character: `export` printed a line that is
  not JSON (the id was copied between quotes unescaped).

Each event now carries a CRC32 checksum (schema 7) that `check` verifies, so damage that
still decodes is found; reads refuse a row that does not decode with `StoreCorrupt`
naming its position (exit 5). Reads do not verify checksums (`check` does): a flipped
digit that still parses reads as it is stored.

Reproduce: `make reliability RELIABILITY_ARGS="--only corrupt_files"`
(`--quick` for make test's counts).
"""


if __name__ == "__main__":
    probe_child(Path(sys.argv[1]), Path(sys.argv[2]))
