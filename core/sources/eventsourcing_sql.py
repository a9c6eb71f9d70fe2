"""Where the eventsourcing library's recorder tables are, and the statements that read
them (compiled once per source)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    LargeBinary,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    not_,
    or_,
    select,
    table,
)

from core.store.compiled import CompiledStatement

__all__ = ["CANONICAL", "HEX32", "Layout", "Statements"]

HEX32: Final = re.compile(r"[0-9a-f]{32}")
CANONICAL: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# -- where the tables are -------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """One database's recorder table: its name, position column and id handling."""

    table_name: str
    position_name: str
    sqlite: bool
    uuid_ids: bool  # PostgreSQL with a uuid originator_id column

    def stream_id(self, stored: Any) -> str:
        """The stream id of a stored originator id: UUIDs (a uuid value, or the 32 hex
        digits the library writes into a text column) as canonical strings."""
        if isinstance(stored, uuid.UUID):
            return str(stored)
        text = str(stored)
        if len(text) == 32 and HEX32.fullmatch(text):
            return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        return text

    def stored_ids(self, stream_id: str) -> tuple[Any, Any] | None:
        """The stored originator ids that are ``stream_id`` (two, maybe equal), or None:
        no stored id can be it."""
        if self.uuid_ids:
            if not CANONICAL.fullmatch(stream_id):
                return None
            value = uuid.UUID(stream_id)
            return (value, value)
        if len(stream_id) == 32 and HEX32.fullmatch(stream_id):
            return None  # such text is shown as a canonical UUID
        if CANONICAL.fullmatch(stream_id):
            return (stream_id, stream_id.replace("-", ""))
        return (stream_id, stream_id)


