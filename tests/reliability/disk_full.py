"""A full disk during appends, imports, projection batches and index updates: StoreFull,
nothing half-written, a store that checks ok, and work that goes on once space is freed
(issue 15, point 2).

    .venv/bin/python -m tests.reliability.run --only disk_full

Each attempt gets a size-limited tmpfs of its own (root mounts it; it is unmounted in a
``finally``) holding a demo store; a ballast file fills the filesystem to the brim and is
then shortened to leave the attempt's free space. After the operation: the counts are
compared (an append or import is all or nothing; a projection's checkpoint and its read
model's documents, and the search index's rows, stay at what was committed), ``check``
and SQLite's ``integrity_check`` run, the ballast is deleted, and the same operation must
then succeed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

TITLE: Final = "A full disk"

ROOT: Final = Path(__file__).resolve().parents[2]
#: The operations, in the report's order.
OPERATIONS: Final = (
    "single append",
    "batch append (500 events)",
    "import (5,000 lines)",
    "projection run (batches of 100)",
    "search index update (batches of 200)",
)
#: Free space left for each attempt: 0 (full to the brim) up to enough for most.
FULL_SLACK: Final = (
    0,
    4096,
    16_384,
    65_536,
    262_144,
    1_048_576,
    1_500_000,
    2_000_000,
    2_500_000,
    3_000_000,
    4_194_304,
)
QUICK_SLACK: Final = (0, 65_536)
#: The size of each attempt's filesystem.
MOUNT_SIZE: Final = "24m"
DEMO_ORDERS: Final = 150
PROJECTION: Final = "order_summary"
ATTEMPTS_HEAD: Final = (
    "| operation | attempts | StoreFull | done (bytes free) | other outcome | half-written "
    "| check ok | works after freeing | positions kept before the refusal |"
    "\n|---|---:|---:|---:|---:|---:|---:|---:|---|"
)
WAL_HEAD: Final = (
    "| checkpoint by | WAL bytes | file shorter than its header "
    "| open read-only, disk full (`check`, `integrity_check`) | open writable after freeing "
    "| events |\n|---|---:|---|---|---|---:|"
)
REPRODUCE: Final = 'make reliability RELIABILITY_ARGS="--only disk_full"'


def cannot_mount(workdir: Path) -> str | None:
    """Why this machine cannot run the study (not root, no tmpfs), or None."""
    if os.geteuid() != 0:
        return "mounting a size-limited tmpfs needs root"
    try:
        with mounted(workdir / "probe-mount", "1m"):
            pass
    except (OSError, subprocess.CalledProcessError) as error:
        return f"cannot mount a tmpfs here ({error})"
    return None


@contextmanager
def mounted(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` on ``folder`` (created), unmounted (lazily if still busy) after."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, slack: int) -> Path:
    """Fill the filesystem of ``folder`` with a ballast file, leaving ``slack`` bytes."""
    ballast = folder / "ballast"
    chunk = b"\0" * 65_536
    descriptor = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65_536, 4096, 512, 1):
            with suppress(OSError):
                while True:
                    os.write(descriptor, chunk[:size])
    finally:
        os.close(descriptor)
    if slack:
        os.truncate(ballast, max(0, ballast.stat().st_size - slack))
    return ballast


def free_bytes(folder: Path) -> int:
    """Bytes free on ``folder``'s filesystem."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


# -- one attempt ----------------------------------------------------------------------------


@dataclass
class Attempt:
    """One operation on a full disk and what came of it."""

    operation: str
    slack: int
    outcome: str = ""  # refused (StoreFull), done (it fitted), or what else happened
    partial: str = ""  # what was half-written, if anything
    check_ok: bool = False
    recovered: bool = False
    detail: str = ""
    kept: int = 0  # positions a projection or the index committed before the failure


@dataclass
class Snapshot:
    """What an operation may change: the head, the projection and the search index."""

    head: int
    checkpoint: int
    newest_doc: int  # the position of the read model's newest row (a version or a tombstone)
    indexed: int
    newest_indexed: int  # the newest position in the search index's tables


