"""SQLAlchemy Core statements compiled once for a dialect and run on the driver's cursor.

Hot paths (reading millions of events, committing a projection batch) build their
statements with Core at store-open time, compile them here once, and hand the driver
plain positional tuples: SQLAlchemy's per-call compilation and Row objects cost more
than the database's own work on small statements (see docs/benchmarks.md).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

__all__ = ["CompiledStatement", "positional"]


def positional(dialect: Dialect) -> Dialect:
    """The dialect with positional parameter markers (psycopg's ``%s`` where SQLAlchemy
    uses ``%(name)s``), so ``executemany`` hands the driver plain tuples: a dict per row
    cost a PostgreSQL batch commit about 6%."""
    if dialect.positional or not isinstance(dialect, DefaultDialect):
        return dialect
    return type(dialect)(paramstyle="format")


class CompiledStatement:
    """A Core statement compiled once for one dialect.

    Args:
        statement: any Core statement (select, insert, update, delete).
        dialect: the engine's dialect.
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        #: The SQL text with the driver's parameter markers.
        self.sql: str = compiled.string
        self._order: list[str] | None = (
            list(compiled.positiontup or ()) if compiled.positional else None
        )
        self._defaults: dict[str, Any] = dict(compiled.params)
        # The positional tuple picked in C: a generator over the names cost a small
        # read (one index probe) a microsecond more than the f-string SQL it replaced.
        self._pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None = None
        if self._order is not None:
            if len(self._order) == 1:
                only = self._order[0]
                self._pick = lambda params: (params[only],)
            elif self._order:
                self._pick = operator.itemgetter(*self._order)
            else:
                self._pick = lambda params: ()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The bound parameters' names, in the order the driver takes them."""
        return tuple(self._order if self._order is not None else self._defaults)

    def arguments(self, values: Mapping[str, Any]) -> Any:
        """The driver's arguments for ``values`` (the statement's defaults fill the rest):
        a tuple for a positional dialect, else a dict."""
        params = {**self._defaults, **values}
        if self._pick is not None:
            return self._pick(params)
        return params

    def execute(self, cursor: Any, /, **values: Any) -> Any:
        """Run it on a driver cursor; returns the cursor (for ``fetchone``/``rowcount``)."""
        cursor.execute(self.sql, self.arguments(values))
        return cursor

    def fetchall(self, cursor: Any, /, **values: Any) -> list[tuple[Any, ...]]:
        """Run it and return every row as a plain tuple."""
        cursor.execute(self.sql, self.arguments(values))
        return list(cursor.fetchall())

    def executemany(self, cursor: Any, rows: Iterable[Sequence[Any]]) -> None:
        """Run it once per row; each row holds the values in :attr:`parameter_names`
        order (no dict per row on the hot path)."""
        if self._order is not None:
            cursor.executemany(self.sql, rows)
        else:
            names = self.parameter_names
            cursor.executemany(self.sql, [dict(zip(names, row, strict=True)) for row in rows])
