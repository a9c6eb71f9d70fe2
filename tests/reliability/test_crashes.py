"""The crashes study with make test's counts: a writer killed with SIGKILL at random
points leaves a store that opens, checks clean, holds every acknowledged batch, holds
no torn batch, and takes the next append at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.crashes import (
    POSTGRES_ROUNDS,
    SQLITE_ROUNDS,
    postgres_rounds,
    report,
    sqlite_rounds,
)


def test_a_sqlite_writer_killed_at_random_points_loses_and_tears_nothing(
    tmp_path: Path,
) -> None:
    figures = sqlite_rounds(tmp_path / "crash.db", SQLITE_ROUNDS[1], seed=15)
    assert figures.failures == []
    assert figures.rounds == SQLITE_ROUNDS[1]
    assert figures.acknowledged > 0
    assert figures.verified == figures.acknowledged  # no acknowledged batch lost
    assert "| SQLite | 20 | 0 |" in report([figures])


@pytest.mark.postgres
def test_a_postgres_client_killed_inside_an_import_leaves_no_partial_import_or_lock(
    pg_location: str, tmp_path: Path
) -> None:
    figures = postgres_rounds(pg_location, tmp_path, POSTGRES_ROUNDS[1], seed=15)
    assert figures.failures == []  # whole-or-absent, check ok, next append in time
    assert figures.rounds == POSTGRES_ROUNDS[1]
    assert figures.in_flight.get("import", [0])[0] > 0  # kills did land inside imports
    assert figures.verified == figures.acknowledged
