"""Read models of another tool's store live in a sidecar Eventscope store (issue 17,
point 3): projections, history, time travel and compare over a real Message DB that is
never written, through the CLI, with a plugin file loaded from disk."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from console.cli import main
from core.sources import default_models_location
from core.store import SqlEventStore
from core.workspace import Workspace
from tests.core.sources.messagedb import connect, message_db_database, source_url, write_message

PLUGIN = textwrap.dedent(
    """
    from core.api import Projection, handles


    class Balances(Projection):
        name = "balances"

        @handles("Deposited")
        def deposited(self, view, event):
            key = event.stream_id
            doc = view.get(key) or {"balance": 0}
            doc["balance"] += event.data["amount"]
            view.put(key, doc)

        @handles("Withdrawn")
        def withdrawn(self, view, event):
            key = event.stream_id
            doc = view.get(key) or {"balance": 0}
            doc["balance"] -= event.data["amount"]
            view.put(key, doc)
    """
)


@dataclass
class Bank:
    url: str
    server: Any
    database: str
    positions: list[int]


@pytest.fixture(scope="module")
def bank() -> Iterator[Bank]:
    with message_db_database() as (server, database):
        with connect(server, database, autocommit=True) as conn:
            write_message(conn, "account-1", "Deposited", '{"amount": 100}')
            write_message(conn, "account-2", "Deposited", '{"amount": 50}')
            with conn.transaction(force_rollback=True):  # a gap in global_position
                write_message(conn, "account-1", "Deposited", '{"amount": 999}')
            write_message(conn, "account-1", "Withdrawn", '{"amount": 30}')
            write_message(conn, "account-2", "Deposited", '{"amount": 5}')
            rows = conn.execute("SELECT global_position FROM message_store.messages ORDER BY 1")
            positions = [row[0] for row in rows.fetchall()]
        yield Bank(source_url(server, database), server, database, positions)


def _messages(bank: Bank) -> list[tuple[Any, ...]]:
    with connect(bank.server, bank.database) as conn:
        return conn.execute("SELECT * FROM message_store.messages ORDER BY 1").fetchall()


@pytest.fixture
def eventscope(bank: Bank, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> Any:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "bank.py").write_text(PLUGIN)

    def run(*args: str, models: Path | None = tmp_path / "models.db") -> tuple[int, list[Any]]:
        options = ["--store", bank.url, "--plugins", str(plugins)]
        if models is not None:
            options += ["--models", str(models)]
        with pytest.raises(SystemExit) as exited:
            main([*options, *args])
        out = capsysbinary.readouterr().out
        return int(exited.value.code or 0), [orjson.loads(line) for line in out.splitlines()]

    return run


def test_projections_run_into_the_sidecar_and_time_travel_over_it(
    bank: Bank, eventscope: Any, tmp_path: Path
) -> None:
    before = _messages(bank)
    code, listed = eventscope("projections", "list")
    (never,) = [s for s in listed if s["projection"] == "balances:1"]
    assert never["head"] == bank.positions[-1] == 5
    assert never["lag"] == len(bank.positions) == 4  # events behind, not positions

    code, _ = eventscope("projections", "run", "balances:1")
    assert code == 0
    code, listed = eventscope("projections", "list")
    (status,) = [s for s in listed if s["projection"] == "balances:1"]
    assert status["state"] == "caught up" and status["checkpoint"] == bank.positions[-1]

    code, (head,) = eventscope("replay", "balances:1")
    assert head == {"account-1": {"balance": 70}, "account-2": {"balance": 55}}
    at_second = bank.positions[1]
    code, (earlier,) = eventscope("replay", f"balances:1@{at_second}")
    assert earlier == {"account-1": {"balance": 100}, "account-2": {"balance": 50}}
    code, (diff,) = eventscope("diff", f"balances:1@{at_second}", "balances:1")
    assert set(diff["changed"]) == {"account-1", "account-2"} and diff["added"] == {}
    code, (stepped,) = eventscope("step", f"balances:1@{bank.positions[2]}")
    assert [(c["key"], c["before"], c["after"]) for c in stepped["changes"]] == [
        ("account-1", {"balance": 100}, {"balance": 70})
    ]
    code, lineage = eventscope("lineage", "balances:1", "account-1")
    assert [change["position"] for change in lineage] == [bank.positions[0], bank.positions[2]]

    assert _messages(bank) == before  # the source was never written
    with SqlEventStore.open(tmp_path / "models.db", read_only=True) as models:
        assert models.head_position() == 0  # read models only: no event copied there


def test_operator_actions_are_audited_in_the_sidecar(
    bank: Bank, eventscope: Any, tmp_path: Path
) -> None:
    eventscope("projections", "run", "balances:1")

    code, _ = eventscope("projections", "reset", "balances:1")

    assert code == 0
    with Workspace.open(str(tmp_path / "models.db")) as models:
        (audit,) = list(models.events.read_stream("$audit"))
    assert audit.type == "ProjectionReset" and audit.data["projection"] == "balances:1"


def test_without_models_the_sidecar_is_a_file_named_after_the_source(
    bank: Bank, eventscope: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    sidecar = default_models_location(bank.url)
    assert sidecar.is_relative_to(tmp_path / "data" / "eventscope" / "models")
    assert bank.database in sidecar.name

    code, (replayed,) = eventscope("replay", "balances:1", models=None)  # read-only: a fold
    assert code == 0 and replayed["account-2"] == {"balance": 55}
    assert not sidecar.exists()  # a read-only open creates nothing

    code, _ = eventscope("projections", "run", models=None)
    assert code == 0 and sidecar.exists()


def test_versions_rebuilt_in_processes_write_the_same_sidecar(bank: Bank, eventscope: Any) -> None:
    code, lines = eventscope(
        "projections", "rebuild", "balances:1", "order_summary:1", "--jobs", "2"
    )

    assert code == 0, lines
    code, listed = eventscope("projections", "list")
    states = {s["projection"]: (s["state"], s["checkpoint"]) for s in listed}
    assert states["balances:1"] == ("caught up", bank.positions[-1])
    assert states["order_summary:1"] == ("caught up", bank.positions[-1])
    code, (head,) = eventscope("replay", "balances:1")
    assert head == {"account-1": {"balance": 70}, "account-2": {"balance": 55}}
