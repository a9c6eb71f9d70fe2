"""Executed commands commit with their ``$audit`` event, on every backend: both or neither.

Rejections, failures and dry runs write nothing at all, no audit either (nothing changed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.commands.definition import Rejected
from core.errors import StoreError
from core.events import NewEvent, RecordedEvent
from core.registry import Registry, UnknownCommand
from core.services.commands import COMMAND_AUDIT_TYPE
from core.services.writing import AUDIT_STREAM, operator_name
from core.store import EventFilter
from core.workspace import Workspace
from tests.conftest import StoreFactory
from tests.core.services.test_audited_actions import refuse_audit_events


@pytest.fixture
def bank(make_store: StoreFactory, bank_registry: Registry) -> Iterator[Workspace]:
    workspace = Workspace(make_store(), bank_registry)
    workspace.commands.execute("Open", {"account": "7"})
    workspace.commands.execute("Deposit", {"account": "7", "amount": 100})
    yield workspace
    workspace.close()


def audits(workspace: Workspace) -> list[RecordedEvent]:
    return list(workspace.events.read(EventFilter(stream_id=AUDIT_STREAM)))


def everything(workspace: Workspace) -> list[tuple[str, int, str]]:
    return [(e.stream_id, e.version, e.type) for e in workspace.handle.store.read_all()]


def test_an_execution_commits_its_events_with_its_audit_record(bank: Workspace) -> None:
    result = bank.commands.execute("Withdraw", {"account": "7", "amount": 30})
    record = audits(bank)[-1]
    assert record == result.audit
    assert record.type == COMMAND_AUDIT_TYPE
    assert record.data == {
        "command": "Withdraw",
        "data": {"account": "7", "amount": 30},
        "stream": "account-7",
        "event_ids": [event.event_id for event in result.events],
        "positions": [event.position for event in result.events],
        "duplicate": False,
        "user": operator_name(),
    }
    # One commit: the audit record comes right after the two events it names.
    assert record.position == result.events[-1].position + 1
    assert [e.data["command"] for e in audits(bank)] == ["Open", "Deposit", "Withdraw"]


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("Withdraw", {"account": "7", "amount": 500}, Rejected),  # the handler refuses
        ("Deposit", {"account": "7", "amount": "5"}, Rejected),  # the field check refuses
        ("Transfer", {}, UnknownCommand),
    ],
)
def test_a_refused_command_writes_nothing_not_even_an_audit_record(
    bank: Workspace, name: str, data: dict[str, Any], error: type[Exception]
) -> None:
    before = everything(bank)
    with pytest.raises(error):
        bank.commands.execute(name, data)
    assert everything(bank) == before


def test_a_dry_run_writes_nothing_not_even_an_audit_record(bank: Workspace) -> None:
    before = everything(bank)
    result = bank.commands.execute("Withdraw", {"account": "7", "amount": 30}, dry_run=True)
    assert len(result.proposed) == 2 and result.audit is None
    assert everything(bank) == before


def test_a_repeated_key_appends_no_events_but_is_audited_as_a_duplicate(bank: Workspace) -> None:
    data = {"account": "7", "amount": 30}
    first = bank.commands.execute("Withdraw", data, idempotency_key="req-1")
    again = bank.commands.execute("Withdraw", data, idempotency_key="req-1")
    assert again.duplicate and again.events == first.events
    assert [t for s, _, t in everything(bank) if s == "account-7"] == [
        "Opened",
        "Deposited",
        "Withdrawn",
        "BalanceChecked",
    ]
    *_, first_record, again_record = audits(bank)
    assert (first_record.data["duplicate"], again_record.data["duplicate"]) == (False, True)
    assert again_record.data["idempotency_key"] == first_record.data["idempotency_key"] == "req-1"
    assert again_record.data["event_ids"] == first_record.data["event_ids"]


def test_a_retried_command_is_audited_once_with_the_events_it_finally_appended(
    bank: Workspace, make_store: StoreFactory
) -> None:
    other = make_store()
    handler = bank.registry.command("Deposit").handler
    calls: list[dict[str, Any]] = []

    def another_writer(data: dict[str, Any]) -> None:
        calls.append(data)
        if len(calls) == 1:  # between the bus's read and its append, once
            other.append_to_stream("account-7", [NewEvent("Noted", {})])

    handler.__globals__["interloper"] = another_writer
    try:
        result = bank.commands.execute("Deposit", {"account": "7", "amount": 5})
    finally:
        handler.__globals__["interloper"] = None
    assert result.attempts == 2
    records = [e for e in audits(bank) if e.data["command"] == "Deposit"]
    assert len(records) == 2  # the fixture's deposit and this one, not one per attempt
    assert records[-1].data["positions"] == [result.events[0].position]
    assert result.events[0].version == 3  # after Opened, Deposited and the writer's Noted


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_when_the_audit_record_fails_the_events_are_not_committed(
    bank: Workspace, location: str
) -> None:
    before = everything(bank)
    refuse_audit_events(location)
    with pytest.raises(StoreError, match="the audit log refused it"):
        bank.commands.execute("Withdraw", {"account": "7", "amount": 30})
    assert everything(bank) == before


def test_a_command_that_decides_nothing_is_still_audited(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "quiet"
    folder.mkdir()
    (folder / "quiet.py").write_text(
        "from core.api import command\n\n\n"
        '@command("Ping", stream="ping-{name}", fields={"name": str})\n'
        "def ping(state, data):\n"
        "    return []\n"
    )
    registry = Registry.discover([folder], environ={}, builtin=False, entry_points=False)
    with Workspace(make_store(), registry) as workspace:
        result = workspace.commands.execute("Ping", {"name": "a"})
        assert result.events == [] and result.audit is not None
        assert [(e.stream_id, e.type) for e in workspace.handle.store.read_all()] == [
            (AUDIT_STREAM, COMMAND_AUDIT_TYPE)
        ]
        assert result.audit.data["event_ids"] == [] and result.audit.data["command"] == "Ping"
