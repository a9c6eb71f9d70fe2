"""Fixtures shared by the console tests: workspaces closed at the end, one task runner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from console.workers import TaskRunner
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
