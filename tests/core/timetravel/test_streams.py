"""One stream through time: the aggregate state a plugin folds, at any version."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.events import NewEvent
from core.registry import Registry
from core.store import SqlEventStore
from core.timetravel.streams import jsonable
from core.workspace import Workspace


def test_the_state_of_a_stream_at_every_version(tmp_path: Path, bank_registry: Registry) -> None:
    workspace = Workspace(SqlEventStore.open(tmp_path / "bank.db"), bank_registry)
    workspace.handle.store.append_to_stream(
        "account-7",
        [
            NewEvent("Opened", {"account": "7"}),
            NewEvent("Deposited", {"account": "7", "amt": 100}, {"schema_version": 1}),
            NewEvent("Deposited", {"account": "7", "amount": 50}, {"schema_version": 2}),
            NewEvent("Withdrawn", {"account": "7", "amount": 30}),
        ],
    )
    balances = [
        workspace.timetravel.stream_state("account-7", version).state["balance"]
        for version in range(4)
    ]
    assert balances == [0, 100, 150, 120]  # the schema-1 deposit was upcast first
    last = workspace.timetravel.stream_state("account-7")
    assert (last.version, last.evolver, last.state) == (
        3,
        "account",
        {"opened": True, "balance": 120},
    )
    assert workspace.timetravel.stream_state("account-7", 99).version == 3  # past the end: the last
    assert workspace.timetravel.stream_state("account-8").to_dict() == {
        "stream_id": "account-8",
        "version": None,
        "evolver": "account",
        "state": {"opened": False, "balance": 0},
    }
    workspace.close()


class Status(enum.Enum):
    OPEN = "open"


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Order:
    status: Status
    lines: tuple[Line, ...]
    tags: frozenset[str]
    at: datetime


def test_plugin_states_become_json() -> None:
    order = Order(
        Status.OPEN, (Line("MUG", 2),), frozenset({"b", "a"}), datetime(2026, 3, 1, tzinfo=UTC)
    )
    assert jsonable(order) == {
        "status": "open",
        "lines": [{"sku": "MUG", "quantity": 2}],
        "tags": ["a", "b"],
        "at": "2026-03-01T00:00:00.000000Z",
    }
