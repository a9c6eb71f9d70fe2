"""The corrupt-files study with make test's counts: no crash, no traceback, no file changed."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.corrupt_files import KINDS, study


def test_damaged_files_give_typed_errors_or_found_damage_and_stay_untouched(
    tmp_path: Path,
) -> None:
    figures = study(False, tmp_path)
    assert figures.failures == []
    assert figures.changed == []
    assert figures.read_refused_check_ok == 0
    for kind in KINDS:
        assert figures.api[kind]["crash"] == figures.api[kind]["traceback"] == 0
    # Every truncation, foreign file and newer schema is refused with a typed error.
    for kind in ("truncated", "not SQLite", "newer schema"):
        assert figures.api[kind]["typed"] == sum(figures.api[kind].values()), kind
