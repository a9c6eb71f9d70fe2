"""A 1M-line import streams: its peak memory stays bounded, whatever the file's size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

LINES = 1_000_000
PEAK_LIMIT_MB = 150

_MEASURE = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True)
sys.stderr.write(result.stderr.decode())
print(result.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(result.stdout.decode().strip())
"""


@pytest.mark.slow
def test_a_million_line_import_runs_in_bounded_memory(tmp_path: Path) -> None:
    source = tmp_path / "million.jsonl"
    with source.open("wb") as handle:
        batch = []
        for n in range(LINES):
            batch.append(
                orjson.dumps(
                    {
                        "stream_id": f"order-{n % 10_000}",
                        "type": "OrderLine",
                        "data": {"n": n, "sku": "kettle", "price": 39.0},
                        "metadata": {"correlation_id": f"c-{n // 10}"},
                    }
                )
            )
            if len(batch) == 10_000:
                handle.write(b"\n".join(batch) + b"\n")
                batch.clear()
    assert source.stat().st_size > 100 * 1024 * 1024  # far more than the memory limit

    store = tmp_path / "million.db"
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "console.cli",
         "--store", str(store), "import", str(source)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    code, peak_kb = measured.stdout.splitlines()[0].split()
    assert code == "0", measured.stderr
    assert orjson.loads(measured.stdout.splitlines()[1]) == {"appended": LINES, "duplicates": 0}
    assert int(peak_kb) / 1024 < PEAK_LIMIT_MB
