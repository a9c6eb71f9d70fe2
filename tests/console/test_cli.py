"""The store half of the ``eventscope`` command: output formats and exit codes (DESIGN §6)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from console.cli import main


@dataclass
class Outcome:
    code: int
    out: bytes
    err: str

    @property
    def lines(self) -> list[dict]:  # type: ignore[type-arg]
        return [orjson.loads(line) for line in self.out.splitlines()]


@pytest.fixture
def cli(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``eventscope --store <tmp store> ARGS`` in-process."""
    store = str(tmp_path / "cli.db")

    def run(*args: str, stdin: bytes | None = None, at: str | None = None) -> Outcome:
        if stdin is not None:
            source = tmp_path / "stdin.jsonl"
            source.write_bytes(stdin)
            args = tuple(str(source) if a == "-" else a for a in args)
        with pytest.raises(SystemExit) as exited:
            main(["--store", at or store, *args])
        captured = capsysbinary.readouterr()
        return Outcome(int(exited.value.code or 0), captured.out, captured.err.decode())

    run.store = store  # type: ignore[attr-defined]
    return run


def test_append_prints_the_recorded_event(cli) -> None:  # type: ignore[no-untyped-def]
    outcome = cli(
        "append", "order-17", "OrderPaid", "--data", '{"amount": 129.5}',
        "--metadata", '{"correlation_id": "c-1"}', "--expected-version", "no_stream",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    (event,) = outcome.lines
    assert event["position"] == 1
    assert event["stream_id"] == "order-17"
    assert event["version"] == 0
    assert event["type"] == "OrderPaid"
    assert event["data"] == {"amount": 129.5}
    assert event["metadata"] == {"correlation_id": "c-1"}
    assert event["recorded_at"].endswith("Z") and len(event["event_id"]) == 36


def test_append_exit_codes(cli) -> None:  # type: ignore[no-untyped-def]
    event_id = "0b6f4c1e-8a5d-4e2f-9c3b-1d2e3f4a5b6c"
    assert cli("append", "s-1", "A", "--event-id", event_id).code == 0
    again = cli("append", "s-1", "A", "--event-id", event_id, "--expected-version", "no_stream")
    assert again.code == 0 and again.lines[0]["version"] == 0  # idempotent re-send
    conflict = cli("append", "s-1", "B", "--expected-version", "5")
    assert conflict.code == 3
    assert conflict.err.count("\n") == 1 and "wrong expected version" in conflict.err
    assert cli("append", "s-1", "B", "--data", "{oops").code == 2
    assert cli("append", "s-1", "B", "--expected-version", "soon").code == 2
    assert cli("append", "s-1", "B", "--data", '{"x": 1e999}').code == 2  # not JSON
    invalid = cli("append", "bad\x01stream", "B")
    assert invalid.code == 1 and "stream_id: has a control character" in invalid.err
    assert [e["type"] for e in cli("read").lines] == ["A"]


def test_read_filters_and_directions(cli) -> None:  # type: ignore[no-untyped-def]
    for stream_id, kind in [("order-1", "Placed"), ("order-2", "Placed"), ("user-1", "Joined"),
                            ("order-1", "Paid")]:  # fmt: skip
        assert cli("append", stream_id, kind).code == 0
    assert [e["position"] for e in cli("read").lines] == [1, 2, 3, 4]
    assert [e["position"] for e in cli("read", "--stream", "order-1").lines] == [1, 4]
    assert [e["position"] for e in cli("read", "--category", "order").lines] == [1, 2, 4]
    assert [e["position"] for e in cli("read", "--type", "Paid", "--type", "Joined").lines] == [
        3,
        4,
    ]
    assert [e["position"] for e in cli("read", "--from-position", "3").lines] == [3, 4]
    assert [e["position"] for e in cli("read", "--backwards", "--limit", "2").lines] == [4, 3]
    assert cli("read", "--until", "2000-01-01T00:00:00Z").lines == []
    assert len(cli("read", "--until", "2999-01-01T00:00:00+02:00").lines) == 4
    assert cli("read", "--until", "2999-01-01T00:00:00").code == 2  # no zone
    assert cli("read", "--stream", "a", "--category", "b").code == 2


def test_streams_lists_counts_and_times(cli) -> None:  # type: ignore[no-untyped-def]
    for stream_id in ["order-1", "order-1", "order-2", "user-1"]:
        cli("append", stream_id, "Happened")
    listed = cli("streams").lines
    assert [(s["stream_id"], s["event_count"]) for s in listed] == [
        ("order-1", 2), ("order-2", 1), ("user-1", 1),
    ]  # fmt: skip
    assert listed[0]["first_recorded_at"] <= listed[0]["last_recorded_at"]
    assert [s["stream_id"] for s in cli("streams", "--prefix", "order").lines] == [
        "order-1",
        "order-2",
    ]
    assert [s["stream_id"] for s in cli("streams", "--category", "user").lines] == ["user-1"]


def test_import_export_round_trip_through_the_cli(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = b"".join(
        orjson.dumps({"stream_id": f"acct-{n % 3}", "type": "Deposited", "data": {"n": n}}) + b"\n"
        for n in range(10)
    )
    first = cli("import", "-", stdin=lines)
    assert first.code == 0 and first.lines == [{"appended": 10, "duplicates": 0}]
    exported = cli("export").out
    copy = tmp_path / "copy.db"
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(exported)
    assert cli("import", str(dump), at=str(copy)).code == 0
    assert cli("export", at=str(copy)).out == exported
    assert cli("import", str(dump)).lines == [{"appended": 0, "duplicates": 10}]


def test_import_bad_line_exit_and_message(cli) -> None:  # type: ignore[no-untyped-def]
    bad = b'{"stream_id": "a-1", "type": "A"}\n{"stream_id": "a-1", "data": {}}\n'
    outcome = cli("import", "-", stdin=bad)
    assert outcome.code == 1
    assert outcome.err == "eventscope: line 2: missing type\n"
    assert cli("read").lines == []
    conflict = cli("import", "-", stdin=b'{"stream_id": "a-1", "type": "A", "version": 3}\n')
    assert conflict.code == 3
    assert cli("import", "/no/such/file.jsonl").code == 2


def test_check_reports_a_healthy_store(cli) -> None:  # type: ignore[no-untyped-def]
    cli("append", "s-1", "A")
    outcome = cli("check")
    assert outcome.code == 0
    (report,) = outcome.lines
    assert report["ok"] is True and report["events"] == 1 and report["problems"] == []


def test_check_fails_on_a_gap_and_a_broken_version(cli) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    for _ in range(3):
        cli("append", "s-1", "A")
    with sqlite3.connect(cli.store) as raw:
        raw.execute("DELETE FROM events WHERE position = 2")
    outcome = cli("check")
    assert outcome.code == 1
    report = outcome.lines[0]
    assert report["ok"] is False
    assert report["positions_after_gaps"] == [3]
    assert any("non-contiguous versions" in problem for problem in report["problems"])


def test_usage_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("read", "--limit", "-3").code == 2
    assert cli("frobnicate").code == 2


def test_the_cli_imports_no_qt_for_store_commands(tmp_path: Path) -> None:
    code = (
        "import sys; from console.cli import main\n"
        "try:\n"
        f"    main(['--store', {str(tmp_path / 'q.db')!r}, 'append', 's-1', 'A'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_search_flags_and_the_index_command(cli) -> None:  # type: ignore[no-untyped-def]
    for n, (sku, flow) in enumerate([("SKU-4242", "f-1"), ("SKU-1042", "f-2"), ("mug", "f-1")]):
        appended = cli(
            "append", f"order-{n}", "ItemAdded", "--data", orjson.dumps({"sku": sku}).decode(),
            "--metadata", orjson.dumps({"correlation_id": flow}).decode(),
        )  # fmt: skip
        assert appended.code == 0, appended.err
    # Before indexing the store scans; after, it reads the index: the same answers.
    for expected_indexed in (0, 3):
        found = cli("read", "--text", "sku 42*")
        assert [e["position"] for e in found.lines] == [1], found.err
        flow = cli("read", "--correlation-id", "f-1", "--backwards")
        assert [e["position"] for e in flow.lines] == [3, 1]
        if expected_indexed == 0:
            indexed = cli("index")
            assert indexed.code == 0, indexed.err
            assert indexed.lines == [{"indexed": 3, "indexed_position": 3, "head": 3}]
    assert cli("index").lines == [{"indexed": 0, "indexed_position": 3, "head": 3}]


def test_import_indexes_what_it_appended(cli) -> None:  # type: ignore[no-untyped-def]
    lines = b"".join(
        orjson.dumps({"stream_id": "a-1", "type": "A", "data": {"n": n}}) + b"\n" for n in range(5)
    )
    assert cli("import", "-", stdin=lines).code == 0
    assert cli("index").lines == [{"indexed": 0, "indexed_position": 5, "head": 5}]
