"""Memory under load (issue 15, point 8): the console's figures come from
``make bench-console`` (a 10M-event store, built once and cached: too long for this
report's runner), so this section quotes that report's memory rows as it last wrote
them, with the command that reproduces them."""

from __future__ import annotations

from pathlib import Path
from typing import Final

TITLE: Final = "Memory under load"
BENCH_REPORT: Final = Path(__file__).resolve().parents[2] / "docs" / "benchmarks-console.md"


def memory_rows(report: str) -> list[str]:
    """The bench table's rows about peak memory, as written."""
    return [
        line
        for line in report.splitlines()
        if line.startswith("|") and " MB |" in line and ("peak RSS" in line or "rows held" in line)
    ]


def run(full: bool, workdir: Path) -> str:
    rows = memory_rows(BENCH_REPORT.read_text(encoding="utf-8"))
    if not rows:
        return "No memory figures yet: run `make bench-console`."
    return "\n".join(
        [
            "The console's peak memory on a 10M-event store, each measured in a fresh "
            "offscreen console process (its own high-water mark, `VmHWM`): a type-filtered "
            "jump to the end of the log (the filtered log is a window of at most 8 pages, "
            "paged by position), and the whole run cold (the OS page cache dropped first), "
            "warm, and slow (every store read delayed 50 ms). From "
            "[`docs/benchmarks-console.md`](benchmarks-console.md):",
            "",
            "| measurement | value | target | |",
            "|---|--:|--:|---|",
            *rows,
            "",
            "Reproduce: `make bench-console` (builds the 10M store once, then cached); this "
            'section is copied from its report by `make reliability RELIABILITY_ARGS="--only '
            'memory"`.',
        ]
    )
