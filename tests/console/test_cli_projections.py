"""``eventscope projections list|run|rebuild|reset [REF]`` and replay from history."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from console.cli import main
from core.workspace import Workspace


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


FRAGILE = """
from core.api import Projection, handles

class Fragile(Projection):
    name = "fragile"
    version = 1

    @handles("Booked")
    def booked(self, view, event):
        if event.data.get("poison"):
            raise ValueError("poisoned booking")
        doc = view.get("total") or {"sum": 0}
        doc["sum"] += event.data["amount"]
        view.put("total", doc)
"""


def test_operator_actions_on_a_faulted_projection(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = tmp_path / "shop.db"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fragile.py").write_text(FRAGILE)
    for n, extra in enumerate(["{}", "{}", '{"poison": true}', "{}"]):
        data = orjson.loads(extra) | {"amount": n + 1}
        assert run(capsysbinary, store, "append", "b-1", "Booked", "--data",
                   orjson.dumps(data).decode())[0] == 0  # fmt: skip
    with_plugins = ("--plugins", str(plugins))

    def cli(*args: str) -> tuple[int, bytes, str]:
        return run(capsysbinary, store, *with_plugins, *args)

    code, out, _ = cli("projections", "run", "fragile")
    (ran,) = lines(out)
    assert code == 1  # a fault is a failed run
    assert (ran["checkpoint"], ran["fault"]["position"]) == (2, 3)
    assert "ValueError: poisoned booking" in ran["fault"]["error"]
    (listed,) = lines(cli("projections", "list", "fragile")[1])
    assert (listed["state"], listed["fault"]["position"], listed["lag"]) == ("faulted", 3, 2)
    code, _, err = cli("projections", "run", "fragile")
    assert code == 1 and "fragile:1 is faulted at position 3" in err and "retry or skip" in err
    code, out, _ = cli("projections", "retry", "fragile")
    assert code == 0 and lines(out)[0]["state"] == "behind"
    assert cli("projections", "run", "fragile")[0] == 1  # still poisoned
    code, out, _ = cli("projections", "skip", "fragile")
    assert code == 0 and lines(out)[0]["skipped_position"] == 3
    code, out, _ = cli("projections", "run", "fragile")
    assert code == 0 and "fault" not in lines(out)[0]
    assert cli("replay", "fragile")[1] == b'{"total":{"sum":7}}\n'  # 1 + 2 + 4: 3 skipped
    code, out, _ = cli("projections", "pause", "fragile")
    assert code == 0 and lines(out)[0]["state"] == "paused"
    code, _, err = cli("projections", "pause", "nothing")
    assert code == 1 and "unknown projection 'nothing'" in err
    code, out, _ = cli("projections", "resume", "fragile")
    assert code == 0 and lines(out)[0]["state"] in ("caught up", "behind")
    code, _, err = cli("projections", "skip", "fragile")
    assert code == 1 and "not faulted" in err
    runs = lines(cli("projections", "runs", "fragile")[1])
    assert [r["outcome"] for r in runs] == ["ok", "faulted", "faulted"]  # newest first
    audit = lines(cli("read", "--stream", "$audit")[1])
    assert [e["type"] for e in audit] == [
        "ProjectionRetried",
        "ProjectionEventSkipped",
        "ProjectionPaused",
        "ProjectionResumed",
    ]
    code, out, _ = cli("projections", "retain", "fragile", "--since", "4")
    assert code == 0 and lines(out)[0]["history_from"] == 4
    code, out, _ = cli("projections", "retire", "fragile")
    assert code == 0 and lines(out)[0]["state"] == "retired"
    assert cli("replay", "fragile@2")[1] == b'{"total":{"sum":3}}\n'  # folded from the log
    code, _, err = cli("replay", "fragile")  # a fold cannot skip: the poisoned event raises
    assert code == 1 and err.count("\n") == 1
    assert "fragile:1: its handler raised at position 3 (event " in err
    assert "ValueError: poisoned booking" in err
    code, _, err = cli("projections", "retain", "fragile")
    assert code == 2 and "--since" in err


def test_a_rebuild_reports_progress_and_ctrl_c_stops_it_between_batches(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = tmp_path / "shop.db"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "slow.py").write_text(
        "import time\n"
        "from core.api import Projection, handles\n"
        "class Slow(Projection):\n"
        "    name = 'slow'\n"
        "    @handles('OrderPlaced', 'OrderPaid', 'ItemAdded')\n"
        "    def changed(self, view, event):\n"
        "        time.sleep(0.001)\n"
        "        view.put(event.data['order_id'], {'last': event.type})\n"
    )
    assert run(capsysbinary, store, "demo", "--orders", "800")[0] == 0
    rebuild = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console.cli",
            "--store",
            str(store),
            "--plugins",
            str(plugins),
            "projections",
            "rebuild",
            "slow",
            "--progress",
            "--batch-size",
            "100",
        ],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert rebuild.stderr is not None
    shown = re.compile(r"slow:1: ([\d,]+)/[\d,]+ events \(\d+%\), [\d,]+ events/s")
    while True:  # progress lines until one says a batch is done
        line = rebuild.stderr.readline().decode()
        done = shown.match(line)
        assert done, line
        if done[1] != "0":
            break
    assert re.search(r", [\d,]+ s left$", line), line
    rebuild.send_signal(signal.SIGINT)
    out, err = rebuild.communicate(timeout=60)
    assert rebuild.returncode == 130 and out == b""
    _code, out, _ = run(
        capsysbinary, store, "--plugins", str(plugins), "projections", "list", "slow"
    )
    (status,) = lines(out)
    assert 0 < status["checkpoint"] < status["head"]  # the batches done are kept
    assert f"cancelled at checkpoint {status['checkpoint']}" in err.decode()
    runs = lines(run(capsysbinary, store, "--plugins", str(plugins), "projections", "runs")[1])
    assert runs[0]["outcome"] == "cancelled"
    assert runs[0]["to_position"] == status["checkpoint"]


def test_run_and_rebuild_take_the_lease_as_a_worker_does(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    """A projection leased to a worker is not run from the command line too; a run
    holds the lease while it runs (it is in the run history) and gives it back."""
    store = tmp_path / "shop.db"
    assert run(capsysbinary, store, "demo", "--orders", "40")[0] == 0
    with Workspace.open(str(store), read_only=False) as workspace:
        workspace.projections.take_lease("order_summary:2", "worker-7", 60)

    code, out, err = run(capsysbinary, store, "projections", "run", "order_summary")
    assert code == 1 and out == b""
    assert "order_summary:2 is being run by worker worker-7" in err
    code, _, err = run(capsysbinary, store, "projections", "rebuild", "order_summary")
    assert code == 1 and "worker-7" in err
    listed = {p["projection"]: p for p in lines(run(capsysbinary, store, "projections", "list")[1])}
    assert (listed["order_summary:2"]["checkpoint"], listed["order_summary:2"]["worker"]) == (
        0,
        "worker-7",
    )
    audit = lines(run(capsysbinary, store, "read", "--stream", "$audit")[1])
    assert audit == []  # the refused rebuild reset nothing and recorded nothing

    # Running every projection reports the leased one and runs the others.
    code, out, _ = run(capsysbinary, store, "projections", "run")
    by_name = {line["projection"]: line for line in lines(out)}
    assert code == 0 and "worker-7" in by_name["order_summary:2"]["leased"]
    assert by_name["order_summary:1"]["checkpoint"] == listed["order_summary:1"]["head"]

    with Workspace.open(str(store), read_only=False) as workspace:
        workspace.projections.give_lease_back("order_summary:2", "worker-7")
    code, out, _ = run(capsysbinary, store, "projections", "rebuild", "order_summary")
    assert code == 0 and lines(out)[0]["checkpoint"] > 0
    (last,) = lines(
        run(capsysbinary, store, "projections", "runs", "order_summary", "--limit", "1")[1]
    )
    assert last["worker"].startswith("cli:")  # the command line held the lease
    listed = {p["projection"]: p for p in lines(run(capsysbinary, store, "projections", "list")[1])}
    assert listed["order_summary:2"]["worker"] is None  # given back


PAYMENT_FAULT = """
from core.api import Projection, handles

