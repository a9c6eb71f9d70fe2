"""Read-only sources over other tools' event stores (DESIGN §8), chosen by the URL.

The URL is the SQLAlchemy URL of the other tool's database with the tool prefixed:

- ``eventsourcing+sqlite:///app.db`` (a relative path), ``eventsourcing+sqlite:////srv/app.db``
  (absolute), ``eventsourcing+postgresql://user@host/db[?app=NAME]``: the Python
  ``eventsourcing`` library's recorder tables (:mod:`core.sources.eventsourcing`);
- ``messagedb+postgresql://user@host/db``: Message DB's ``message_store.messages``
  (:mod:`core.sources.messagedb`).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path
from typing import Final

from core.paths import user_data_folder
from core.sources.base import ForeignSource, read_only_error

__all__ = [
    "FOREIGN_TOOLS",
    "ForeignSource",
    "default_models_location",
    "is_foreign",
    "open_source",
    "read_only_error",
]

#: URL prefixes and the tools whose stores they name.
FOREIGN_TOOLS: Final = {
    "eventsourcing": "the eventsourcing library",
    "messagedb": "Message DB",
}
#: The source class of each tool (module, class), imported when its store is opened.
_SOURCES: Final = {
    "eventsourcing": ("core.sources.eventsourcing", "EventsourcingSource"),
    "messagedb": ("core.sources.messagedb", "MessageDbSource"),
}


def _tool(location: str) -> str | None:
    scheme, separator, _ = location.partition("://")
    if not separator or "+" not in scheme:
        return None
    tool = scheme.split("+", 1)[0].lower()
    return tool if tool in FOREIGN_TOOLS else None


def is_foreign(location: str) -> bool:
    """Whether ``location`` names another tool's store (by its URL's prefix)."""
    return _tool(str(location)) is not None


def open_source(location: str, *, read_only: bool = True) -> ForeignSource:
    """Open another tool's store for reading.

    Raises:
        SourceReadOnly: asked for a writable open (nothing is opened).
        StoreUnusable: the database cannot be reached, or holds no such tables.
    """
    tool = _tool(location)
    if tool is None:
        raise ValueError(f"{location!r} names no foreign store")
    if not read_only:
        from core.store.sql.engines import display_location

        raise read_only_error(display_location(location), FOREIGN_TOOLS[tool])
    module, name = _SOURCES[tool]
    source: type[ForeignSource] = getattr(importlib.import_module(module), name)
    return source.open(location)


def default_models_location(location: str) -> Path:
    """Where the read models of the source at ``location`` live unless ``--models`` says:
    ``models/<the source, as a file name>-<hash>.db`` in the user data folder (the hash
    tells apart sources whose names read alike; a password is not part of the name)."""
    from core.store.sql.engines import display_location

    shown = display_location(location)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", shown).strip("-.")[:80]
    digest = hashlib.sha256(shown.encode()).hexdigest()[:10]
    return user_data_folder() / "models" / f"{readable}-{digest}.db"