def snapshot(workspace: Any) -> Snapshot:
    """The counts to compare before and after an attempt."""
    with workspace.handle.use() as opened:
        store = opened.store
        with store.read_transaction() as cursor:
            cursor.execute(
                "SELECT model, checkpoint FROM read_models WHERE name = ? AND version = 1",
                (PROJECTION,),
            )
            row = cursor.fetchone()
            model, checkpoint = (row[0], row[1]) if row else ("", 0)
            cursor.execute(  # versions and tombstones are rows, each at its position
                "SELECT max(valid_from) FROM read_model_docs WHERE model = ?", (model,)
            )
            newest_doc = cursor.fetchone()[0] or 0
            cursor.execute(
                "SELECT max(coalesce((SELECT max(id) FROM event_words_docsize), 0),"
                " coalesce((SELECT max(position) FROM event_correlations), 0))"
            )
            newest_indexed = cursor.fetchone()[0] or 0
        return Snapshot(
            store.head_position(), checkpoint, newest_doc, store.indexed_position(), newest_indexed
        )


def _projection_state(workspace: Any) -> str:
    for status in workspace.projections.statuses():
        if status.name == PROJECTION and status.version == 1:
            return str(status.state)
    return ""


def integrity(path: Path) -> str:
    """SQLite's own ``integrity_check`` of the store file, opened read-only."""
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return ", ".join(row[0] for row in raw.execute("PRAGMA integrity_check"))
    finally:
        raw.close()


def operation(name: str, workspace: Any, number: int) -> Callable[[], object]:
    """The operation ``name`` as a call, with payloads unique to attempt ``number``."""
    from core.events import NewEvent

    def batch() -> object:
        events = [NewEvent("LineAdded", {"sku": f"sku-{i}", "note": "y" * 200}) for i in range(500)]
        with workspace.handle.use() as opened:
            return opened.store.append_to_stream(f"batch-{number}", events)

    def imported() -> object:
        lines = (
            json.dumps(
                {
                    "stream_id": f"import-{number}-{i % 100}",
                    "type": "NoteAdded",
                    "data": {"i": i, "note": "z" * 100},
                }
            )
            for i in range(5000)
        )
        return workspace.writing.import_lines(lines)

    calls: dict[str, Callable[[], object]] = {
        OPERATIONS[0]: lambda: workspace.writing.append(
            f"note-{number}", "NoteAdded", {"note": "x" * 2000}
        ),
        OPERATIONS[1]: batch,
        OPERATIONS[2]: imported,
        OPERATIONS[3]: lambda: workspace.projections.run(PROJECTION, batch_size=100),
        OPERATIONS[4]: lambda: workspace.writing.update_index(batch=200),
    }
    return calls[name]


def prepare(name: str, workspace: Any) -> None:
    """Leave work for the operation: events the index has not seen yet."""
    if name == OPERATIONS[4]:
        from core.events import NewEvent

        with workspace.handle.use() as opened:
            for stream in range(4):
                opened.store.append_to_stream(
                    f"unindexed-{stream}",
                    [NewEvent("NoteAdded", {"note": f"word{i} " * 20}) for i in range(500)],
                )


def partial_writes(name: str, before: Snapshot, after: Snapshot, failed: bool) -> str:
    """What the attempt half-wrote (empty: nothing)."""
    problems = []
    if failed and name in OPERATIONS[:3] and after.head != before.head:
        problems.append(f"head moved {before.head} -> {after.head} although it failed")
    if after.newest_doc > after.checkpoint:
        problems.append(
            f"read-model documents at {after.newest_doc} past checkpoint {after.checkpoint}"
        )
    if after.checkpoint > after.head:
        problems.append(f"checkpoint {after.checkpoint} past the head {after.head}")
    if after.newest_indexed > after.indexed:
        problems.append(f"index rows at {after.newest_indexed} past {after.indexed}")
    return "; ".join(problems)


