"""Stores that cannot be used: exit 5, one clear line, and the file left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.events import NewEvent
from core.store import SqlEventStore

READ_COMMANDS = [["read"], ["streams"], ["export"], ["check"]]
WRITE_COMMANDS = [["append", "s-1", "A"], ["import", "-"]]


def eventscope(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", store, *args],
        capture_output=True,
        text=True,
        input='{"stream_id": "s-1", "type": "A"}\n',
        timeout=60,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 5, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventscope: "), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_a_missing_file_is_refused_and_not_created(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nowhere.db"
    assert_refused(eventscope(str(missing), *command), "no such store")
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("command", READ_COMMANDS + WRITE_COMMANDS)
def test_random_bytes_are_refused_untouched(tmp_path: Path, command: list[str]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(64 * 1024))
    before = digest(junk)
    assert_refused(eventscope(str(junk), *command), "not a SQLite database")
    assert digest(junk) == before


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("real") / "real.db"
    store = SqlEventStore.open(path)
    for n in range(40):
        store.append_to_stream(f"order-{n}", [NewEvent("Placed", {"pad": "x" * 500})] * 1)
        store.append_to_stream(
            f"order-{n}", [NewEvent("Line", {"n": i, "pad": "y" * 300}) for i in range(50)]
        )
    store.close()  # the last close checkpoints the WAL into the file
    return path


@pytest.mark.parametrize("command", READ_COMMANDS + WRITE_COMMANDS)
def test_a_truncated_file_is_refused_untouched(
    tmp_path: Path, real_store: Path, command: list[str]
) -> None:
    truncated = tmp_path / "truncated.db"
    data = real_store.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    before = digest(truncated)
    assert_refused(eventscope(str(truncated), *command), "truncated")
    assert digest(truncated) == before


@pytest.mark.parametrize("command", READ_COMMANDS + WRITE_COMMANDS)
def test_a_newer_schema_is_refused_untouched(
    tmp_path: Path, real_store: Path, command: list[str]
) -> None:
    newer = tmp_path / "newer.db"
    newer.write_bytes(real_store.read_bytes())
    with sqlite3.connect(newer) as raw:
        raw.execute("UPDATE eventscope_meta SET value = '99' WHERE key = 'schema_version'")
    raw.close()
    before = digest(newer)
    assert_refused(eventscope(str(newer), *command), "schema 99", "newer")
    assert digest(newer) == before


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    raw.close()
    before = digest(foreign)
    for command in (["read"], ["append", "s-1", "A"]):
        assert_refused(eventscope(str(foreign), *command), "not an Eventscope store")
    assert digest(foreign) == before


def test_an_unreachable_server_exits_5(tmp_path: Path) -> None:
    result = eventscope("postgresql+psycopg://nobody@127.0.0.1:9/none", "read")
    assert_refused(result)


def test_a_healthy_store_still_reads_after_all_that(real_store: Path) -> None:
    result = eventscope(str(real_store), "check")
    assert result.returncode == 0, result.stderr
    assert '"ok":true' in result.stdout


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_inspecting_a_store_never_changes_its_file(
    tmp_path: Path, real_store: Path, command: list[str]
) -> None:
    copy = tmp_path / "inspected.db"
    copy.write_bytes(real_store.read_bytes())
    before = digest(copy)
    result = eventscope(str(copy), *command)
    assert result.returncode == 0, result.stderr
    assert digest(copy) == before


def test_a_damaged_event_row_is_refused_by_read_and_named_by_check(
    tmp_path: Path, real_store: Path
) -> None:
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(real_store.read_bytes())

    def damage(statement: str) -> None:
        with sqlite3.connect(damaged) as raw:
            raw.execute(statement)
        raw.close()

    # What flipped bytes can do: a payload that ends early, then one no longer UTF-8.
    damage("""UPDATE events SET data = '{"n": 1' WHERE position = 7""")
    before = digest(damaged)
    for command in (["read"], ["export"]):
        assert_refused(eventscope(str(damaged), *command), "position 7", "damaged")
    assert digest(damaged) == before
    damage("UPDATE events SET data = CAST(X'7B22FF227D' AS TEXT) WHERE position = 9")
    before = digest(damaged)
    assert_refused(eventscope(str(damaged), "read"), "position 9", "eventscope check")
    result = eventscope(str(damaged), "check")
    assert result.returncode == 1, result.stderr
    assert '"mismatched_positions":[7,9]' in result.stdout
    assert digest(damaged) == before


def test_a_damaged_value_holding_line_breaks_is_still_refused_in_one_line(
    tmp_path: Path, real_store: Path
) -> None:
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(real_store.read_bytes())
    # Flipped bytes can turn a number into text that is not UTF-8 and holds a vertical
    # tab and a newline: SQLite's error quotes that text.
    with sqlite3.connect(damaged) as raw:
        raw.execute("UPDATE events SET version = CAST(X'060B0A80' AS TEXT) WHERE position = 11")
    raw.close()
    for command in (["read"], ["export"]):
        result = eventscope(str(damaged), *command)
        assert_refused(result, "position 11", "damaged")
        assert "\\x0b\\n" in result.stderr  # shown as escapes, not as line breaks
