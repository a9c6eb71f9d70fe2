"""The search index of a SQL store (payload words, correlation ids) and the SQL conditions
of a filter, answered from the index or tested on each event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Dialect,
    FromClause,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.errors import StoreReadOnly
from core.jobs import checkpoint
from core.store.compiled import CompiledStatement
from core.store.port import EventFilter
from core.store.schema import (
    CORRELATIONS_TABLE,
    INDEXED_POSITION_KEY,
    SCHEMA_VERSION,
    WORDS_TABLE,
    events,
    meta,
)
from core.store.sql.connections import HEAD_SQL, Connections, head_in

__all__ = ["SearchIndex"]

# The search index's tables, for Core statements (their DDL is in core.store.schema).
_fts = table(WORDS_TABLE, column("rowid", Integer))
_fts_input = table(WORDS_TABLE, column("rowid", Integer), column("data", Text))
_tsv = table(WORDS_TABLE, column("position", BigInteger), column("words"))
_correlations = table(
    CORRELATIONS_TABLE, column("correlation_id", String), column("position", BigInteger)
)
# One expression for a payload's words on PostgreSQL, shared by the indexer and scans.
_PG_WORDS_SQL: Final = "to_tsvector('simple', regexp_replace(data, '[^[:alnum:]]+', ' ', 'g'))"


#: The indexer's key in ``eventscope_meta``, as a constant of the statements.
_INDEXED_KEY: Final = literal_column(f"'{INDEXED_POSITION_KEY}'", Text())


@dataclass(frozen=True, slots=True)
class _IndexStatements:
    """What the indexer runs in each batch's transaction, compiled for one dialect."""

    lock: CompiledStatement | None  # PostgreSQL: the meta row, locked (SQLite: the write lock)
    read: CompiledStatement  # the position indexed so far
    words: CompiledStatement  # the payload words of events low < position <= high
    correlations: CompiledStatement  # their correlation ids
    write: CompiledStatement  # the new position indexed

    @classmethod
    def build(cls, dialect: Dialect) -> _IndexStatements:
        low = bindparam("low", type_=BigInteger)
        high = bindparam("high", type_=BigInteger)
        in_batch = and_(events.c.position > low, events.c.position <= high)
        indexed = select(meta.c.value).where(meta.c.key == _INDEXED_KEY)
        lock: Any = None
        if dialect.name == "sqlite":
            path: ColumnElement[str] = literal_column("'$.correlation_id'")
            words: Any = insert(_fts_input).from_select(
                ["rowid", "data"], select(events.c.position, events.c.data).where(in_batch)
            )
            correlations: Any = (
                insert(_correlations)
                .prefix_with("OR IGNORE")
                .from_select(
                    ["correlation_id", "position"],
                    select(func.json_extract(events.c.metadata, path), events.c.position).where(
                        in_batch, func.json_type(events.c.metadata, path) == "text"
                    ),
                )
            )
        else:
            document = cast(events.c.metadata, JSONB)
            name: ColumnElement[str] = literal_column("'correlation_id'")
            words = (
                pg_insert(_tsv)
                .from_select(
                    ["position", "words"],
                    select(events.c.position, literal_column(_PG_WORDS_SQL)).where(in_batch),
                )
                .on_conflict_do_nothing()
            )
            correlations = (
                pg_insert(_correlations)
                .from_select(
                    ["correlation_id", "position"],
                    select(document.op("->>")(name), events.c.position).where(
                        in_batch, func.jsonb_typeof(document.op("->")(name)) == "string"
                    ),
                )
                .on_conflict_do_nothing()
            )
            lock = CompiledStatement(indexed.with_for_update(), dialect)
        write = (
            update(meta)
            .where(meta.c.key == _INDEXED_KEY)
            .values(value=bindparam("value", type_=Text))
        )
        return cls(
            lock,
            CompiledStatement(indexed, dialect),
            CompiledStatement(words, dialect),
            CompiledStatement(correlations, dialect),
            CompiledStatement(write, dialect),
        )


