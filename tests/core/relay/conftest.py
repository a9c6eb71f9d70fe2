"""Fixtures of the relay's tests: a seeded store, a JetStream stream of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.relay.brokers import delete_stream, seed


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    seed(path, 3_000)
    return path


@pytest.fixture
def jetstream() -> Iterator[tuple[str, str]]:
    """A JetStream stream of its own (name, subject template), deleted afterwards."""
    name = f"T{uuid.uuid4().hex[:10].upper()}"
    yield name, f"t{name.lower()}.{{category}}.{{type}}"
    asyncio.run(delete_stream(name))
