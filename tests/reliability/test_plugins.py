"""Hostile plugins in a writable console: failed plugins, faulted projections, and a GUI
heartbeat within 200 ms at p99 while they misbehave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reliability.plugins import BAD_IMPORTS, study

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_misbehaving_plugins_fault_alone_and_the_gui_keeps_its_heartbeat(
    qapp: Any, tmp_path: Path
) -> None:
    result = study(tmp_path)

    assert set(result.failed_plugins) == set(BAD_IMPORTS)
    assert result.settled, result.states
    assert result.as_expected() == []
    assert len(result.lateness_ms) > 150 and result.retries > 10
    assert result.p99 < 200, (result.p50, result.p99, max(result.lateness_ms))