def attempt(name: str, slack: int, folder: Path, number: int) -> Attempt:
    """Run ``name`` on a store in ``folder`` (a fresh tmpfs) with ``slack`` bytes free."""
    from core.errors import EventscopeError, StoreFull
    from core.workspace import Workspace

    result = Attempt(name, slack)
    path = folder / "store.db"
    workspace = Workspace.open(str(path), read_only=False)
    try:
        workspace.writing.write_demo(orders=DEMO_ORDERS, seed=number)
        prepare(name, workspace)
        before = snapshot(workspace)
        ballast = fill(folder, slack)
        failed = False
        try:
            operation(name, workspace, number)()
            result.outcome = "done"
        except StoreFull as error:
            failed = True
            result.outcome = "refused (StoreFull)"
            result.detail = str(error)
        except EventscopeError as error:
            failed = True
            result.outcome = f"{type(error).__name__}"
            result.detail = str(error)
        after = snapshot(workspace)
        result.partial = partial_writes(name, before, after, failed)
        if name == OPERATIONS[3]:
            result.kept = after.checkpoint - before.checkpoint
            state = _projection_state(workspace)
            if state == "faulted":  # a full disk is not the projection's fault
                result.partial = "; ".join(filter(None, [result.partial, "projection faulted"]))
        elif name == OPERATIONS[4]:
            result.kept = after.indexed - before.indexed
        elif name == OPERATIONS[2] and not failed and after.indexed < after.head:
            result.detail = "index left behind"
        report = workspace.events.check()
        result.check_ok = report.ok and integrity(path) == "ok"
        if not report.ok:
            result.detail += f" check: {report.problems}"
        ballast.unlink()
        try:
            operation(name, workspace, number + 1000)()
            result.recovered = workspace.events.check().ok
        except EventscopeError as error:
            result.detail += f" after freeing: {type(error).__name__}: {error}"
    finally:
        workspace.close()
    return result


# -- the command line and the WAL ------------------------------------------------------------


def cli_append(folder: Path) -> tuple[int, str]:
    """``eventscope append`` on a full disk: its exit code and its stderr."""
    from core.workspace import Workspace

    path = folder / "store.db"
    with Workspace.open(str(path), read_only=False) as workspace:
        workspace.writing.write_demo(orders=20, seed=1)
    fill(folder, 0)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "console.cli",
            "--store",
            str(path),
            "append",
            "order-full",
            "NoteAdded",
            "--data",
            json.dumps({"note": "x" * 5000}),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    return result.returncode, result.stderr


@dataclass
class WalCase:
    """A checkpoint that ran out of disk, and the store afterwards."""

    how: str
    wal_bytes: int = 0
    file_short: bool = False  # the store file is shorter than its header says
    reopened_full: str = ""  # opening read-only while the disk is still full
    reopened_freed: str = ""  # opening writable once space is freed
    events: int = 0
    expected: int = 0


def wal_checkpoint(folder: Path, how: str) -> WalCase:
    """Fill the disk while the WAL holds every event (a second connection kept SQLite from
    checkpointing), then checkpoint (``how``: explicitly, or by closing the last
    connection); then open the store while the disk is full, and once it is freed."""
    from core.events import NewEvent
    from core.store import SqlEventStore

    case = WalCase(how)
    path = folder / "store.db"
    SqlEventStore.open(path).close()
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA wal_autocheckpoint = 0")
        raw.execute("SELECT count(*) FROM events").fetchone()
        with SqlEventStore.open(path) as store:  # its close does not checkpoint: raw is open
            for number in range(40):
                events = [NewEvent("LineAdded", {"n": n, "note": "w" * 100}) for n in range(50)]
                store.append_to_stream(f"order-{number}", events)
            case.expected = store.head_position()
        case.wal_bytes = (folder / "store.db-wal").stat().st_size
        ballast = fill(folder, 0)
        if how == "wal_checkpoint(TRUNCATE)":
            with suppress(sqlite3.Error):
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()  # the last connection's close checkpoints too
    header = path.read_bytes()[:100]
    if len(header) == 100:
        pages = int.from_bytes(header[28:32], "big")
        case.file_short = path.stat().st_size < pages * int.from_bytes(header[16:18], "big")
    case.reopened_full = _open_and_check(path, read_only=True)
    ballast.unlink()
    case.reopened_freed = _open_and_check(path, read_only=False)
    with SqlEventStore.open(path, read_only=True) as store:
        case.events = store.count()
    return case


