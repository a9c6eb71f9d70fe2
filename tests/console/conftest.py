"""Fixtures shared by the console tests: workspaces closed at the end, one task runner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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
