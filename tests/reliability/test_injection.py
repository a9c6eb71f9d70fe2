"""Hostile strings in every filter and search field: bound values, exact answers, the
canary table untouched (SQLite, and PostgreSQL when EVENTSCOPE_TEST_PG_URL is set)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.reliability.injection import study


def test_every_filter_value_is_bound_and_answers_exactly(tmp_path: Path) -> None:
    results = study(tmp_path, 40, os.environ.get("EVENTSCOPE_TEST_PG_URL"))

    backends = [backend for backend, *_ in results]
    assert backends[0] == "sqlite"
    if os.environ.get("EVENTSCOPE_TEST_PG_URL"):
        assert backends == ["sqlite", "postgresql"]
    for backend, tally, canary_intact, events_unchanged in results:
        assert tally.failures == [], (backend, tally.failures[:5])
        assert canary_intact and events_unchanged, backend
        assert all(count >= 40 for count in tally.examples.values()), tally.examples
