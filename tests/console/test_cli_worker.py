"""``eventscope worker``: real worker processes, stopped gracefully and killed with -9.

The kill test is the issue's crash test: a worker rebuilding read models is killed
(SIGKILL) at random moments, again and again; after every kill the read model equals
the fold at its checkpoint, and at the end it equals, hash for hash, a rebuild that
was never interrupted. ``EVENTSCOPE_KILL_ROUNDS`` sets the number of kills (5 in
``make test``; ``make test-full`` runs 50).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.projections.fold import fold_projection
from core.registry import Registry
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace

ROOT = Path(__file__).parents[2]
KILL_ROUNDS = int(os.environ.get("EVENTSCOPE_KILL_ROUNDS", "5"))

#: A projection slow enough (about 0.4 ms an event) that a kill lands inside a rebuild.
PACED_PLUGIN = """
import time
from core.api import Projection, handles

class PacedOrders(Projection):
    name = "paced_orders"
    version = 1
    interval = 0.1

    @handles("OrderPlaced", "ItemAdded", "ItemRemoved", "OrderPaid", "OrderShipped",
             "OrderDelivered", "OrderCancelled")
    def changed(self, view, event):
        time.sleep(0.0003)
        doc = view.get(event.data["order_id"]) or {"events": [], "paid": 0}
        doc["events"].append(event.type)
        doc["paid"] += event.data.get("amount_cents", 0)
        view.put(event.data["order_id"], doc)
"""


def eventscope(store: str, *args: str, plugins: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "console.cli", "--store", store]
    if plugins is not None:
        command += ["--plugins", str(plugins)]
    return [*command, *args]


def start_worker(store: str, plugins: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        eventscope(store, "worker", *args, plugins=plugins),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "paced.py").write_text(PACED_PLUGIN)
    return folder


def demo_store(location: str, orders: int) -> None:
    done = subprocess.run(
        eventscope(location, "demo", "--orders", str(orders)), cwd=ROOT, capture_output=True
    )
    assert done.returncode == 0, done.stderr


def history_hash(store: SqlEventStore, model: str) -> str:
    """Every row of a read model's history (key, position, document or tombstone), hashed."""
    digest = hashlib.sha256()
    with store.read_transaction() as cursor:
        cursor.execute(
            "SELECT key, valid_from, doc FROM read_model_docs "
            f"WHERE model = {store.marker} ORDER BY key, valid_from",
            (model,),
        )
        for row in cursor:
            digest.update(orjson.dumps([row[0], row[1], None if row[2] is None else str(row[2])]))
    return digest.hexdigest()


def fold_at(workspace: Workspace, name: str, position: int) -> Any:
    projection = workspace.registry.projection(name)
    events = workspace.events.read(
        EventFilter(types=projection.event_types(), to_position=position)
    )
    return fold_projection(projection, events, upcasters=workspace.registry.upcasters)