def _open_and_check(path: Path, *, read_only: bool) -> str:
    from core.errors import EventscopeError
    from core.store import SqlEventStore

    try:
        with SqlEventStore.open(path, read_only=read_only) as store:
            report = store.check()
    except EventscopeError as error:
        return f"{type(error).__name__}: {error}"
    sqlite_check = integrity(path)
    return (
        "ok" if report.ok and sqlite_check == "ok" else f"check: {report.problems} {sqlite_check}"
    )


# -- the study ------------------------------------------------------------------------------


@dataclass
class Figures:
    """Every attempt, the command line's answer and the WAL cases."""

    attempts: list[Attempt] = field(default_factory=list)
    cli_code: int = 0
    cli_stderr: str = ""
    wal: list[WalCase] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[str]:
        """What broke a promise of this study (empty: none)."""
        found = []
        for each in self.attempts:
            where = f"{each.operation}, {each.slack:,} bytes free"
            if each.outcome not in ("done", "refused (StoreFull)"):
                found.append(f"{where}: {each.outcome}: {each.detail}")
            if each.partial:
                found.append(f"{where}: partial: {each.partial}")
            if not each.check_ok:
                found.append(f"{where}: check failed: {each.detail}")
            if not each.recovered:
                found.append(f"{where}: not working after freeing space: {each.detail}")
        lines = self.cli_stderr.strip().splitlines()
        if self.cli_code != 1 or len(lines) != 1 or "disk is full" not in self.cli_stderr:
            found.append(f"CLI append: exit {self.cli_code}: {self.cli_stderr.strip()[:300]}")
        for case in self.wal:
            if case.reopened_freed != "ok" or case.events != case.expected:
                found.append(f"WAL {case.how}: {case.reopened_freed}, {case.events} events")
        return found


def study(full: bool, workdir: Path) -> Figures:
    """Every attempt of the study (``full``: the report's free-space levels)."""
    started = time.monotonic()
    figures = Figures()
    number = 0
    for name in OPERATIONS:
        for slack in FULL_SLACK if full else QUICK_SLACK:
            number += 1
            with mounted(workdir / f"attempt-{number}", MOUNT_SIZE) as folder:
                figures.attempts.append(attempt(name, slack, folder, number))
    with mounted(workdir / "cli", "4m") as folder:
        figures.cli_code, figures.cli_stderr = cli_append(folder)
    for how in ("closing the last connection", "wal_checkpoint(TRUNCATE)"):
        number += 1
        with mounted(workdir / f"wal-{number}", MOUNT_SIZE) as folder:
            figures.wal.append(wal_checkpoint(folder, how))
    figures.seconds = time.monotonic() - started
    return figures


