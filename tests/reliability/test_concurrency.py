"""The concurrency study with make test's counts: writer processes racing with expected
versions and two tailing readers; nothing lost or duplicated, no lock error to a caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.concurrency import COUNTS, ConcurrencyFigures, race


def _assert_clean(figures: ConcurrencyFigures) -> None:
    writers, appends = COUNTS[1]
    assert figures.failures == []  # no "database is locked", no StoreBusy, no gap seen
    assert figures.acknowledged == figures.stored == writers * appends
    assert figures.lost == figures.duplicated == 0
    assert figures.read_by_readers == [figures.stored, figures.stored]
    assert figures.conflicts > 0  # the writers did collide, and retried


def test_writers_and_tailing_readers_on_sqlite(tmp_path: Path) -> None:
    _assert_clean(race(str(tmp_path / "race.db"), "SQLite", *COUNTS[1]))


@pytest.mark.postgres
def test_writers_and_tailing_readers_on_postgres(pg_location: str) -> None:
    _assert_clean(race(pg_location, "PostgreSQL", *COUNTS[1]))