def test_a_worker_keeps_read_models_current_and_stops_on_sigterm(
    tmp_path: Path, plugins: Path
) -> None:
    location = str(tmp_path / "shop.db")
    demo_store(location, 60)
    registry = Registry.discover([plugins], environ={})
    worker = start_worker(location, plugins, "--name", "w-term")
    workspace = Workspace(SqlEventStore.open(location), registry)
    try:
        every_one_caught_up = lambda: all(  # noqa: E731
            s.state == "caught up" for s in workspace.projections.statuses()
        )
        wait_until(every_one_caught_up)
        workspace.commands.execute(
            "PlaceOrder",
            {
                "order_id": "late-1",
                "customer_id": "C0001",
                "items": [{"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299}],
            },
        )
        wait_until(every_one_caught_up)  # the new order reached every read model
        assert "late-1" in workspace.timetravel.replay("order_summary").documents
        assert {s.worker for s in workspace.projections.statuses()} == {"w-term"}
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert b"worker w-term stopped" in err
    ran = [orjson.loads(line) for line in out.splitlines()]
    assert {line["projection"] for line in ran} == {
        s.reference for s in workspace.projections.statuses()
    }
    assert all(s.worker is None for s in workspace.projections.statuses())  # leases returned
    workspace.close()


def test_kill_9_during_rebuilds_loses_nothing_and_applies_nothing_twice(
    tmp_path: Path, plugins: Path
) -> None:
    location = str(tmp_path / "shop.db")
    demo_store(location, 800)
    pristine = tmp_path / "pristine.db"
    shutil.copy(location, pristine)
    registry = Registry.discover([plugins], environ={})
    workspace = Workspace(SqlEventStore.open(location), registry)
    models = ("paced_orders", "order_summary")
    rng = random.Random(20261130)
    killed_mid_rebuild = 0
    try:
        for round_ in range(KILL_ROUNDS):
            if workspace.projections.status("paced_orders").lag < 1500:
                for model in models:  # (nearly) caught up: rebuild again, and kill that
                    workspace.projections.reset(model)
            before = {m: workspace.projections.status(m).checkpoint for m in models}
            worker = start_worker(
                location, plugins, *models, "--name", "w-kill", "--batch-size", "50"
            )
            try:
                wait_until(started(workspace, worker, before))
                time.sleep(rng.uniform(0.0, 0.3))
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
            finally:
                if worker.poll() is None:
                    worker.kill()
            assert worker.returncode == -signal.SIGKILL, f"round {round_}: the worker exited"
            statuses = [workspace.projections.status(model) for model in models]
            killed_mid_rebuild += any(status.lag > 0 for status in statuses)
            for model, status in zip(models, statuses, strict=True):
                documents = workspace.projections.history().documents_at(f"{status.reference}")
                assert documents == fold_at(workspace, model, status.checkpoint), (
                    f"round {round_}: {model} at {status.checkpoint} is not the fold"
                )
        # Let the last rebuild finish, without kills.
        worker = start_worker(location, plugins, *models, "--name", "w-kill")
        try:
            wait_until(lambda: all(workspace.projections.status(m).lag == 0 for m in models))
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=20)
    finally:
        workspace.close()
    assert killed_mid_rebuild == KILL_ROUNDS, "every kill should land inside a rebuild"

    # The same rebuild, never interrupted, on a copy of the untouched store.
    fresh = Workspace(SqlEventStore.open(pristine), registry)
    store = SqlEventStore.open(location, read_only=True)
    try:
        for model in models:
            fresh.projections.run(model)
            reference = fresh.projections.projection_of(model).reference()
            assert history_hash(store, reference) == history_hash(
                fresh.handle.store,  # type: ignore[arg-type]
                reference,
            ), model
            assert store.head_position() == fresh.events.head_position() + _audits(store)
    finally:
        store.close()
        fresh.close()


def started(
    workspace: Workspace, worker: subprocess.Popen[bytes], before: dict[str, int]
) -> Callable[[], bool]:
    """Whether the worker has committed a batch of any model (or died)."""
    return lambda: (
        worker.poll() is not None
        or any(
            workspace.projections.status(model).checkpoint != checkpoint
            for model, checkpoint in before.items()
        )
    )


def _audits(store: SqlEventStore) -> int:
    """The resets recorded in $audit: the only events the killed store has more."""
    return sum(1 for _ in store.read(EventFilter(stream_id="$audit")))


@pytest.mark.postgres
def test_two_workers_on_postgres_apply_each_event_once(pg_location: str, plugins: Path) -> None:
    """Two worker processes on one PostgreSQL store; the one holding the lease is killed
    mid-rebuild and the other takes over once the lease expires. Every handled event is
    applied by exactly one committed run, and the read model equals the fold."""
    demo_store(pg_location, 300)
    registry = Registry.discover([plugins], environ={})
    workspace = Workspace(SqlEventStore.open(pg_location), registry)
    args = ("paced_orders", "--batch-size", "50", "--lease-seconds", "1")
    workers = {
        name: start_worker(pg_location, plugins, *args, "--name", name) for name in ("a", "b")
    }
    try:
        wait_until(lambda: workspace.projections.status("paced_orders").worker is not None)
        holder = workspace.projections.status("paced_orders").worker
        assert holder in workers
        time.sleep(0.2)
        workers[holder].send_signal(signal.SIGKILL)
        workers[holder].wait(10)
        assert workspace.projections.status("paced_orders").lag > 0, "killed mid-rebuild"
        wait_until(lambda: workspace.projections.status("paced_orders").lag == 0)
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.communicate(timeout=20)
    runs = workspace.projections.runs("paced_orders", limit=10_000)
    committed = sorted(
        (r for r in runs if r.to_position > r.from_position), key=lambda r: r.from_position
    )
    survivor = next(name for name in workers if name != holder)
    assert committed[-1].worker == survivor  # it finished what the killed one began
    # The killed worker's last run was never recorded: the chain shows where it stopped.
    positions = [0]
    for run in committed:
        assert run.from_position >= positions[-1]
        positions.append(run.to_position)
    projection = registry.projection("paced_orders")
    handled = workspace.events.count(EventFilter(types=projection.event_types()))
    documents = workspace.projections.history().documents_at("paced_orders:1")
    assert documents == fold_at(workspace, "paced_orders", workspace.events.head_position())
    assert sum(doc["events"].__len__() for doc in documents.values()) == handled
    workspace.close()


def test_a_workers_metrics_endpoint_shows_what_projections_list_prints(
    tmp_path: Path, plugins: Path
) -> None:
    import socket
    import urllib.request

    location = str(tmp_path / "shop.db")
    demo_store(location, 40)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = start_worker(location, plugins, "--name", "w-metrics", "--metrics-port", str(port))
    workspace = Workspace(SqlEventStore.open(location), Registry.discover([plugins], environ={}))
    text = ""
    try:
        wait_until(lambda: all(s.state == "caught up" for s in workspace.projections.statuses()))

        def scraped() -> bool:
            nonlocal text
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return False
            return 'eventscope_projection_lag_events{projection="paced_orders:1"} 0.0' in text

        wait_until(scraped)
        statuses = workspace.projections.statuses()
        head = workspace.events.head_position()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=20)
        workspace.close()
    assert f"eventscope_store_head_position {float(head)}" in text
    for status in statuses:
        assert (
            f'eventscope_projection_checkpoint{{projection="{status.reference}"}} '
            f"{float(status.checkpoint)}" in text
        )
    applied = 'eventscope_projection_events_applied_total{projection="paced_orders:1"}'
    assert applied in text
    assert (
        'eventscope_batch_duration_seconds_count{kind="projection",name="paced_orders:1"}' in text
    )
