"""Hostile strings in every filter and search field: bound values, exact answers, the
canary table untouched (SQLite, and PostgreSQL when EVENTSCOPE_TEST_PG_URL is set)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.reliability.injection import CLI_OPTIONS, NASTY, study

#: The fixed hostile strings make test sends through the CLI (make reliability: all).
CLI_VALUES = NASTY[::4]


def test_every_filter_value_is_bound_and_answers_exactly(tmp_path: Path) -> None:
    results = study(tmp_path, 40, os.environ.get("EVENTSCOPE_TEST_PG_URL"), CLI_VALUES)

    backends = [backend for backend, *_ in results]
    assert backends[0] == "sqlite"
    if os.environ.get("EVENTSCOPE_TEST_PG_URL"):
        assert backends == ["sqlite", "postgresql"]
    for backend, tally, canary_intact, events_unchanged in results:
        assert tally.failures == [], (backend, tally.failures[:5])
        assert canary_intact and events_unchanged, backend
        drawn = {k: v for k, v in tally.examples.items() if not k.startswith("CLI")}
        assert all(count >= 40 for count in drawn.values()), tally.examples
        assert tally.examples["CLI read options"] == len(CLI_VALUES) * len(CLI_OPTIONS)
        assert tally.examples["CLI streams --prefix"] == len(CLI_VALUES)
