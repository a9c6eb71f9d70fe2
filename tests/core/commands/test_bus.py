"""The command bus over a real SQLite store and a plugin file loaded from disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.commands.definition import Rejected
from core.errors import WrongExpectedVersion
from core.events import NO_STREAM, ExpectedVersion, NewEvent
from core.registry import Registry, UnknownCommand
from core.services.writing import AUDIT_STREAM
from core.store import SqlEventStore
from core.workspace import Workspace


@pytest.fixture
def bank(tmp_path: Path, bank_registry: Registry) -> Iterator[Workspace]:
    workspace = Workspace(SqlEventStore.open(tmp_path / "bank.db"), bank_registry)
    yield workspace
    workspace.close()


def handler_globals(workspace: Workspace, name: str) -> dict[str, Any]:
    return workspace.registry.command(name).handler.__globals__


def log(workspace: Workspace) -> list[tuple[str, int, str]]:
    """The log without the audit trail (tests/core/commands/test_audit.py checks that)."""
    return [
        (e.stream_id, e.version, e.type)
        for e in workspace.handle.store.read_all()
        if e.stream_id != AUDIT_STREAM
    ]


def test_a_command_appends_what_it_decides_with_its_metadata(bank: Workspace) -> None:
    opened = bank.commands.execute("Open", {"account": "7"})
    assert opened.expected_version == NO_STREAM
    deposited = bank.commands.execute("Deposit", {"account": "7", "amount": 250})
    assert deposited.expected_version == ExpectedVersion.exact(0)
    (event,) = deposited.events
    assert (event.stream_id, event.version, event.type) == ("account-7", 1, "Deposited")
    assert event.data == {"account": "7", "amount": 250}
    meta = event.metadata
    assert meta["command"] == "Deposit"
    assert meta["correlation_id"] == meta["causation_id"] == meta["command_id"]
    assert meta["schema_version"] == 2  # the Deposited upcaster makes 2 the current schema
    assert log(bank) == [("account-7", 0, "Opened"), ("account-7", 1, "Deposited")]


def test_given_correlation_and_causation_are_stamped(bank: Workspace) -> None:
    result = bank.commands.execute(
        "Open", {"account": "1"}, correlation_id="flow-9", causation_id="event-3"
    )
    assert result.events[0].metadata["correlation_id"] == "flow-9"
    assert result.events[0].metadata["causation_id"] == "event-3"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("Deposit", {"account": "7", "amount": -5}, "amount must be positive"),
        ("Deposit", {"account": "8", "amount": 5}, "no such account"),
        ("Open", {"account": "7"}, "the account is already open"),
        ("Withdraw", {"account": "7", "amount": 101}, "insufficient funds: balance 100"),
        ("Deposit", {"account": "7", "amount": "5"}, "amount: must be int, not str"),
        ("Deposit", {"account": "7"}, "amount: required"),
        ("Deposit", {"account": "7", "amount": 1, "memo": "x"}, "unknown field(s): memo"),
        ("Deposit", {"account": "7", "amount": True}, "amount: must be int, not bool"),
    ],
)
def test_a_rejected_command_leaves_the_store_untouched(
    bank: Workspace, name: str, data: dict[str, Any], reason: str
) -> None:
    bank.commands.execute("Open", {"account": "7"})
    bank.commands.execute("Deposit", {"account": "7", "amount": 100})
    before = list(bank.events.export_lines())
    with pytest.raises(Rejected) as caught:
        bank.commands.execute(name, data)
    assert caught.value.reason == reason
    assert list(bank.events.export_lines()) == before


def test_an_unknown_command(bank: Workspace) -> None:
    with pytest.raises(UnknownCommand, match="'Transfer'"):
        bank.commands.execute("Transfer", {})


def test_a_dry_run_decides_but_appends_nothing(bank: Workspace, tmp_path: Path) -> None:
    bank.commands.execute("Open", {"account": "7"})
    bank.commands.execute("Deposit", {"account": "7", "amount": 100})
    reader = Workspace(SqlEventStore.open(tmp_path / "bank.db", read_only=True), bank.registry)
    try:
        result = reader.commands.execute("Withdraw", {"account": "7", "amount": 30}, dry_run=True)
    finally:
        reader.close()
    assert result.dry_run and result.events == []
    assert [(e.type, e.data) for e in result.proposed] == [
        ("Withdrawn", {"account": "7", "amount": 30}),
        ("BalanceChecked", {"balance": 70}),
    ]
    assert result.expected_version == ExpectedVersion.exact(1)
    assert len(log(bank)) == 2


def test_an_idempotency_key_makes_a_retry_append_once(bank: Workspace) -> None:
    bank.commands.execute("Open", {"account": "7"})
    bank.commands.execute("Deposit", {"account": "7", "amount": 100})
    first = bank.commands.execute(
        "Withdraw", {"account": "7", "amount": 60}, idempotency_key="req-1"
    )
    again = bank.commands.execute(
        "Withdraw", {"account": "7", "amount": 60}, idempotency_key="req-1"
    )
    assert not first.duplicate and again.duplicate
    assert again.events == first.events  # the same two events, appended once
    assert [t for _, _, t in log(bank)] == ["Opened", "Deposited", "Withdrawn", "BalanceChecked"]
    # The state now holds 40: without the key, the retry would have been rejected.
    with pytest.raises(Rejected, match="balance 40"):
        bank.commands.execute("Withdraw", {"account": "7", "amount": 60}, idempotency_key="req-2")


def test_a_conflicting_writer_makes_the_command_decide_again(
    bank: Workspace, tmp_path: Path
) -> None:
    bank.commands.execute("Open", {"account": "7"})
    bank.commands.execute("Deposit", {"account": "7", "amount": 100})
    other = SqlEventStore.open(tmp_path / "bank.db")
    calls = []

    def another_writer(data: dict[str, Any]) -> None:
        calls.append(data)
        if len(calls) == 1:  # between the bus's read and its append, once
            other.append_to_stream(
                "account-7",
                [NewEvent("Deposited", {"account": "7", "amount": 5}, {"schema_version": 2})],
            )

    handler_globals(bank, "Deposit")["interloper"] = another_writer
    try:
        result = bank.commands.execute("Deposit", {"account": "7", "amount": 20})
    finally:
        handler_globals(bank, "Deposit")["interloper"] = None
        other.close()
    assert result.attempts == 2
    assert result.expected_version == ExpectedVersion.exact(2)  # decided on the new state
    assert [e.version for e in bank.handle._opened.store.read_stream("account-7")] == [0, 1, 2, 3]
    assert bank.timetravel.replay("balances:1").documents == {"7": {"balance": 125}}


def test_a_retry_decides_on_the_fresh_state_and_may_reject(bank: Workspace, tmp_path: Path) -> None:
    bank.commands.execute("Open", {"account": "7"})
    bank.commands.execute("Deposit", {"account": "7", "amount": 100})
    other = SqlEventStore.open(tmp_path / "bank.db")
    calls = []

    def withdraw_first(data: dict[str, Any]) -> None:
        calls.append(data)
        if len(calls) == 1:
            other.append_to_stream(
                "account-7", [NewEvent("Withdrawn", {"account": "7", "amount": 50})]
            )

    handler_globals(bank, "Withdraw")["interloper"] = withdraw_first
    try:
        with pytest.raises(Rejected, match="balance 50"):
            bank.commands.execute("Withdraw", {"account": "7", "amount": 80})
    finally:
        handler_globals(bank, "Withdraw")["interloper"] = None
        other.close()
    assert [t for _, _, t in log(bank)] == ["Opened", "Deposited", "Withdrawn"]


def test_conflicts_past_the_attempt_limit_surface(bank: Workspace, tmp_path: Path) -> None:
    bank.commands.execute("Open", {"account": "7"})
    other = SqlEventStore.open(tmp_path / "bank.db")

    def always(data: dict[str, Any]) -> None:
        other.append_to_stream("account-7", [NewEvent("Noted", {})])

    handler_globals(bank, "Deposit")["interloper"] = always
    try:
        with pytest.raises(WrongExpectedVersion):
            bank.commands.execute("Deposit", {"account": "7", "amount": 1})
    finally:
        handler_globals(bank, "Deposit")["interloper"] = None
        other.close()
    assert [t for _, _, t in log(bank)] == ["Opened"] + ["Noted"] * 5  # 5 attempts, no deposit


def test_old_schema_events_are_upcast_before_deciding(bank: Workspace) -> None:
    bank.commands.execute("Open", {"account": "7"})
    bank.handle._opened.store.append_to_stream(
        "account-7",
        [NewEvent("Deposited", {"account": "7", "amt": 90}, {"schema_version": 1})],
    )
    result = bank.commands.execute(
        "Withdraw", {"account": "7", "amount": 90}
    )  # needs the upcast amount
    assert result.events[1].data == {"balance": 0}
    (raw,) = [e for e in bank.handle._opened.store.read_all() if e.type == "Deposited"]
    assert raw.data == {"account": "7", "amt": 90}  # the stored payload is untouched


def test_a_command_cannot_write_a_system_stream(tmp_path: Path) -> None:
    """A stream template filled from the data must not reach ``$audit``: a plugin's
    command is no way to forge an audit record."""
    from core.commands.definition import command

    @command("Note", stream="{target}", fields={"target": str})
    def note(_state: Any, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [("WritableModeEntered", {"user": "someone else"})]

    registry = Registry()
    registry.commands["Note"] = note.__eventscope_command__  # type: ignore[attr-defined]
    workspace = Workspace(SqlEventStore.open(tmp_path / "notes.db"), registry)
    try:
        with pytest.raises(Rejected, match="'\\$audit' is a system stream"):
            workspace.commands.execute("Note", {"target": "$audit"})
        assert workspace.events.head_position() == 0
        workspace.commands.execute("Note", {"target": "notes-1"})  # any other stream is fine
        assert workspace.events.head_position() == 2  # its event and its audit record
    finally:
        workspace.close()
