"""Several projection versions rebuilt at once, a process each, on a real SQLite store."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from core.rebuilds import CANCELLED, FAILED, FAULTED, REBUILT, rebuild_in_processes
from core.services.writing import AUDIT_STREAM
from core.store import EventFilter
from core.workspace import Workspace

VERSIONS = ["order_summary:1", "order_summary:2", "customer_stats:1"]

PLUGINS = {
    "fragile.py": """
from core.api import Projection, handles

class Fragile(Projection):
    name = "fragile"

    @handles("OrderPlaced", "OrderPaid")
    def changed(self, view, event):
        if event.type == "OrderPaid":
            raise ValueError("no payments here")
        view.put(event.data["order_id"], {"placed": True})
""",
    "crashing.py": """
import os
from core.api import Projection, handles

class Crashing(Projection):
    name = "crashing"

    @handles("OrderPaid")
    def paid(self, view, event):
        os._exit(3)
""",
    "slow.py": """
import time
from core.api import Projection, handles

class Slow(Projection):
    name = "slow"

    @handles("OrderPlaced", "OrderPaid", "ItemAdded")
    def changed(self, view, event):
        time.sleep(0.01)
        view.put(event.data["order_id"], {"last": event.type})
""",
}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    with Workspace.open(str(path), read_only=False) as workspace:
        workspace.writing.write_demo("orders", orders=60, seed=7)
    return path


@pytest.fixture
def store(demo_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    shutil.copy(demo_store, path)
    return path


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    for name, text in PLUGINS.items():
        (folder / name).write_text(text)
    return folder


def documents(path: Path, model: str) -> dict[str, object]:
    with Workspace.open(str(path)) as workspace:
        return workspace.projections.history().documents_at(model)


def rebuild_audit(path: Path) -> list[dict[str, object]]:
    """The ``$audit`` events of rebuilds, as their data without the user."""
    with Workspace.open(str(path)) as workspace:
        audit = list(workspace.events.read(EventFilter(stream_id=AUDIT_STREAM)))
    assert all(event.type == "ProjectionReset" for event in audit)
    return sorted(
        ({k: v for k, v in event.data.items() if k != "user"} for event in audit),
        key=str,
    )


def test_versions_rebuilt_at_once_equal_the_same_rebuilds_one_after_the_other(
    store: Path, tmp_path: Path
) -> None:
    sequential = tmp_path / "sequential.db"
    shutil.copy(store, sequential)
    with Workspace.open(str(sequential), read_only=False) as workspace:
        one_by_one = [workspace.projections.run_leased(v, rebuild=True) for v in VERSIONS]

    report = rebuild_in_processes(str(store), VERSIONS, jobs=3)

    assert report.processes == 3
    assert [(v.reference, v.outcome) for v in report.versions] == [(v, REBUILT) for v in VERSIONS]
    assert report.positions == sum(v.result.scanned for v in report.versions if v.result)
    assert [v.result.events for v in report.versions if v.result] == [r.events for r in one_by_one]
    for version in VERSIONS:
        assert documents(store, version) == documents(sequential, version), version
    # Each rebuild was recorded as one alone is: a reset with ``rebuild``.
    assert rebuild_audit(store) == rebuild_audit(sequential)
    assert rebuild_audit(store) == [{"projection": v, "rebuild": True} for v in sorted(VERSIONS)]
    with Workspace.open(str(store)) as workspace:
        for version in report.versions:
            status = workspace.projections.status(version.reference)
            assert version.result is not None
            # Where its run ended (later rebuilds' audit events came after), lease given back.
            assert (status.checkpoint, status.worker) == (version.result.checkpoint, None)


def test_a_version_that_faults_or_crashes_is_reported_and_the_others_stand(
    store: Path, plugins: Path
) -> None:
    versions = ["order_summary:1", "fragile:1", "crashing:1"]
    report = rebuild_in_processes(str(store), versions, plugin_dirs=[plugins], jobs=3)

    rebuilt, fragile, crashing = report.versions
    assert rebuilt.outcome == REBUILT and rebuilt.result is not None
    assert fragile.outcome == FAULTED and fragile.result is not None
    assert fragile.result.fault is not None
    assert "no payments here" in fragile.result.fault.error
    assert crashing.outcome == FAILED and crashing.failed
    assert crashing.detail is not None and "exited with code 3" in crashing.detail
    assert documents(store, "order_summary:1")  # its read model stands
    with Workspace.open(str(store), plugin_dirs=[plugins]) as workspace:
        status = workspace.projections.status("order_summary:1")
        assert status.checkpoint == rebuilt.result.checkpoint
        assert workspace.projections.status("fragile:1").state == "faulted"


def test_stopping_stops_every_process_between_batches(store: Path, plugins: Path) -> None:
    stop = threading.Event()
    seen: list[tuple[str, int, int]] = []

    def progress(reference: str, done: int, total: int) -> None:
        seen.append((reference, done, total))
        if reference == "slow:1" and done > 0:  # a batch of it is committed
            stop.set()

    report = rebuild_in_processes(
        str(store),
        ["slow:1", "order_summary:1"],
        plugin_dirs=[plugins],
        jobs=2,
        batch_size=20,
        on_progress=progress,
        stop=stop,
    )

    assert report.cancelled
    assert any(reference == "slow:1" and done > 0 for reference, done, _ in seen)
    slow = report.versions[0]
    assert slow.outcome == CANCELLED and slow.detail is not None
    assert "cancelled at checkpoint" in slow.detail
    with Workspace.open(str(store), plugin_dirs=[plugins]) as workspace:
        status = workspace.projections.status("slow:1")
    assert 0 < status.checkpoint < status.head  # the batches done are kept
    assert f"checkpoint {status.checkpoint};" in slow.detail
    assert status.worker is None  # its lease given back
