"""Run every reliability study and write ``docs/reliability.md`` (``make reliability``).

    .venv/bin/python -m tests.reliability.run [--quick] [--only NAME]...

``--quick`` runs the small counts of ``make test`` (the report then says so);
``--only`` runs the named studies and leaves the others' sections as they were.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
REPORT: Final = ROOT / "docs" / "reliability.md"
#: The studies, in the order the report lists them (modules of this package).
STUDIES: Final = (
    "crashes",
    "concurrency",
    "disk_full",
    "corrupt_files",
    "hostile_input",
    "injection",
    "plugins",
    "memory",
)
_SECTION = re.compile(r"^<!-- study: (\w+) -->$", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the small counts of make test")
    parser.add_argument("--only", action="append", choices=STUDIES, help="run only these")
    args = parser.parse_args(argv)
    chosen = args.only or list(STUDIES)
    sections = _existing_sections()
    for name in chosen:
        study = importlib.import_module(f"tests.reliability.{name}")
        started = time.monotonic()
        print(f"reliability: {name} …", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"eventscope-{name}-") as workdir:
            body = study.run(not args.quick, Path(workdir))
        took = time.monotonic() - started
        counts = "quick (make test's counts)" if args.quick else "full"
        sections[name] = (
            f"<!-- study: {name} -->\n## {study.TITLE}\n\n{body.strip()}\n\n"
            f"_{counts} run on {dt.date.today().isoformat()}, {took:.0f} s._\n"
        )
        print(f"reliability: {name} done in {took:.0f} s", file=sys.stderr, flush=True)
    _write(sections)
    return 0


def _existing_sections() -> dict[str, str]:
    if not REPORT.exists():
        return {}
    text = REPORT.read_text(encoding="utf-8")
    marks = list(_SECTION.finditer(text))
    sections = {}
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        sections[mark.group(1)] = text[mark.start() : end].rstrip() + "\n"
    return sections


def _write(sections: dict[str, str]) -> None:
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    head = (
        "# Reliability\n\n"
        "What the store and the console guarantee under crashes, full disks, concurrent\n"
        "writers, damaged files and hostile input, measured. Every section says how to\n"
        "reproduce its figures; `make reliability` reruns them all and rewrites this file\n"
        f"(`make test` runs the same checks with small counts). Machine: {machine}.\n"
    )
    body = "\n".join(sections[name] for name in STUDIES if name in sections)
    REPORT.write_text(f"{head}\n{body}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