class SearchIndex:
    """The search index: keeping it up to date, and the conditions that use it.

    Args:
        conns: the store's connections.
    """

    def __init__(self, conns: Connections) -> None:
        self._conns = conns
        self._sqlite = conns.sqlite
        #: The store's schema version: below 3 (an old store read as it is) there is
        #: no index and every search scans.
        self.schema = SCHEMA_VERSION
        self._statements: _IndexStatements | None = None

    def indexed_position(self) -> int:
        """The last position the search index covers (0 for an old store read as it is)."""
        if self.schema < 3:
            return 0
        with self._conns.reading() as conn:
            value = conn.execute(
                select(meta.c.value).where(meta.c.key == INDEXED_POSITION_KEY)
            ).scalar_one_or_none()
        return int(value) if value is not None else 0

    def update_index(self, *, batch: int = 20_000, limit: int | None = None) -> int:
        """Index the events after :meth:`indexed_position` (see :class:`EventStore`).

        Each batch is one transaction that reads the indexed position under a lock
        (SQLite's write lock; PostgreSQL's row lock on the meta row, which appends do
        not take), so concurrent indexers never index an event twice.
        """
        conns = self._conns
        conns.ensure_usable()
        if conns.read_only:
            raise StoreReadOnly(f"{conns.shown()} is open read-only; open it writable to index")
        statements = self._index_statements()
        begin = None if statements.lock is None else statements.lock.sql
        start = self.indexed_position()
        with conns.reading() as conn:
            row = conn.exec_driver_sql(HEAD_SQL).first()
        goal = 0 if row is None else int(row[0])
        done = 0
        while limit is None or done < limit:
            checkpoint(done, max(goal - start, done))
            with conns.writing(begin) as cursor:
                indexed = int(statements.read.execute(cursor).fetchone()[0])
                head, _ = head_in(cursor)
                step = batch if limit is None else min(batch, limit - done)
                upto = min(head, indexed + step)
                if upto <= indexed:
                    break
                statements.words.execute(cursor, low=indexed, high=upto)
                statements.correlations.execute(cursor, low=indexed, high=upto)
                statements.write.execute(cursor, value=str(upto))
            done += upto - indexed
        return done

    def _index_statements(self) -> _IndexStatements:
        """The indexer's statements, built with Core and compiled once per store."""
        if self._statements is None:
            self._statements = _IndexStatements.build(self._conns.engine.dialect)
        return self._statements

    # -- conditions ------------------------------------------------------------------------

    def index_join(self, where: EventFilter) -> tuple[FromClause, ColumnElement[int]]:
        """The events joined to the index tables a search uses, and the key to order by."""
        source: FromClause = events
        key: ColumnElement[int] = events.c.position
        if where.words:
            if self._sqlite:
                source = source.join(_fts, _fts.c.rowid == events.c.position)
                key = _fts.c.rowid  # FTS5 returns rowids in order: no sort, early stop
            else:
                source = source.join(_tsv, _tsv.c.position == events.c.position)
                key = _tsv.c.position
        if where.correlation_id is not None:
            source = source.join(_correlations, _correlations.c.position == events.c.position)
            key = _correlations.c.position  # the (correlation_id, position) key: one range
        return source, key

    def content_conditions(
        self, where: EventFilter, *, indexed: bool, narrow: bool = False
    ) -> list[ColumnElement[bool]]:
        """The filter's tests on an event's content, as SQL conditions.

        ``indexed``: the search terms are answered by the index join of
        :meth:`index_join`; otherwise they are tested on each event (a scan).
        ``narrow``: the read covers at most SCAN_WINDOW positions, so SQLite tests
        several types on each row of that range instead of merging their index ranges.
        """
        conditions: list[ColumnElement[bool]] = []
        # The plain tests' parameters are named as plain_shape() names their values.
        if where.stream_id is not None:
            conditions.append(events.c.stream_id == bindparam("stream_id", where.stream_id))
        if where.stream_prefix:
            low, high = _prefix_range(where.stream_prefix)
            conditions.append(events.c.stream_id >= bindparam("prefix_low", low))
            conditions.append(events.c.stream_id < bindparam("prefix_high", high))
        if where.category is not None:
            conditions.append(events.c.category == bindparam("category", where.category))
        types = [
            bindparam(f"type_{n}", event_type, type_=String())
            for n, event_type in enumerate(where.types)
        ]
        if types and self._narrow_types(where, narrow):
            # "+type" keeps SQLite off the (type, position) index: for several types it
            # sorts each page's rows of every type in a temporary B-tree (a projection
            # runner's batches of 20,000 positions read 2.6x slower that way).
            conditions.append(literal_column("+events.type", String()).in_(types))
        elif types:
            conditions.append(events.c.type.in_(types))
        words = where.words
        if indexed:
            if where.correlation_id is not None:
                conditions.append(_correlations.c.correlation_id == where.correlation_id)
            if words and self._sqlite:
                # An exact word streams its doclist in rowid order; a prefix (word*)
                # merges the doclists of every word it starts first.
                query = " AND ".join(
                    f'"{word[:-1]}"*' if word.endswith("*") else f'"{word}"' for word in words
                )
                conditions.append(literal_column(WORDS_TABLE).op("MATCH")(query))
            elif words:
                conditions.append(_tsv.c.words.op("@@")(_tsquery(words)))
                conditions += _pg_substrings(words)
            return conditions
        if where.correlation_id is not None:
            conditions.append(self._metadata_string_is("correlation_id", where.correlation_id))
        if words and self._sqlite:
            # LIKE is a cheap C pre-test (case-blind for ASCII only); the function decides.
            for word in words:
                if word.isascii():
                    conditions.append(events.c.data.like(f"%{word.rstrip('*')}%"))
            conditions.append(func.eventscope_words(events.c.data, " ".join(words)) == 1)
        elif words:
            conditions.append(literal_column(_PG_WORDS_SQL).op("@@")(_tsquery(words)))
            conditions += _pg_substrings(words)
        return conditions

    def plain_shape(
        self, where: EventFilter, *, narrow: bool = False
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The shape of a filter whose tests are all plain parameters (no search words,
        no correlation id), and their values by name: reads of one shape share their
        compiled statements (see :meth:`content_conditions`, which names them so).
        None for a filter with a search."""
        if where.words or where.correlation_id is not None:
            return None
        values: dict[str, Any] = {}
        if where.stream_id is not None:
            values["stream_id"] = where.stream_id
        if where.stream_prefix:
            values["prefix_low"], values["prefix_high"] = _prefix_range(where.stream_prefix)
        if where.category is not None:
            values["category"] = where.category
        for n, event_type in enumerate(where.types):
            values[f"type_{n}"] = event_type
        shape = (
            where.stream_id is not None,
            bool(where.stream_prefix),
            where.category is not None,
            len(where.types),
            bool(where.types) and self._narrow_types(where, narrow),
        )
        return shape, values

    def _narrow_types(self, where: EventFilter, narrow: bool) -> bool:
        """Whether SQLite tests several types on each row of a narrow range (see
        :meth:`content_conditions`)."""
        return narrow and self._sqlite and len(where.types) > 1

    def _metadata_string_is(self, key: str, value: str) -> ColumnElement[bool]:
        """``metadata.<key>`` is the string ``value`` (a number or object never is)."""
        if not key.isidentifier():
            raise ValueError(f"metadata key {key!r} is not an identifier")
        if self._sqlite:
            path: ColumnElement[str] = literal_column(f"'$.{key}'")
            return and_(
                func.json_type(events.c.metadata, path) == "text",
                func.json_extract(events.c.metadata, path) == value,
            )
        document = cast(events.c.metadata, JSONB)
        name: ColumnElement[str] = literal_column(f"'{key}'")
        return and_(
            func.jsonb_typeof(document.op("->")(name)) == "string",
            document.op("->>")(name) == value,
        )


def _pg_substrings(words: Sequence[str]) -> list[ColumnElement[bool]]:
    """Each word is in the payload's text, as the reference search requires first: a
    character PostgreSQL's parser drops from the query (``¾``, in some locales) then
    still narrows it, instead of the query matching without it."""
    return [
        func.strpos(func.lower(events.c.data), bindparam(None, word.rstrip("*"), String())) > 0
        for word in words
    ]


def _tsquery(words: Sequence[str]) -> ColumnElement[Any]:
    """PostgreSQL's query for the words (``word:*`` for a prefix)."""
    query = " & ".join(f"{word[:-1]}:*" if word.endswith("*") else word for word in words)
    return func.to_tsquery(literal_column("'simple'"), query)


def _prefix_range(prefix: str) -> tuple[str, str]:
    """The stream ids starting with ``prefix``: ``low <= stream_id < high``."""
    return prefix, prefix + "\U0010ffff"
