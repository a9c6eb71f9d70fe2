"""``eventscope diff REF_A REF_B [--summary]`` and ``replay --key/--limit`` from history."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import orjson
import pytest

from console.cli import main


def run(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsysbinary.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err.decode()


@pytest.fixture
def shop(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> str:
    store = str(tmp_path / "shop.db")
    assert run(capsysbinary, "--store", store, "demo", "--orders", "200")[0] == 0
    return store


def test_diff_two_versions_in_the_contract_format(
    capsysbinary: pytest.CaptureFixture[bytes], shop: str
) -> None:
    code, out, err = run(
        capsysbinary, "--store", shop, "diff", "order_summary:1", "order_summary:2"
    )
    assert code == 0, err
    diff = orjson.loads(out)
    assert list(diff) == ["added", "changed", "removed", "unchanged"]
    assert diff["added"] == diff["removed"] == {}
    assert list(diff["changed"]) == sorted(diff["changed"]) and diff["changed"]
    order = next(iter(diff["changed"].values()))
    assert order["paths"] == ["total_cents"] and order["after"]["total_cents"] == 0
    code, out, _ = run(capsysbinary, "--store", shop, "diff", "order_summary:1", "order_summary:2",
                       "--summary")  # fmt: skip
    summary = orjson.loads(out)
    assert code == 0
    assert summary == {
        "added": 0,
        "removed": 0,
        "changed": len(diff["changed"]),
        "unchanged": diff["unchanged"],
        "paths": {"total_cents": len(diff["changed"])},
    }
    # From history once both versions have run: the same answer.
    assert run(capsysbinary, "--store", shop, "projections", "run")[0] == 0
    code, again, _ = run(
        capsysbinary, "--store", shop, "diff", "order_summary:1", "order_summary:2"
    )
    assert orjson.loads(again) == diff


def test_diff_one_version_at_two_points(
    capsysbinary: pytest.CaptureFixture[bytes], shop: str
) -> None:
    run(capsysbinary, "--store", shop, "projections", "run", "customer_stats")
    code, out, _ = run(
        capsysbinary, "--store", shop, "diff", "customer_stats@300", "customer_stats"
    )
    diff = orjson.loads(out)
    assert code == 0 and diff["changed"] and diff["unchanged"] >= 0
    before = orjson.loads(run(capsysbinary, "--store", shop, "replay", "customer_stats@300")[1])
    for key, change in diff["changed"].items():
        assert change["before"] == before[key]
        assert all(change["before"].get(p) != change["after"].get(p) for p in change["paths"])


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        (("ledger", "order_summary"), "unknown projection 'ledger'"),
        (("order_summary:7", "order_summary"), "projection 'order_summary' has no version 7"),
        (("order_summary@yesterday", "order_summary"), "point 'yesterday' is not head"),
        (("order_summary@2026-03-01T10:00:00", "order_summary"), "with a zone"),
    ],
)
def test_a_bad_reference_is_one_line_naming_what_is_wrong(
    capsysbinary: pytest.CaptureFixture[bytes], shop: str, refs: tuple[str, str], message: str
) -> None:
    code, out, err = run(capsysbinary, "--store", shop, "diff", *refs)
    assert code == 1 and out == b""
    assert message in err and err.count("\n") == 1, err


def test_replay_reads_one_key_or_the_first_page_from_history(
    capsysbinary: pytest.CaptureFixture[bytes], shop: str
) -> None:
    whole = orjson.loads(run(capsysbinary, "--store", shop, "replay", "order_summary@900")[1])
    run(capsysbinary, "--store", shop, "projections", "run", "order_summary")
    first = sorted(whole)[:5]
    code, out, _ = run(capsysbinary, "--store", shop, "replay", "order_summary@900", "--limit", "5")
    assert code == 0 and orjson.loads(out) == {key: whole[key] for key in first}
    code, out, _ = run(
        capsysbinary, "--store", shop, "replay", "order_summary@900", "--key", first[2]
    )
    assert orjson.loads(out) == {first[2]: whole[first[2]]}
    code, out, _ = run(
        capsysbinary, "--store", shop, "replay", "order_summary@900", "--key", "nope"
    )
    assert code == 0 and orjson.loads(out) == {}


def test_lineage_and_step_from_the_command_line(
    capsysbinary: pytest.CaptureFixture[bytes], shop: str
) -> None:
    run(capsysbinary, "--store", shop, "projections", "run", "order_summary:1")
    summary = orjson.loads(run(capsysbinary, "--store", shop, "replay", "order_summary:1",
                               "--limit", "1")[1])  # fmt: skip
    (key,) = summary
    code, out, err = run(capsysbinary, "--store", shop, "lineage", "order_summary:1", key)
    assert code == 0, err
    changes = [orjson.loads(line) for line in out.splitlines()]
    assert changes[0]["kind"] == "added" and changes[0]["event"]["type"] == "OrderPlaced"
    assert changes[-1]["after"] == summary[key]  # the story ends at the current document
    for earlier, later in itertools.pairwise(changes):
        assert earlier["after"] == later["before"] and earlier["position"] < later["position"]
    last = changes[-1]
    code, out, _ = run(capsysbinary, "--store", shop, "step", f"order_summary:1@{last['position']}")
    effect = orjson.loads(out)
    assert code == 0 and effect["handled"] is True
    assert effect["event"]["position"] == last["position"]
    assert [c["key"] for c in effect["changes"]] == [key]
    assert effect["changes"][0]["paths"] == last["paths"]
    code, _, err = run(capsysbinary, "--store", shop, "step", "order_summary:1@0")
    assert code == 1 and "no event at position 0" in err


CANDIDATE = """
from core.api import handles
from plugins.orders.projections import OrderSummaryV2


