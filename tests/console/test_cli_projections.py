"""``eventscope projections list|run|rebuild|reset [REF]`` and replay from history."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from console.cli import main


def run(
    capsysbinary: pytest.CaptureFixture[bytes], store: Path, *args: str
) -> tuple[int, bytes, str]:
    with pytest.raises(SystemExit) as exited:
        main(["--store", str(store), *args])
    captured = capsysbinary.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err.decode()


def lines(out: bytes) -> list[dict]:  # type: ignore[type-arg]
    return [orjson.loads(line) for line in out.splitlines()]


def test_list_run_replay_rebuild_reset(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = tmp_path / "shop.db"
    assert run(capsysbinary, store, "demo", "--orders", "120")[0] == 0
    code, out, _ = run(capsysbinary, store, "projections", "list")
    listed = lines(out)
    head = listed[0]["head"]
    assert code == 0 and head > 0
    assert [p["projection"] for p in listed] == [
        "customer_stats:1",
        "daily_revenue:1",
        "order_summary:1",
        "order_summary:2",
    ]
    assert all(p["state"] == "never run" and p["lag"] == head for p in listed)

    middle = head // 2
    folded = run(capsysbinary, store, "replay", f"order_summary:2@{middle}")[1]
    code, out, err = run(capsysbinary, store, "projections", "run", "order_summary")
    assert code == 0, err
    (ran,) = lines(out)
    assert ran["projection"] == "order_summary:2"
    assert (ran["from_position"], ran["checkpoint"]) == (0, head)
    after = {p["projection"]: p for p in lines(run(capsysbinary, store, "projections", "list")[1])}
    assert (after["order_summary:2"]["state"], after["order_summary:2"]["lag"]) == ("caught up", 0)
    assert after["order_summary:1"]["state"] == "never run"
    # From history now, byte for byte what the fold gave.
    assert run(capsysbinary, store, "replay", f"order_summary:2@{middle}")[1] == folded

    code, out, _ = run(capsysbinary, store, "projections", "run")
    assert code == 0
    assert {line["projection"]: line["from_position"] for line in lines(out)} == {
        "customer_stats:1": 0,
        "daily_revenue:1": 0,
        "order_summary:1": 0,
        "order_summary:2": head,
    }
    code, out, _ = run(capsysbinary, store, "projections", "rebuild", "order_summary:2")
    assert code == 0 and lines(out)[0]["from_position"] == 0
    code, out, _ = run(capsysbinary, store, "projections", "reset", "customer_stats")
    (reset,) = lines(out)
    assert code == 0 and (reset["projection"], reset["checkpoint"]) == ("customer_stats:1", 0)
    listed_after_reset = lines(run(capsysbinary, store, "projections", "list", "customer_stats")[1])
    # The rebuild and the reset were each recorded in $audit: two events past the demo.
    assert [(p["checkpoint"], p["lag"], p["head"]) for p in listed_after_reset] == [
        (0, head + 2, head + 2)
    ]
    audit = lines(run(capsysbinary, store, "read", "--stream", "$audit")[1])
    assert [(e["type"], e["data"]["projection"]) for e in audit] == [
        ("ProjectionReset", "order_summary:2"),
        ("ProjectionReset", "customer_stats:1"),
    ]


def test_bad_projection_commands(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = tmp_path / "shop.db"
    assert run(capsysbinary, store, "demo", "--orders", "5")[0] == 0
    code, _, err = run(capsysbinary, store, "projections", "reset")
    assert code == 2 and "name the projection" in err
    code, _, err = run(capsysbinary, store, "projections", "run", "ledger")
    assert code == 1 and "unknown projection 'ledger'" in err
