"""Read-model references and replaying a projection to a point (the fold fallback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.events import NewEvent, from_micros
from core.registry import Registry, UnknownProjection
from core.store import SqlEventStore
from core.timetravel.reference import InvalidReference, Point, ReadModelRef
from core.workspace import Workspace

BASE = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("balances", ReadModelRef("balances")),
        ("balances:2", ReadModelRef("balances", 2)),
        ("balances@1500", ReadModelRef("balances", None, Point("position", position=1500))),
        ("balances:1@head", ReadModelRef("balances", 1)),
        (
            "balances@2026-03-01T10:00:00Z",
            ReadModelRef(
                "balances", None, Point("time", time=datetime(2026, 3, 1, 10, tzinfo=UTC))
            ),
        ),
        (
            "order_summary:2@2026-03-01T12:00:00+02:00",
            ReadModelRef(
                "order_summary", 2, Point("time", time=datetime(2026, 3, 1, 10, tzinfo=UTC))
            ),
        ),
    ],
)
def test_references_parse(text: str, expected: ReadModelRef) -> None:
    assert ReadModelRef.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("balances:x", "version 'x'"),
        ("balances:0", "version '0'"),
        ("balances@yesterday", "point 'yesterday'"),
        ("balances@2026-03-01T10:00:00", "no zone"),
        ("bal ances", "not a word"),
        (":2", "NAME[:VERSION][@POINT]"),
    ],
)
def test_bad_references_name_the_bad_part(text: str, complaint: str) -> None:
    with pytest.raises(InvalidReference, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        ReadModelRef.parse(text)


def test_reference_round_trips_as_text() -> None:
    for text in ("balances", "balances:2", "balances:2@15", "b@2026-03-01T10:00:00.000000Z"):
        assert str(ReadModelRef.parse(text)) == text


@pytest.fixture
def bank(tmp_path: Path, bank_registry: Registry) -> Iterator[Workspace]:
    registry = bank_registry
    now = [BASE]
    store = SqlEventStore.open(tmp_path / "bank.db", clock=lambda: now[0])
    for minute, (account, kind, amount) in enumerate(
        [
            ("a", "Deposited", 100),
            ("b", "Deposited", 50),
            ("a", "Withdrawn", 30),
            ("b", "Deposited", 25),
        ]
    ):
        now[0] = BASE + minute * 60_000_000
        store.append_to_stream(
            f"account-{account}",
            [NewEvent(kind, {"account": account, "amount": amount}, {"schema_version": 2})],
        )
    workspace = Workspace(store, registry)
    yield workspace
    workspace.close()


def test_replay_at_head_positions_and_times(bank: Workspace) -> None:
    assert bank.timetravel.replay("balances:1").documents == {
        "a": {"balance": 70},
        "b": {"balance": 75},
    }
    assert bank.timetravel.replay("balances:1@2").documents == {
        "a": {"balance": 100},
        "b": {"balance": 50},
    }
    assert bank.timetravel.replay("balances:1@0").documents == {}
    assert bank.timetravel.replay("balances:1@999").position == 4  # past the head is the head
    at = from_micros(BASE + 60_000_000).isoformat()
    assert bank.timetravel.replay(f"balances:1@{at}").position == 2
    before = from_micros(BASE - 1).isoformat()
    assert bank.timetravel.replay(f"balances:1@{before}").documents == {}


def test_replay_picks_the_newest_version_by_default(bank: Workspace) -> None:
    replayed = bank.timetravel.replay("balances@3")
    assert replayed.projection == "balances:2"
    assert replayed.documents == {"a": {"euros": 0.7}, "b": {"euros": 0.5}}


def test_replay_of_an_unknown_projection_or_version(bank: Workspace) -> None:
    with pytest.raises(UnknownProjection, match="unknown projection 'ledger'"):
        bank.timetravel.replay("ledger")
    with pytest.raises(UnknownProjection, match=r"no version 9 \(loaded: 1, 2\)"):
        bank.timetravel.replay("balances:9")


def test_replay_upcasts_old_events(bank: Workspace) -> None:
    bank.handle._opened.store.append_to_stream(
        "account-c", [NewEvent("Deposited", {"account": "c", "amt": 7}, {"schema_version": 1})]
    )
    replayed = bank.timetravel.replay("balances:1")
    assert replayed.documents["c"] == {"balance": 7}
    assert replayed.upcast_failures == ()


def test_a_failed_upcast_is_reported_with_its_position_and_the_replay_goes_on(
    bank: Workspace,
) -> None:
    bank.handle._opened.store.append_to_stream(
        "account-d", [NewEvent("Deposited", {"account": "d"}, {"schema_version": 1})]
    )
    bank.handle._opened.store.append_to_stream(
        "account-e", [NewEvent("Deposited", {"account": "e", "amt": 1}, {"schema_version": 1})]
    )
    replayed = bank.timetravel.replay("deposit_count")
    (failure,) = replayed.upcast_failures
    assert "Deposited:1->2" in failure and "position 5" in failure and "KeyError" in failure
    assert replayed.documents == {
        "a": {"deposits": 1}, "b": {"deposits": 2}, "d": {"deposits": 1}, "e": {"deposits": 1},
    }  # fmt: skip


def test_an_inspector_sees_raw_and_upcast_payloads(bank: Workspace) -> None:
    old = bank.handle._opened.store.append_to_stream(
        "account-c", [NewEvent("Deposited", {"account": "c", "amt": 7}, {"schema_version": 1})]
    ).events[0]
    view = bank.events.upcast(old)
    assert view.changed and view.failure is None
    assert view.raw.data == {"account": "c", "amt": 7}
    assert view.current.data == {"account": "c", "amount": 7}
    assert view.current.metadata["schema_version"] == 2
    broken = bank.handle._opened.store.append_to_stream(
        "account-d", [NewEvent("Deposited", {"account": "d"}, {"schema_version": 1})]
    ).events[0]
    failed = bank.events.upcast(broken)
    assert not failed.changed and failed.raw.data == {"account": "d"}
    assert failed.failure is not None and f"position {broken.position}" in failed.failure
    current = next(iter(bank.handle._opened.store.read_all()))
    assert not bank.events.upcast(current).changed  # already schema 2
