"""Fixtures shared by the whole suite: fresh stores on every backend."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.registry import Registry
from core.store import EventStore, InMemoryEventStore, SqlEventStore

PG_URL = os.environ.get("EVENTSCOPE_TEST_PG_URL")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL server named by EVENTSCOPE_TEST_PG_URL (skips when unset)."""
    if not PG_URL:
        pytest.skip("EVENTSCOPE_TEST_PG_URL is not set")
    return PG_URL


@pytest.fixture
def pg_location(pg_admin_url: str) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


StoreFactory = Callable[..., EventStore]


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each store contract test runs once per backend."""
    return str(request.param)


@pytest.fixture
def location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the backend's store lives: a file path or a URL (memory: a name)."""
    if backend == "sqlite":
        return str(tmp_path / "store.db")
    if backend == "postgres":
        return str(request.getfixturevalue("pg_location"))
    return ":memory:"


@pytest.fixture
def make_store(backend: str, location: str) -> Iterator[StoreFactory]:
    """Open stores on the backend under test (all of them are closed afterwards).

    Keyword arguments go to ``SqlEventStore.open`` (e.g. ``read_only``, ``clock``).
    """
    opened: list[EventStore] = []
    memory: dict[str, InMemoryEventStore] = {}

    def factory(**options: object) -> EventStore:
        if backend == "memory":
            if "memory" not in memory:
                memory["memory"] = InMemoryEventStore(**options)  # type: ignore[arg-type]
            return memory["memory"]
        store = SqlEventStore.open(location, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> EventStore:
    """A fresh, writable, empty store on the backend under test."""
    return make_store()


BANK_PLUGIN = Path(__file__).parent / "core" / "commands" / "bank_plugin.py"


@pytest.fixture
def bank_plugins(tmp_path: Path) -> Path:
    """A folder holding the test bank plugin as ``bank.py``, loaded from disk like any other."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    shutil.copy(BANK_PLUGIN, folder / "bank.py")
    return folder


@pytest.fixture
def bank_registry(bank_plugins: Path) -> Registry:
    """The registry of the bank plugin alone (no shipped plugins, no entry points)."""
    registry = Registry.discover([bank_plugins], environ={}, builtin=False, entry_points=False)
    assert not registry.failed, registry.failed
    return registry


FAULTY_PLUGIN = Path(__file__).parent / "core" / "projections" / "faulty_plugin.py"


@pytest.fixture
def faulty_registry(tmp_path: Path) -> Registry:
    """The projections of ``faulty_plugin.py`` (ledger, fragile, sluggish), loaded from
    disk like any plugin, and nothing else."""
    folder = tmp_path / "faulty-plugins"
    folder.mkdir()
    shutil.copy(FAULTY_PLUGIN, folder / "faulty.py")
    registry = Registry.discover([folder], environ={}, builtin=False, entry_points=False)
    assert not registry.failed, registry.failed
    return registry