class OrderSummaryV3(OrderSummaryV2):
    version = 3

    @handles("OrderCancelled")
    def order_cancelled(self, view, event):
        super().order_cancelled(view, event)
        doc = view.get(event.data["order_id"])
        if doc is not None:
            doc["status"] = "void"
            view.put(doc["order_id"], doc)
"""


def test_what_if_replays_an_uninstalled_plugin_into_a_scratch_database(
    capsysbinary: pytest.CaptureFixture[bytes], shop: str, tmp_path: Path
) -> None:
    plugin = tmp_path / "candidate.py"
    plugin.write_text(CANDIDATE)
    before = hashlib.sha256(Path(shop).read_bytes()).hexdigest()
    code, out, err = run(capsysbinary, "--store", shop, "what-if", "order_summary:3",
                         "--against", "order_summary:2", "--plugin-file", str(plugin))  # fmt: skip
    assert code == 0, err
    result = orjson.loads(out)
    assert result["candidate"] == "order_summary:3"
    diff = result["diff"]
    assert diff["added"] == diff["removed"] == {} and diff["changed"]
    assert all(c["paths"] == ["status"] for c in diff["changed"].values())
    assert all(c["after"]["status"] == "void" for c in diff["changed"].values())
    assert hashlib.sha256(Path(shop).read_bytes()).hexdigest() == before  # nothing written
    code, out, _ = run(capsysbinary, "--store", shop, "what-if", "order_summary:3@400",
                       "--against", "order_summary:2", "--plugin-file", str(plugin),
                       "--summary")  # fmt: skip
    early = orjson.loads(out)
    assert code == 0 and early["position"] == 400 and early["against"] == "order_summary:2@400"
    assert early["diff"]["changed"] < len(diff["changed"])
    (tmp_path / "broken.py").write_text("import nowhere\n")
    code, _, err = run(capsysbinary, "--store", shop, "what-if", "order_summary:3",
                       "--against", "order_summary:2", "--plugin-file",
                       str(tmp_path / "broken.py"))  # fmt: skip
    assert code == 2 and "No module named 'nowhere'" in err and err.count("\n") == 1
