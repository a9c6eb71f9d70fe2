"""``eventscope demo``: a deterministic history, byte-identical for the same seed."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from console.cli import main


def run(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> bytes:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsysbinary.readouterr()
    assert exited.value.code == 0, captured.err
    return captured.out


def test_the_same_seed_gives_a_byte_identical_export(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    exports, summaries = [], []
    for name, seed in (("a", "11"), ("b", "11"), ("c", "12")):
        store = str(tmp_path / f"{name}.db")
        summary = orjson.loads(run(capsysbinary, "--store", store, "demo", "--orders", "150",
                                   "--seed", seed))  # fmt: skip
        assert summary["appended"] == summary["head"] > 150 * 3
        summaries.append(summary)
        exports.append(run(capsysbinary, "--store", store, "export"))
    assert exports[0] == exports[1]
    assert exports[0] != exports[2]
    again = orjson.loads(
        run(capsysbinary, "--store", str(tmp_path / "a.db"), "demo", "--orders", "150",
            "--seed", "11")
    )  # fmt: skip
    assert (again["appended"], again["duplicates"]) == (0, summaries[0]["appended"])
    report = orjson.loads(run(capsysbinary, "--store", str(tmp_path / "a.db"), "check"))
    assert report["ok"] is True


def test_the_demo_is_readable_by_the_shipped_projections(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = str(tmp_path / "demo.db")
    run(capsysbinary, "--store", store, "demo", "--orders", "300", "--seed", "5")
    first = orjson.loads(run(capsysbinary, "--store", store, "replay", "order_summary:1"))
    second = orjson.loads(run(capsysbinary, "--store", store, "replay", "order_summary:2"))
    assert first.keys() == second.keys() and len(first) == 300
    differing = [key for key in first if first[key] != second[key]]
    assert differing, "v2 changes a business rule: some orders must differ"
    assert all(first[key]["status"] == "cancelled" for key in differing)
    revenue = orjson.loads(run(capsysbinary, "--store", store, "replay", "daily_revenue"))
    stats = orjson.loads(run(capsysbinary, "--store", store, "replay", "customer_stats"))
    total_revenue = sum(day["revenue_cents"] - day["refunds_cents"] for day in revenue.values())
    assert total_revenue == sum(customer["spent_cents"] for customer in stats.values())
