"""Fixtures shared by the console tests: workspaces closed at the end, one task runner."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent

from console.main_window import MainWindow
from console.workers import TaskRunner
from core.services.events import EventQueries
from core.workspace import Workspace


@pytest.fixture
def workspaces() -> Iterator[list[Workspace]]:
    """Workspaces a test opens; each is closed after the test (and after the runner)."""
    opened: list[Workspace] = []
    yield opened
    for workspace in opened:
        workspace.close()


@pytest.fixture
def runner(qapp: Any, workspaces: list[Workspace]) -> Iterator[TaskRunner]:
    """A task runner, shut down before the workspaces close (it depends on them)."""
    runner = TaskRunner()
    yield runner
    assert runner.shutdown()


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread() -> Iterator[None]:
    """Garbage is collected on the GUI thread only, as the console's GuiThreadCollector
    does: closed windows and panels can linger in reference cycles, and an automatic
    collection set off by an allocation on a pool thread would free them there,
    deleting widgets off the GUI thread (a segfault, seen mid-test). Automatic
    collection is off during each test and the garbage is collected before and after."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        if enabled:
            gc.enable()


@pytest.fixture
def windows(
    qapp: Any, runner: TaskRunner, workspaces: list[Workspace]
) -> Iterator[list[MainWindow]]:
    """Main windows a test opens on ``runner`` and ``workspaces``: each is closed, its
    in-app projections stopped, and deleted on the GUI thread before the runner and the
    workspaces go (as ``console.app`` disposes of a window)."""
    opened: list[MainWindow] = []
    yield opened
    for window in opened:
        window.close()
        window.in_app_projections.shut_down()
        window.deleteLater()
    opened.clear()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def route_events(workspace: Workspace, *names: str) -> EventQueries:
    """Send the panels' calls of the events service's ``names`` to the workspace's own
    methods of those names (a test's workspace records or holds them); returns the
    plain service, for those methods to call on."""
    plain = workspace.events

    class Routed(EventQueries):
        pass

    for name in names:
        setattr(Routed, name, _forward(workspace, name))
    workspace.events = Routed(workspace.handle, workspace.plugins)
    return plain


def _forward(workspace: Workspace, name: str) -> Any:
    def forward(_self: EventQueries, *args: Any, **options: Any) -> Any:
        return getattr(workspace, name)(*args, **options)

    return forward
