"""The memory section quotes the console bench's memory rows, and they meet the targets."""

from __future__ import annotations

from tests.reliability.memory import BENCH_REPORT, memory_rows


def test_the_bench_report_holds_the_memory_figures_and_they_pass() -> None:
    rows = memory_rows(BENCH_REPORT.read_text(encoding="utf-8"))
    assert any("jump to the end" in row for row in rows)
    assert {kind for kind in ("cold", "warm", "slow") if any(kind in row for row in rows)} == {
        "cold",
        "warm",
        "slow",
    }
    assert all(row.rstrip().endswith("| PASS |") for row in rows), rows
