"""The plugin half of the CLI: plugins, command, replay (exit codes 3 and 4 included)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from console.cli import main


@pytest.fixture
def bank_cli(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path, bank_plugins: Path):  # type: ignore[no-untyped-def]
    folder = bank_plugins
    (folder / "broken.py").write_text("raise ImportError('missing dependency: left-pad')\n")
    store = str(tmp_path / "bank.db")

    def run(*args: str) -> tuple[int, list[dict], str]:  # type: ignore[type-arg]
        with pytest.raises(SystemExit) as exited:
            main(["--store", store, "--plugins", str(folder), *args])
        captured = capsysbinary.readouterr()
        lines = [orjson.loads(line) for line in captured.out.splitlines()]
        return int(exited.value.code or 0), lines, captured.err.decode()

    run.store = store  # type: ignore[attr-defined]
    return run


def test_plugins_lists_origins_contributions_and_failures(bank_cli) -> None:  # type: ignore[no-untyped-def]
    code, lines, _ = bank_cli("plugins")
    assert code == 0
    listed = {line["name"]: line for line in lines}
    assert listed["bank"]["status"] == "loaded"
    assert listed["bank"]["origin"] == "path"
    assert listed["bank"]["projections"] == ["balances:1", "balances:2", "deposit_count:1"]
    assert listed["bank"]["commands"] == ["Deposit", "Open", "Withdraw"]
    assert listed["broken"]["status"] == "failed"
    assert "ImportError: missing dependency: left-pad" in listed["broken"]["error"]
    assert listed["orders"]["origin"] == "builtin"


def test_command_prints_the_appended_events(bank_cli) -> None:  # type: ignore[no-untyped-def]
    assert bank_cli("command", "Open", "--data", '{"account": "7"}')[0] == 0
    code, lines, _ = bank_cli("command", "Deposit", "--data", '{"account": "7", "amount": 40}')
    assert code == 0
    (event,) = lines
    assert (event["stream_id"], event["version"], event["type"]) == ("account-7", 1, "Deposited")
    assert event["metadata"]["command"] == "Deposit"
    code, audit, _ = bank_cli("read", "--stream", "$audit")
    assert [(line["type"], line["data"]["command"]) for line in audit] == [
        ("CommandExecuted", "Open"),
        ("CommandExecuted", "Deposit"),
    ]
    assert audit[1]["data"]["event_ids"] == [event["event_id"]]
    assert audit[1]["data"]["data"] == {"account": "7", "amount": 40}


def test_command_dry_run_and_idempotency_key(bank_cli) -> None:  # type: ignore[no-untyped-def]
    bank_cli("command", "Open", "--data", '{"account": "7"}')
    code, lines, _ = bank_cli(
        "command", "Deposit", "--data", '{"account": "7", "amount": 5}', "--dry-run"
    )
    assert code == 0 and lines[0]["dry_run"] is True and lines[0]["expected_version"] == "0"
    deposit = ("command", "Deposit", "--data", '{"account": "7", "amount": 5}')
    first = bank_cli(*deposit, "--idempotency-key", "k1")[1]
    again = bank_cli(*deposit, "--idempotency-key", "k1")[1]
    assert first == again
    code, lines, _ = bank_cli("read", "--stream", "account-7")
    assert [line["type"] for line in lines] == ["Opened", "Deposited"]


def test_a_rejected_command_exits_4_with_the_reason(bank_cli) -> None:  # type: ignore[no-untyped-def]
    code, lines, err = bank_cli("command", "Deposit", "--data", '{"account": "9", "amount": 5}')
    assert (code, lines, err) == (4, [], "eventscope: no such account\n")
    assert bank_cli("read")[1] == []


def test_a_command_that_keeps_conflicting_exits_3(  # type: ignore[no-untyped-def]
    bank_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank_cli("command", "Open", "--data", '{"account": "7"}')
    monkeypatch.setenv("BANK_ALWAYS_CONFLICT", bank_cli.store)
    code, _, err = bank_cli("command", "Deposit", "--data", '{"account": "7", "amount": 5}')
    assert code == 3 and "wrong expected version" in err


def test_unknown_command_and_bad_data(bank_cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = bank_cli("command", "Transfer")
    assert code == 1 and "unknown command 'Transfer'" in err
    assert bank_cli("command", "Open", "--data", "[1]")[0] == 2


def test_replay_prints_the_read_model_at_a_point(bank_cli) -> None:  # type: ignore[no-untyped-def]
    bank_cli("command", "Open", "--data", '{"account": "7"}')
    bank_cli("command", "Deposit", "--data", '{"account": "7", "amount": 40}')
    bank_cli("command", "Deposit", "--data", '{"account": "7", "amount": 2}')
    assert bank_cli("replay", "balances:1")[1] == [{"7": {"balance": 42}}]
    # Each command commits with its $audit event: the first deposit is at position 3.
    assert bank_cli("replay", "balances:1@3")[1] == [{"7": {"balance": 40}}]
    assert bank_cli("replay", "balances:1", "--key", "8")[1] == [{}]
    code, _, err = bank_cli("replay", "balances:7")
    assert (
        code == 1 and err == "eventscope: projection 'balances' has no version 7 (loaded: 1, 2)\n"
    )
    code, _, err = bank_cli("replay", "balances@noon")
    assert code == 1 and "point 'noon'" in err