class Statements:
    """The source's SQL, built with SQLAlchemy Core and compiled once per shape."""

    def __init__(self, layout: Layout, dialect: Any) -> None:
        self.layout = layout
        self.dialect = dialect
        oid_type: Any = String() if layout.sqlite or not layout.uuid_ids else None
        self.t = table(
            layout.table_name,
            column("originator_id", oid_type),
            column("originator_version", BigInteger()),
            column("topic", Text()),
            column("state", LargeBinary()),
            column(layout.position_name, BigInteger()),
        )
        c = self.t.c
        self.pos = c[layout.position_name]
        self.oid = c.originator_id
        self.version = c.originator_version
        self.row = (self.pos, self.oid, self.version, c.topic, c.state)
        self.stream = self._stream_expression()
        self._cache: dict[tuple[Any, ...], CompiledStatement] = {}
        self._lock = threading.Lock()

    def _stream_expression(self) -> ColumnElement[Any]:
        """The stream id as SQL computes it (:meth:`Layout.stream_id`), sorting byte-wise."""
        oid = self.oid
        if self.layout.uuid_ids:
            return cast(oid, Text()).collate("C")

        def part(start: int, length: int) -> ColumnElement[Any]:
            return func.substr(oid, start, length)

        canonical = (
            part(1, 8)
            + literal("-")
            + part(9, 4)
            + literal("-")
            + part(13, 4)
            + literal("-")
            + part(17, 4)
            + literal("-")
            + part(21, 12)
        )
        if self.layout.sqlite:
            is_hex = and_(
                func.length(oid) == 32,
                not_(oid.op("GLOB", is_comparison=True)(literal("*[^0-9a-f]*"))),
            )
            return case((is_hex, canonical), else_=cast(oid, Text()))
        is_hex = oid.op("~", is_comparison=True)(literal("^[0-9a-f]{32}$"))
        return case((is_hex, canonical), else_=cast(oid, Text())).collate("C")

    def compiled(self, key: tuple[Any, ...], build: Callable[[], Any]) -> CompiledStatement:
        """The statement of ``key``, built and compiled the first time it is asked for."""
        statement = self._cache.get(key)
        if statement is None:
            with self._lock:
                statement = self._cache.get(key)
                if statement is None:
                    statement = CompiledStatement(build(), self.dialect)
                    self._cache[key] = statement
        return statement

    def page(self, backwards: bool, stream: bool, types: int) -> CompiledStatement:
        """Rows after ``after`` up to ``high`` (forwards) or before ``before`` down to
        ``low`` (backwards), of the stream ``s0``/``s1`` and topics ``t0…``, ``n`` of them."""

        def build() -> Any:
            query = select(*self.row)
            if backwards:
                query = query.where(self.pos < bindparam("before"), self.pos >= bindparam("low"))
                query = query.order_by(self.pos.desc())
            else:
                query = query.where(self.pos > bindparam("after"), self.pos <= bindparam("high"))
                query = query.order_by(self.pos)
            if stream:
                query = query.where(self.oid.in_([bindparam("s0"), bindparam("s1")]))
            if types:
                query = query.where(self.t.c.topic.in_([bindparam(f"t{i}") for i in range(types)]))
            return query.limit(bindparam("n", type_=Integer()))

        return self.compiled(("page", backwards, stream, types), build)

    def stream_page(self, backwards: bool) -> CompiledStatement:
        """One stream's rows by version, after (or before) ``v``, ``n`` of them."""

        def build() -> Any:
            query = select(*self.row).where(self.oid.in_([bindparam("s0"), bindparam("s1")]))
            if backwards:
                query = query.where(self.version < bindparam("v")).order_by(
                    self.version.desc(), self.pos.desc()
                )
            else:
                query = query.where(self.version > bindparam("v")).order_by(self.version, self.pos)
            return query.limit(bindparam("n", type_=Integer()))

        return self.compiled(("stream", backwards), build)

    def at(self) -> CompiledStatement:
        """The row at position ``p``."""
        return self.compiled(("at",), lambda: select(*self.row).where(self.pos == bindparam("p")))

    def first_from(self) -> CompiledStatement:
        """The first row at or after position ``p``."""
        return self.compiled(
            ("first_from",),
            lambda: select(*self.row).where(self.pos >= bindparam("p")).order_by(self.pos).limit(1),
        )

    def by_place(self) -> CompiledStatement:
        """The row of stored originator id ``o`` at version ``v``."""
        return self.compiled(
            ("by_place",),
            lambda: select(*self.row).where(
                self.oid == bindparam("o"), self.version == bindparam("v")
            ),
        )

    def ids_page(self) -> CompiledStatement:
        """Positions, originator ids and versions after ``after`` (``n`` of them)."""
        return self.compiled(
            ("ids",),
            lambda: (
                select(self.pos, self.oid, self.version)
                .where(self.pos > bindparam("after"))
                .order_by(self.pos)
                .limit(bindparam("n", type_=Integer()))
            ),
        )

    def head(self) -> CompiledStatement:
        """The last position (NULL: empty)."""
        return self.compiled(("head",), lambda: select(func.max(self.pos)))

    def count(self, stream: bool, types: int) -> CompiledStatement:
        """How many rows from ``after`` (exclusive) to ``high``, of a stream and topics."""

        def build() -> Any:
            query = (
                select(func.count())
                .select_from(self.t)
                .where(self.pos > bindparam("after"), self.pos <= bindparam("high"))
            )
            if stream:
                query = query.where(self.oid.in_([bindparam("s0"), bindparam("s1")]))
            if types:
                query = query.where(self.t.c.topic.in_([bindparam(f"t{i}") for i in range(types)]))
            return query

        return self.compiled(("count", stream, types), build)

    def stream_summary(self) -> CompiledStatement:
        """One stream's count, first and last positions and last version."""
        return self.compiled(
            ("summary",),
            lambda: select(
                func.count(), func.min(self.pos), func.max(self.pos), func.max(self.version)
            ).where(self.oid.in_([bindparam("s0"), bindparam("s1")])),
        )

    def streams(self, prefix: bool, category: bool) -> CompiledStatement:
        """Streams after ``after`` by id (byte-wise), ``n`` of them, with their counts,
        first and last positions and last versions."""

        def build() -> Any:
            sid = self.stream
            query = select(
                sid,
                func.count(),
                func.min(self.pos),
                func.max(self.pos),
                func.max(self.version),
            ).where(sid > bindparam("after", type_=Text()))
            if prefix:
                query = query.where(
                    func.substr(sid, 1, bindparam("plen", type_=Integer()))
                    == bindparam("prefix", type_=Text())
                )
            if category:
                query = query.where(
                    or_(
                        sid == bindparam("cat", type_=Text()),
                        func.substr(sid, 1, bindparam("clen", type_=Integer()))
                        == bindparam("catdash", type_=Text()),
                    )
                )
            return query.group_by(sid).order_by(sid).limit(bindparam("n", type_=Integer()))

        return self.compiled(("streams", prefix, category), build)

    def bad_versions(self) -> CompiledStatement:
        """Streams whose versions are not contiguous from their first (up to ``n``)."""

        def build() -> Any:
            sid = self.stream
            low, high, count = func.min(self.version), func.max(self.version), func.count()
            return (
                select(sid, count, low, high)
                .group_by(sid)
                .having(high - low + 1 != count)
                .order_by(sid)
                .limit(bindparam("n", type_=Integer()))
            )

        return self.compiled(("bad_versions",), build)

    def stream_count(self) -> CompiledStatement:
        """How many streams there are."""
        return self.compiled(
            ("stream_count",),
            lambda: select(func.count()).select_from(
                select(self.stream).group_by(self.stream).subquery()
            ),
        )