def run(full: bool, workdir: Path) -> str:
    """The study's section of docs/reliability.md."""
    reason = cannot_mount(workdir)
    if reason is not None:
        return f"Not run: {reason}.\n\nReproduce (as root): `{REPRODUCE}`"
    figures = study(full, workdir)
    slack = FULL_SLACK if full else QUICK_SLACK
    rows = []
    for name in OPERATIONS:
        mine = [a for a in figures.attempts if a.operation == name]
        refused = sum(a.outcome == "refused (StoreFull)" for a in mine)
        done = sum(a.outcome == "done" for a in mine)
        other = len(mine) - refused - done
        partial = sum(bool(a.partial) for a in mine)
        checked = sum(a.check_ok for a in mine)
        recovered = sum(a.recovered for a in mine)
        fitted = ", ".join(f"{a.slack:,}" for a in mine if a.outcome == "done") or "none"
        kept = (
            ", ".join(f"{a.kept:,}" for a in mine if a.outcome != "done")
            if name in OPERATIONS[3:]
            else "—"
        )
        behind = [f"{a.slack:,}" for a in mine if a.detail == "index left behind"]
        if behind:
            fitted += f"; the index left behind at {', '.join(behind)}"
        rows.append(
            f"| {name} | {len(mine)} | {refused} | {done} ({fitted}) | {other} | {partial} | "
            f"{checked} | {recovered} | {kept} |"
        )
    table = "\n".join(rows)
    wal_rows = "\n".join(
        f"| {case.how} | {case.wal_bytes:,} | {'yes' if case.file_short else 'no'} | "
        f"{case.reopened_full} | {case.reopened_freed} | {case.events:,} of {case.expected:,} |"
        for case in figures.wal
    )
    cli_line = figures.cli_stderr.strip().replace(str(workdir), "…")
    failures = "\n".join(f"- {line}" for line in figures.failures[:20]) or "- none"
    levels = ", ".join(f"{size:,}" for size in slack)
    return f"""
Each attempt runs on a tmpfs of its own ({MOUNT_SIZE}, mounted by root, unmounted after)
holding a writable store with the order-management demo ({DEMO_ORDERS} orders, indexed;
the {PROJECTION} projection never run). A ballast file fills the filesystem to the brim
and is shortened to leave {levels} bytes free; then one operation runs: one append of a
2 KB event, one append of 500 events, an import of 5,000 JSON lines (`import_lines`,
which indexes what it imported), `ProjectionService.run` of {PROJECTION} in batches of
100 positions, and `update_index` in batches of 200 over 2,000 events not yet indexed.
Afterwards: the head must not have moved when the operation failed (an append or import
is all or nothing), the projection's checkpoint must not pass the head and no document
version may start past it, no search-index row may lie past the indexed position;
`check` and SQLite's `integrity_check` must pass. Then the ballast is deleted and the
same operation, with new payloads, must succeed and `check` pass again. A projection
run and an index update commit one batch per transaction: the batches committed before
the disk filled stay (the last column: how far the checkpoint or the indexed position
moved), the batch being written is rolled back whole, and the projection is not faulted
(a full disk is not its handlers' fault); the scheduler runs it again later.

{ATTEMPTS_HEAD}
{table}

`StoreFull` is a `StoreError` whose message is one line naming the store: "…: the disk is
full; free some space and try again (database or disk is full)". SQLite reports it as
SQLITE_FULL, or as "disk I/O error" when it cannot create or grow the `-shm`/`-wal`
files: that one was `StoreCorrupt` (exit 5) before this study, and is now `StoreFull`
when the store's filesystem has under 1 MiB free. PostgreSQL's `disk_full` (SQLSTATE
53100, "No space left on device") maps to it too (not measured here). The command line
exits 1 (it is not exit 5, "store unusable": the store reads, checks and exports while
the disk is full, and works again once space is freed): `eventscope append` of a 5 KB
event on a full disk exited {figures.cli_code} with stderr `{cli_line}`.

An import whose events were committed, and whose indexing then ran out of space, was
reported as failed with StoreFull although all 5,000 lines were stored (2,000,000 bytes
free, found by this study); it now reports the import, logs a warning, and the index
catches up at the next update (searches scan the events it has not covered yet).

The console (`tests/reliability/test_disk_full.py`, in `make test`), a window writable on
a store on a full tmpfs: PlaceOrder from the commands panel shows the one-line StoreFull
message under the form and Execute is enabled again at once; Run now in the projections
panel shows it in the panel's message line; the in-app projections, started on the full
disk, show it in the status bar ("Projection order_summary:1 did not run: …") and no
projection is faulted. After the ballast is deleted the order is executed and every
projection catches up. Found and fixed on the way: the in-app scheduler could not start
on a full disk (registering a never-run projection is a write; nothing said so, and it
stayed stopped after space was freed), and a failed in-app run was only logged (the run
history the panel shows cannot be written on a full disk either).

The WAL when the disk fills during a checkpoint: 2,000 events written while a second
connection (with `wal_autocheckpoint = 0`) kept SQLite from checkpointing, so every
page was only in the WAL; the disk filled; then a checkpoint, by closing the last
connection or by `PRAGMA wal_checkpoint(TRUNCATE)`. It writes page 1 (the new page count)
and fails on the pages after it, so the store file is shorter than its header says.
Eventscope refused such a file as "truncated" (`StoreCorrupt`) before this study; it now
leaves a file with a WAL holding frames to SQLite, which reads it whole.

{WAL_HEAD}
{wal_rows}

Failures:

{failures}

Reproduce: `{REPRODUCE}` (as root; `make test` runs {len(QUICK_SLACK)} free-space levels
and the console test, and skips them with the reason when it cannot mount).
"""
