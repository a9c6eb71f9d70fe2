"""Other tools' stores are chosen by the URL's prefix and are never opened writable."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SourceReadOnly, StoreReadOnly, StoreUnusable
from core.sources import is_foreign
from core.store import open_store


@pytest.mark.parametrize(
    ("location", "foreign"),
    [
        ("eventsourcing+sqlite:///app.db", True),
        ("eventsourcing+sqlite:////srv/app.db", True),
        ("eventsourcing+postgresql://user@host/db?app=dogs", True),
        ("messagedb+postgresql://user@host/db", True),
        ("postgresql+psycopg://user@host/db", False),
        ("shop.db", False),
        ("eventsourcing.db", False),
        ("/tmp/eventsourcing+sqlite.db", False),
    ],
)
def test_the_url_prefix_names_the_tool(location: str, foreign: bool) -> None:
    assert is_foreign(location) is foreign


@pytest.mark.parametrize(
    "url", ["eventsourcing+sqlite:///{path}", "messagedb+postgresql://nobody@127.0.0.1:1/x"]
)
def test_a_writable_open_is_refused_in_one_line_and_touches_nothing(
    tmp_path: Path, url: str
) -> None:
    path = tmp_path / "app.db"
    with pytest.raises(SourceReadOnly) as refused:
        open_store(url.format(path=path), read_only=False)

    message = str(refused.value)
    assert "\n" not in message and "only reads it" in message and "import-from" in message
    assert isinstance(refused.value, StoreUnusable)  # the CLI's exit code 5
    assert isinstance(refused.value, StoreReadOnly)
    assert not path.exists()
