"""Commands from several processes on one stream: conflicts are retried until all land."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from core.registry import Registry
from core.store import SqlEventStore
from core.workspace import Workspace

WORKERS = 4
DEPOSITS = 40


def _depositor(store_path: str, plugin_dir: str, worker: int, start: Any, results: Any) -> None:
    registry = Registry.discover([plugin_dir], environ={}, builtin=False, entry_points=False)
    workspace = Workspace(SqlEventStore.open(store_path), registry)
    workspace.commands.max_attempts = 50  # four writers on one stream collide a lot
    start.wait()
    attempts = []
    try:
        for n in range(DEPOSITS):
            result = workspace.commands.execute(
                "Deposit",
                {"account": "shared", "amount": worker + 1},
                idempotency_key=f"w{worker}-{n}",
            )
            attempts.append(result.attempts)
    finally:
        workspace.close()
    results.put(attempts)


def test_concurrent_commands_on_one_stream_all_land_once(
    tmp_path: Path, bank_plugins: Path, bank_registry: Registry
) -> None:
    folder = bank_plugins
    store_path = str(tmp_path / "bank.db")
    registry = bank_registry
    with Workspace(SqlEventStore.open(store_path), registry) as setup:
        setup.commands.execute("Open", {"account": "shared"})

    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=_depositor, args=(store_path, str(folder), w, start, results))
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    start.set()
    attempts = [n for _ in processes for n in results.get(timeout=300)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    assert len(attempts) == WORKERS * DEPOSITS
    assert max(attempts) > 1  # some commands lost a race and decided again
    with Workspace(SqlEventStore.open(store_path, read_only=True), registry) as check:
        expected = DEPOSITS * sum(w + 1 for w in range(WORKERS))
        assert check.timetravel.replay("balances:1").documents == {"shared": {"balance": expected}}
        versions = [e.version for e in check.events.read_stream("account-shared")]
        assert versions == list(range(1 + WORKERS * DEPOSITS))
