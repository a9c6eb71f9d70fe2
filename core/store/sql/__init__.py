"""The SQL event store: one SQLAlchemy Core implementation for SQLite and PostgreSQL.

:class:`SqlEventStore` is the facade; its collaborators share one connections object:
``engines`` (opening, error translation), ``migrations`` (schema), ``appends``
(appends, imports, write transactions), ``reads`` (pages, counts, streams), ``search``
(the search index and filter conditions) and ``admin`` (the integrity check).
"""

from __future__ import annotations

from core.store.sql.engines import display_location
from core.store.sql.store import SqlEventStore

__all__ = ["SqlEventStore", "display_location"]