class Fragile(Projection):
    name = "fragile"

    @handles("OrderPlaced", "OrderPaid")
    def changed(self, view, event):
        if event.type == "OrderPaid":
            raise ValueError("no payments here")
        view.put(event.data["order_id"], {"placed": True})
"""


def test_rebuild_several_versions_at_once(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = tmp_path / "shop.db"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fragile.py").write_text(PAYMENT_FAULT)
    assert run(capsysbinary, store, "demo", "--orders", "60")[0] == 0
    versions = ["order_summary:1", "order_summary:2", "customer_stats:1"]

    code, out, err = run(capsysbinary, store, "projections", "rebuild", *versions, "--jobs", "3")

    assert code == 0, err
    rebuilt = lines(out)
    assert [(line["projection"], line["from_position"]) for line in rebuilt] == [
        (version, 0) for version in versions
    ]
    assert all(line["checkpoint"] > 0 and "fault" not in line for line in rebuilt)
    total = re.search(r"rebuilt 3 versions in [\d.,]+ s with 3 processes: ([\d,]+) positions", err)
    assert total, err
    assert int(total[1].replace(",", "")) == sum(line["checkpoint"] for line in rebuilt)
    audit = lines(run(capsysbinary, store, "read", "--stream", "$audit")[1])
    assert sorted((e["type"], e["data"]["projection"], e["data"]["rebuild"]) for e in audit) == [
        ("ProjectionReset", version, True) for version in sorted(versions)
    ]

    # A version that faults is named on stderr and fails the command; the other stands.
    code, out, err = run(
        capsysbinary, store, "--plugins", str(plugins),
        "projections", "rebuild", "order_summary:1", "fragile", "--jobs", "2",
    )  # fmt: skip
    assert code == 1
    summary, fragile = lines(out)
    assert summary["projection"] == "order_summary:1" and "fault" not in summary
    assert fragile["projection"] == "fragile:1"
    assert re.search(
        rf"eventscope: fragile:1 faulted at position {fragile['fault']['position']}: "
        "ValueError: no payments here",
        err,
    ), err

    code, out, err = run(capsysbinary, store, "projections", "rebuild", "--all", "--jobs", "2")
    assert code == 0, err
    assert len(lines(out)) == 4 and "rebuilt 4 versions" in err and "with 2 processes" in err


def test_several_projections_only_for_run_and_rebuild(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = tmp_path / "shop.db"
    assert run(capsysbinary, store, "demo", "--orders", "5")[0] == 0
    code, _, err = run(
        capsysbinary, store, "projections", "reset", "order_summary", "daily_revenue"
    )
    assert code == 2 and "one projection at a time" in err
    code, _, err = run(capsysbinary, store, "projections", "rebuild", "order_summary", "--all")
    assert code == 2 and "--all" in err
    # One at a time (--jobs 1): the same lines, in the same process.
    code, out, err = run(
        capsysbinary, store, "projections", "rebuild", "order_summary", "daily_revenue",
        "--jobs", "1",
    )  # fmt: skip
    assert code == 0, err
    assert [line["projection"] for line in lines(out)] == ["order_summary:2", "daily_revenue:1"]
    assert "rebuilt 2 versions" in err and "with 1 process:" in err


def test_sigterm_stops_a_rebuild_of_several_versions(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    store = tmp_path / "shop.db"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "slow.py").write_text(
        "import time\n"
        "from core.api import Projection, handles\n"
        "class Slow(Projection):\n"
        "    name = 'slow'\n"
        "    @handles('OrderPlaced', 'OrderPaid', 'ItemAdded')\n"
        "    def changed(self, view, event):\n"
        "        time.sleep(0.002)\n"
        "        view.put(event.data['order_id'], {'last': event.type})\n"
    )
    assert run(capsysbinary, store, "demo", "--orders", "300")[0] == 0
    rebuild = subprocess.Popen(
        [
            sys.executable, "-m", "console.cli", "--store", str(store), "--plugins", str(plugins),
            "projections", "rebuild", "slow", "order_summary:1", "--jobs", "2",
            "--progress", "--batch-size", "50",
        ],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert rebuild.stderr is not None
    shown = re.compile(r"slow:1: ([\d,]+)/[\d,]+ events")
    while True:  # progress lines until one says a batch of slow is done
        line = rebuild.stderr.readline().decode()
        assert line, "the rebuild ended before slow:1 reported a batch"
        done = shown.match(line)
        if done and done[1] != "0":
            break
    rebuild.send_signal(signal.SIGTERM)
    _out, err = rebuild.communicate(timeout=60)

    assert rebuild.returncode == 130, err
    listed = lines(
        run(capsysbinary, store, "--plugins", str(plugins), "projections", "list", "slow")[1]
    )
    (status,) = listed
    assert 0 < status["checkpoint"] < status["head"] and status["worker"] is None
    assert f"slow:1: cancelled at checkpoint {status['checkpoint']}" in err.decode()
