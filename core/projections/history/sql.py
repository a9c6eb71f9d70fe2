"""Read models with history in a SQL store's own database (SQLite or PostgreSQL).

The history is append-only (schema 8): a version row is (model, key, valid_from, doc),
valid until the next row of its key, with a NULL doc for a tombstone (the key deleted
there). A commit only inserts; the version valid at a position is the key's latest row
at or before it, one primary-key probe (``ORDER BY valid_from DESC LIMIT 1``), and a page
of a read model is the latest row per key along the primary key (SQLite's ``max()``
with bare columns, PostgreSQL's ``DISTINCT ON``).

Every statement is built with SQLAlchemy Core when the history store opens (for the
store's dialect) and compiled once; calls hand the driver plain values (see
:mod:`core.store.compiled`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import orjson
from sqlalchemy import (
    Dialect,
    Integer,
    and_,
    bindparam,
    collate,
    column,
    delete,
    exists,
    func,
    insert,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import ColumnElement

from core.errors import OlderSchema
from core.events import wall_clock_micros
from core.projections.definition import JsonDoc
from core.projections.history.port import (
    ACTIVE,
    CURRENT,
    FAULTED,
    FIRST_PAGE,
    KEEP_RUNS,
    STATES,
    Change,
    Fault,
    HistoryStore,
    ModelStatus,
    RunRecord,
    distinct_states,
    version_rows,
)
from core.store.compiled import CompiledStatement, positional
from core.store.port import WriteTransaction
from core.store.schema import (
    DOCUMENTS_TABLE,
    projection_runs,
    read_model_docs,
    read_models,
)
from core.store.sql import SqlEventStore
from core.store.sql.engines import display_location

__all__ = ["SPARSE_VERSIONS", "SqlHistoryStore"]

#: A point by which at most this many versions of a read model had begun is read from
#: the ``valid_from`` index: those versions, each key's latest there sorted by key,
#: instead of a walk in key order that passes every later version to find few alive.
#: (A page out of 10,000 begun versions takes about 3 ms on SQLite.)
SPARSE_VERSIONS: Final = 10_000
#: The SQLite writer's page cache while it commits batches (64 MiB, where a connection
#: starts with 8): a batch's versions land in the pages of recent keys, which then stay
#: cached from one batch to the next (the setting stays with the connection).
_WRITER_CACHE: Final = "PRAGMA cache_size=-65536"
#: The first schema with the append-only history (older stores are read only after a
#: migration: a read-only open of one keeps no read models).
HISTORY_SCHEMA: Final = 8
#: A keyset condition: the key column against the last key of the previous page.
Comparison = Callable[[ColumnElement[str], ColumnElement[str]], ColumnElement[bool]]


class SqlHistoryStore(HistoryStore):
    """The read models of one SQL store: documents with history, checkpoints, runs.

    Args:
        store: the store whose database holds the read models (schema 8 or later).
        keep_runs: how many runs of each read model the run history keeps (the newest).

    Raises:
        OlderSchema: the store is older than schema 8 (opened read-only, not migrated):
            its history has the layout before the append-only one.
    """

    store: SqlEventStore

    def __init__(self, store: SqlEventStore, *, keep_runs: int = KEEP_RUNS) -> None:
        self.store = store
        self.keep_runs = keep_runs
        if store.schema_version < HISTORY_SCHEMA:
            raise OlderSchema(
                f"{display_location(store.location)} has store schema {store.schema_version}: "
                f"its read models are readable after a migration to {HISTORY_SCHEMA} "
                "(open it writable, or run `eventscope migrate`)"
            )
        self._sqlite = store.dialect == "sqlite"
        self._sparse_limits: dict[str, int] = {}  # model -> see _sparse_before
        self._sql = _Statements(positional(store.sql_dialect))

    @contextmanager
    def _writing(self, within: WriteTransaction | None) -> Iterator[Any]:
        """The caller's transaction's cursor, or a write transaction of our own."""
        if within is None:
            with self.store.write_transaction() as cursor:
                yield cursor
        elif within.cursor is None:
            raise ValueError("within: a transaction of another store (it has no SQL cursor)")
        else:
            yield within.cursor

    # -- read models ------------------------------------------------------------------------

    def ensure(
        self, name: str, version: int, *, within: WriteTransaction | None = None
    ) -> ModelStatus:
        """The status of ``name:version``, registering it (checkpoint 0) if it is new."""
        model = f"{name}:{version}"
        if within is None:
            found = self.status(model)  # the common case takes no write lock
            if found is not None:
                return found
        with self._writing(within) as cursor:
            self._sql.register.execute(
                cursor, model=model, name=name, version=version, now=wall_clock_micros()
            )
            if within is not None:
                return self._status_in(cursor, model)
        status = self.status(model)
        assert status is not None
        return status

    def _status_in(self, cursor: Any, model: str) -> ModelStatus:
        row = self._sql.status.execute(cursor, model=model).fetchone()
        return ModelStatus(*row)

    def status(self, model: str) -> ModelStatus | None:
        """One read model's status, or None if it was never run."""
        with self.store.read_transaction() as cursor:
            row = self._sql.status.execute(cursor, model=model).fetchone()
        return None if row is None else ModelStatus(*row)

    def statuses(self) -> list[ModelStatus]:
        """Every read model that has run, by name and version."""
        with self.store.read_transaction() as cursor:
            rows = self._sql.statuses.fetchall(cursor)
        return [ModelStatus(*row) for row in rows]

    def reset(
        self, model: str, *, state: str = ACTIVE, within: WriteTransaction | None = None
    ) -> None:
        """Forget a read model's documents and history; its checkpoint goes back to 0.

        ``state`` is ACTIVE (rebuild from the first event) or RETIRED (stop keeping it:
        schedulers leave it alone until it is rebuilt).
        """
        with self._writing(within) as cursor:
            self._sql.forget_documents.execute(cursor, model=model)
            self._sql.reset.execute(cursor, model=model, state=state, now=wall_clock_micros())

    def change_state(
        self,
        model: str,
        state: str,
        *,
        only_from: Sequence[str],
        within: WriteTransaction | None = None,
    ) -> bool:
        """Move a read model to ``state`` if it is in one of ``only_from``; returns whether
        it moved. Leaving FAULTED clears the fault (a retry applies the event again)."""
        wanted = distinct_states(only_from)
        if not wanted:
            return False
        # One statement for any number of states: the unused slots repeat a wanted one.
        slots = {f"from_{n}": wanted[min(n, len(wanted) - 1)] for n in range(len(STATES))}
        statement = (
            self._sql.change_state_keeping_fault if state == FAULTED else self._sql.change_state
        )
        with self._writing(within) as cursor:
            statement.execute(cursor, model=model, state=state, now=wall_clock_micros(), **slots)
            return bool(cursor.rowcount == 1)

    def skip_fault(
        self, model: str, *, within: WriteTransaction | None = None
    ) -> ModelStatus | None:
        """Move a faulted read model's checkpoint over the event it faulted on and make it
        active again; returns the status it had (None if it was not faulted there: another
        retry, reset or skip came first, and nothing changed)."""
        with self._writing(within) as cursor:
            row = self._sql.status.execute(cursor, model=model).fetchone()
            status = None if row is None else ModelStatus(*row)
            if status is None or status.state != FAULTED or status.fault_position is None:
                return None
            self._sql.skip_fault.execute(
                cursor,
                model=model,
                fault_at=status.fault_position,
                before_fault=status.fault_position - 1,
                now=wall_clock_micros(),
            )
            return status if cursor.rowcount == 1 else None

    def retain(self, model: str, since: int, *, within: WriteTransaction | None = None) -> int:
        """Keep history from position ``since`` on: versions no longer valid at any
        position >= ``since`` are deleted. Returns how many were.

        The read model at an earlier position is then folded from the log instead.
        """
        with self._writing(within) as cursor:
            # Versions followed by another row of their key by ``since``; then every
            # tombstone by then (the last one of a key only says it is absent, as no row
            # does). Each version left keeps the row after it, so its end is unchanged.
            deleted = int(
                self._sql.forget_superseded.execute(cursor, model=model, since=since).rowcount
            )
            self._sql.forget_tombstones.execute(cursor, model=model, since=since)
            self._sql.retain.execute(cursor, model=model, since=since, now=wall_clock_micros())
        return deleted

    # -- leases -----------------------------------------------------------------------------

    def acquire_lease(
        self,
        model: str,
        owner: str,
        *,
        seconds: float,
        within: WriteTransaction | None = None,
    ) -> bool:
        """Take (or renew) the lease of a read model for ``seconds``; False if another
        worker holds a lease that has not expired."""
        now = wall_clock_micros()
        with self._writing(within) as cursor:
            self._sql.acquire_lease.execute(
                cursor, model=model, owner=owner, expires=now + int(seconds * 1_000_000), now=now
            )
            return bool(cursor.rowcount == 1)

    def release_lease(
        self, model: str, owner: str, *, within: WriteTransaction | None = None
    ) -> None:
        """Give a lease back (nothing happens if ``owner`` does not hold it)."""
        with self._writing(within) as cursor:
            self._sql.release_lease.execute(cursor, model=model, owner=owner)

    # -- documents --------------------------------------------------------------------------

    def current_doc(self, model: str, key: str) -> bytes | None:
        """The latest version of a document as stored JSON, or None (also when the latest
        row is a tombstone)."""
        with self.store.read_transaction() as cursor:
            row = self._sql.current_doc.execute(cursor, model=model, key=key).fetchone()
        if row is None or row[0] is None:
            return None
        doc = row[0]
        return doc.encode() if isinstance(doc, str) else bytes(doc)

    def current_keys(self, model: str, *, limit: int) -> set[str] | None:
        """The keys of a read model's current documents, or None if there are more than
        ``limit`` (the latest row of each key along the primary key, tombstones left out)."""
        with self.store.read_transaction() as cursor:
            rows = self._sql.current_keys.fetchall(cursor, model=model, size=limit + 1)
        keys = {row[0] for row in rows}
        return keys if len(keys) <= limit else None

    def iter_documents_at(
        self,
        model: str,
        position: int | None = None,
        *,
        after_key: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[tuple[str, JsonDoc]]:
        """The read model after ``position`` (None: now) as (key, doc) pairs in key order
        (code-point order, as Python sorts ``str``), after ``after_key`` if given.

        Keyset pages, the first of ``FIRST_PAGE`` keys and each next one twice the last
        up to ``page_size`` (a key deleted there counts in its page, and is skipped:
        tombstones are rare), so nothing holds more than a page and the first
        documents of a model of millions cost one short index range. Two paths: the
        current documents or a point where many versions had begun walk the primary key
        (model, key, valid_from), taking each key's latest row begun by the point; a
        point by which few had begun (``SPARSE_VERSIONS``: early in the log, before the
        model's first document) reads those from the ``valid_from`` index instead, where
        the walk would pass every later version to prove nothing else is alive.
        """
        pages: tuple[CompiledStatement, CompiledStatement]  # from the start, after a key
        if position is None:
            pages = self._sql.current_pages
        elif self._sparse(model, position):
            pages = self._sql.sparse_pages
        else:
            pages = self._sql.pages_at
        from_start, after = pages
        loads = orjson.loads
        last = after_key if after_key is not None else ""  # "" is a key too
        first = after_key is None
        size = min(FIRST_PAGE, page_size)
        while True:
            with self.store.read_transaction() as cursor:
                rows = (from_start if first else after).fetchall(
                    cursor, model=model, position=position, last=last, size=size
                )
            for row in rows:
                if row[1] is not None:  # a tombstone: the key is deleted there
                    yield row[0], loads(row[1])
            if len(rows) < size:
                return
            last, first = rows[-1][0], False
            size = min(size * 2, page_size)

    def _sparse(self, model: str, position: int) -> bool:
        """Whether few enough versions of ``model`` had begun by ``position`` for the
        ``valid_from`` index to answer faster than the key-order walk."""
        before = self._sparse_before(model)
        return before is not None and position < before

    def _sparse_before(self, model: str) -> int | None:
        """The position where ``model``'s version number ``SPARSE_VERSIONS + 1`` begins (in
        ``valid_from`` order): before it, fewer versions had begun. None while the model
        has no more versions than that (then every walk is that short anyway).

        Kept once found: the versions of a position never change once it is behind the
        checkpoint (a rebuild writes the same ones again; retention only removes some,
        which at worst sends a few sparse points down the walk). Both paths give the same
        documents, so a stale value costs time, never correctness.
        """
        found = self._sparse_limits.get(model)
        if found is None:
            with self.store.read_transaction() as cursor:
                row = self._sql.sparse_before.execute(
                    cursor, model=model, skip=SPARSE_VERSIONS
                ).fetchone()
            if row is not None:
                found = self._sparse_limits[model] = int(row[0])
        return found

    def versions_of(self, model: str, key: str) -> list[tuple[int, int, JsonDoc]]:
        """Every stored version of one document, oldest first: (valid_from, valid_to, doc)
        (one primary-key range; each ``valid_to`` is the next row's ``valid_from``, CURRENT
        for the last, and tombstones end a version without being one)."""
        with self.store.read_transaction() as cursor:
            rows = self._sql.versions_of.fetchall(cursor, model=model, key=key)
        if not rows:
            return []
        ends = [int(start) for start, _ in rows[1:]] + [CURRENT]
        return [
            (int(start), end, orjson.loads(doc))
            for (start, doc), end in zip(rows, ends, strict=True)
            if doc is not None
        ]

    def document_at(self, model: str, key: str, position: int | None = None) -> JsonDoc | None:
        """One document after ``position`` (None: now), or None: one index probe."""
        with self.store.read_transaction() as cursor:
            if position is None:
                row = self._sql.current_doc.execute(cursor, model=model, key=key).fetchone()
            else:
                row = self._sql.document_at.execute(
                    cursor, model=model, key=key, position=position
                ).fetchone()
        if row is None or row[0] is None:
            return None  # never written by then, or deleted (a tombstone)
        found: JsonDoc = orjson.loads(row[0])
        return found

    def versions(self, model: str) -> int:
        """How many document versions the history holds (current ones included; a
        tombstone is no version)."""
        with self.store.read_transaction() as cursor:
            return int(self._sql.versions.execute(cursor, model=model).fetchone()[0])

    # -- committing a batch -----------------------------------------------------------------

    def commit(
        self,
        model: str,
        expected_checkpoint: int,
        checkpoint: int,
        changes: Sequence[Change],
        *,
        lease: tuple[str, int] | None = None,
        fault: Fault | None = None,
    ) -> bool:
        """Write a batch's document versions and move the checkpoint, in one transaction.

        Compare-and-set: nothing is written unless the read model is still active at
        ``expected_checkpoint`` (and, with ``lease`` = (owner, expires), still leased to
        that owner, whose lease is then extended): otherwise returns False.
        ``changes`` are in position order; a key's versions chain up (each one valid
        until the next change of the key, the last one until CURRENT). With ``fault``,
        the read model is marked faulted at that event in the same transaction.

        Only inserts (:func:`version_rows`): a version ends where its key's next row
        begins, so no earlier row is touched.
        """
        rows = version_rows(model, changes)
        values: dict[str, Any] = {
            "model": model,
            "checkpoint": checkpoint,
            "expected": expected_checkpoint,
            "now": wall_clock_micros(),
        }
        if lease is not None:
            values.update(owner=lease[0], expires=lease[1])
        if fault is not None:
            values.update(
                fault_at=fault.position, fault_event=fault.event_id, fault_text=fault.error
            )
        move = self._sql.move_checkpoint[lease is not None, fault is not None]
        with self.store.write_transaction() as cursor:
            if self._sqlite:
                cursor.execute(_WRITER_CACHE)
            if move.execute(cursor, **values).rowcount != 1:
                return False  # nothing was written; the empty transaction commits
            if rows:
                self._sql.insert_versions.executemany(cursor, rows)
        return True

    # -- runs -------------------------------------------------------------------------------

    def record_run(self, run: RunRecord) -> None:
        """Keep a run in the run history (and forget the read model's oldest runs beyond
        ``keep_runs``)."""
        with self.store.write_transaction() as cursor:
            self._sql.insert_run.execute(
                cursor,
                model=run.model,
                started_at=run.started_at,
                duration_us=run.duration_us,
                from_position=run.from_position,
                to_position=run.to_position,
                events=run.events,
                outcome=run.outcome,
                error=run.error,
                worker=run.worker,
            )
            self._sql.trim_runs.execute(cursor, model=run.model, keep=self.keep_runs)

    def runs(
        self, model: str | None = None, *, limit: int = 100, system: bool = True
    ) -> list[RunRecord]:
        """The newest runs first (of one read model, or of all; with ``system=False``, of
        all but the rows named ``$...``, such as relays' checkpoints)."""
        with self.store.read_transaction() as cursor:
            if model is None:
                statement = self._sql.all_runs if system else self._sql.user_runs
                rows = statement.fetchall(cursor, size=limit)
            else:
                rows = self._sql.runs_of.fetchall(cursor, model=model, size=limit)
        return [RunRecord(*row) for row in rows]


class _Statements:
    """Every statement of a :class:`SqlHistoryStore`, built with Core and compiled once.

    Args:
        dialect: the store's dialect.
    """

    def __init__(self, dialect: Dialect) -> None:
        sqlite_ = dialect.name == "sqlite"
        docs, models, runs = read_model_docs, read_models, projection_runs

        def compiled(statement: Any) -> CompiledStatement:
            return CompiledStatement(statement, dialect)

        def by_key(key: ColumnElement[str]) -> ColumnElement[str]:
            """Code-point order on both backends: PostgreSQL's default collation is not."""
            return key if sqlite_ else collate(key, "C")

        model = bindparam("model", type_=models.c.model.type)
        now = bindparam("now", type_=models.c.updated_at.type)

        # -- read models
        status_columns = [
            models.c.model,
            models.c.name,
            models.c.version,
            models.c.checkpoint,
            models.c.state,
            models.c.history_from,
            models.c.fault_position,
            models.c.fault_event_id,
            models.c.fault_error,
            models.c.updated_at,
            models.c.lease_owner,
            models.c.lease_expires,
        ]
        self.status = compiled(select(*status_columns).where(models.c.model == model))
        self.statuses = compiled(select(*status_columns).order_by(models.c.name, models.c.version))
        upsert: Callable[..., Any] = sqlite.insert if sqlite_ else postgresql.insert
        self.register = compiled(
            upsert(models)
            .values(
                model=model,
                name=bindparam("name"),
                version=bindparam("version"),
                checkpoint=0,
                state=ACTIVE,
                history_from=0,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[models.c.model])
        )
        no_fault = {"fault_position": null(), "fault_event_id": null(), "fault_error": null()}
        this_model = update(models).where(models.c.model == model)
        self.forget_documents = compiled(delete(docs).where(docs.c.model == model))
        self.reset = compiled(
            this_model.values(
                checkpoint=0, state=bindparam("state"), history_from=0, updated_at=now, **no_fault
            )
        )
        from_states = models.c.state.in_([bindparam(f"from_{n}") for n in range(len(STATES))])
        self.change_state = compiled(
            this_model.where(from_states).values(
                state=bindparam("state"), updated_at=now, **no_fault
            )
        )
        self.change_state_keeping_fault = compiled(  # for a move into FAULTED
            this_model.where(from_states).values(state=bindparam("state"), updated_at=now)
        )
        fault_at = bindparam("fault_at", type_=models.c.fault_position.type)
        self.skip_fault = compiled(
            this_model.where(
                models.c.state == FAULTED,
                models.c.checkpoint == bindparam("before_fault"),
                models.c.fault_position == fault_at,
            ).values(checkpoint=fault_at, state=ACTIVE, updated_at=now, **no_fault)
        )
        since = bindparam("since", type_=docs.c.valid_from.type)
        later = docs.alias("later")
        begun_by_since = and_(docs.c.model == model, docs.c.valid_from <= since)
        self.forget_superseded = compiled(
            delete(docs).where(
                begun_by_since,
                docs.c.doc.is_not(None),
                exists().where(
                    later.c.model == docs.c.model,
                    later.c.key == docs.c.key,
                    later.c.valid_from > docs.c.valid_from,
                    later.c.valid_from <= since,
                ),
            )
        )
        self.forget_tombstones = compiled(delete(docs).where(begun_by_since, docs.c.doc.is_(None)))
        self.retain = compiled(
            this_model.where(models.c.history_from < since).values(
                history_from=since, updated_at=now
            )
        )

        # -- leases
        owner = bindparam("owner", type_=models.c.lease_owner.type)
        self.acquire_lease = compiled(
            this_model.where(
                or_(
                    models.c.lease_owner.is_(None),
                    models.c.lease_owner == owner,
                    models.c.lease_expires <= now,
                )
            ).values(lease_owner=owner, lease_expires=bindparam("expires"))
        )
        self.release_lease = compiled(
            this_model.where(models.c.lease_owner == owner).values(
                lease_owner=null(), lease_expires=0
            )
        )

        # -- documents
        key = bindparam("key", type_=docs.c.key.type)
        position = bindparam("position", type_=docs.c.valid_from.type)
        size = bindparam("size", type_=Integer())
        this_doc = and_(docs.c.model == model, docs.c.key == key)
        latest = select(docs.c.doc).where(this_doc).order_by(docs.c.valid_from.desc()).limit(1)
        begun = docs.c.valid_from <= position
        self.current_doc = compiled(latest)
        self.document_at = compiled(latest.where(begun))
        self.current_keys = compiled(_current_keys(sqlite_, model, by_key).limit(size))
        self.versions_of = compiled(
            select(docs.c.valid_from, docs.c.doc).where(this_doc).order_by(docs.c.valid_from)
        )
        self.versions = compiled(select(func.count(docs.c.doc)).where(docs.c.model == model))
        self.sparse_before = compiled(
            select(docs.c.valid_from)
            .where(docs.c.model == model)
            .order_by(docs.c.valid_from)
            .limit(1)
            .offset(bindparam("skip", type_=size.type))
        )
        last = bindparam("last", type_=docs.c.key.type)

        def pair(
            page: Callable[[Comparison], Any],
        ) -> tuple[CompiledStatement, CompiledStatement]:
            """A page statement compiled twice: from a key on, and after a key."""
            return compiled(page(_at_or_after)), compiled(page(_after))

        def walk(*valid: ColumnElement[bool]) -> tuple[CompiledStatement, CompiledStatement]:
            """Pages along the primary key (model, key, valid_from): each key's latest row
            among those ``valid``, tombstones left out."""
            return pair(
                lambda after: _latest(
                    sqlite_,
                    [docs.c.model == model, after(by_key(docs.c.key), last), *valid],
                    by_key,
                ).limit(size)
            )

        self.current_pages = walk()
        self.pages_at = walk(begun)
        self.sparse_pages = pair(
            lambda after: _sparse_page(sqlite_, model, position, last, size, after, by_key)
        )

        # -- committing a batch: the checkpoint's compare-and-set, one variant per
        # (lease, fault), then the versions
        self.move_checkpoint: dict[tuple[bool, bool], CompiledStatement] = {}
        for leased in (False, True):
            for faulted in (False, True):
                moved = update(models).where(
                    models.c.model == model,
                    models.c.checkpoint == bindparam("expected"),
                    models.c.state == ACTIVE,
                )
                changes: dict[str, Any] = {"checkpoint": bindparam("checkpoint"), "updated_at": now}
                if faulted:
                    changes.update(
                        state=FAULTED,
                        fault_position=bindparam("fault_at"),
                        fault_event_id=bindparam("fault_event"),
                        fault_error=bindparam("fault_text"),
                    )
                if leased:
                    changes["lease_expires"] = bindparam("expires")
                    moved = moved.where(models.c.lease_owner == owner)
                self.move_checkpoint[leased, faulted] = compiled(moved.values(**changes))
        self.insert_versions = compiled(insert(docs))
        # version_rows() builds its rows as plain tuples in this order.
        assert self.insert_versions.parameter_names == ("model", "key", "valid_from", "doc")

        # -- runs
        run_columns = [
            runs.c.model,
            runs.c.started_at,
            runs.c.duration_us,
            runs.c.from_position,
            runs.c.to_position,
            runs.c.events,
            runs.c.outcome,
            runs.c.error,
            runs.c.worker,
        ]
        stored = [c.name for c in runs.c if c.name != "id"]
        self.insert_run = compiled(insert(runs).values({name: bindparam(name) for name in stored}))
        newest_kept = (
            select(runs.c.id)
            .where(runs.c.model == model)
            .order_by(runs.c.id.desc())
            .limit(1)
            .offset(bindparam("keep", type_=size.type))
            .scalar_subquery()
        )
        self.trim_runs = compiled(
            delete(runs).where(runs.c.model == model, runs.c.id <= newest_kept)
        )
        newest_first = select(*run_columns).order_by(runs.c.id.desc()).limit(size)
        self.all_runs = compiled(newest_first)
        self.user_runs = compiled(newest_first.where(~runs.c.model.startswith("$")))
        self.runs_of = compiled(newest_first.where(runs.c.model == model))


def _at_or_after(key: ColumnElement[str], last: ColumnElement[str]) -> ColumnElement[bool]:
    return key >= last


def _after(key: ColumnElement[str], last: ColumnElement[str]) -> ColumnElement[bool]:
    return key > last


def _latest(
    sqlite_: bool,
    conditions: list[ColumnElement[bool]],
    by_key: Callable[[ColumnElement[str]], ColumnElement[str]],
) -> Any:
    """Each key's latest row among those meeting ``conditions``, in key order, as (key,
    doc) with doc None for a tombstone (the caller skips those: a page that counts them
    needs no filter that would read past its end). One walk along the primary key:
    SQLite takes the row of ``max(valid_from)`` per key (its bare-column rule: the other
    columns are that row's), PostgreSQL the first row per key in (key, valid_from DESC)
    order (``DISTINCT ON``)."""
    docs = read_model_docs
    if sqlite_:
        return (
            select(docs.c.key, docs.c.doc, func.max(docs.c.valid_from))
            .where(*conditions)
            .group_by(docs.c.key)
            .order_by(docs.c.key)
        )
    return (
        select(docs.c.key, docs.c.doc)
        .ext(postgresql.distinct_on(by_key(docs.c.key)))
        .where(*conditions)
        .order_by(by_key(docs.c.key), docs.c.valid_from.desc())
    )


def _current_keys(
    sqlite_: bool, model: Any, by_key: Callable[[ColumnElement[str]], ColumnElement[str]]
) -> Any:
    """The keys whose latest row is no tombstone, in key order (the first ``size``)."""
    docs = read_model_docs
    if sqlite_:
        return (
            select(docs.c.key, func.max(docs.c.valid_from))
            .where(docs.c.model == model)
            .group_by(docs.c.key)
            .having(docs.c.doc.is_not(None))  # the bare column: the latest row's
            .order_by(docs.c.key)
        )
    latest = (
        select(docs.c.key, docs.c.doc.is_(None).label("gone"))
        .ext(postgresql.distinct_on(by_key(docs.c.key)))
        .where(docs.c.model == model)
        .order_by(by_key(docs.c.key), docs.c.valid_from.desc())
        .subquery("latest")
    )
    return select(latest.c.key).where(latest.c.gone.is_(False)).order_by(by_key(latest.c.key))


def _sparse_page(
    sqlite_: bool,
    model: Any,
    position: Any,
    last: Any,
    size: Any,
    after: Comparison,
    by_key: Callable[[ColumnElement[str]], ColumnElement[str]],
) -> Any:
    """A page of the documents at ``position`` among the versions begun by then: their
    range of the ``valid_from`` index, each key's latest there (sorted by key), then
    their documents by primary key (a tombstone's doc is None, as in :func:`_latest`). SQLite
    is told the index and PostgreSQL gets the range as a materialized CTE: neither plans
    the walk along the key instead."""
    docs = read_model_docs
    if sqlite_:
        # SQLite's compiler renders no table hints (Select.with_hint is ignored there),
        # so the index is named in the FROM text itself.
        begun = (
            select(column("key"), column("valid_from"))
            .select_from(text(f"{DOCUMENTS_TABLE} INDEXED BY ix_{DOCUMENTS_TABLE}_valid_from"))
            .where(column("model") == model, column("valid_from") <= position)
            .cte("begun")
        )
    else:
        begun = (
            select(docs.c.key, docs.c.valid_from)
            .where(docs.c.model == model, docs.c.valid_from <= position)
            .cte("begun")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
    latest = (
        select(begun.c.key, func.max(begun.c.valid_from).label("valid_from"))
        .where(after(by_key(begun.c.key), last))
        .group_by(begun.c.key)
        .order_by(by_key(begun.c.key))
        .limit(size)
        .subquery("latest")
    )
    found = docs.alias("d")
    doc = (
        select(found.c.doc)
        .where(
            found.c.model == model,
            found.c.key == latest.c.key,
            found.c.valid_from == latest.c.valid_from,
        )
        .scalar_subquery()
    )
    # A probe per key of the page (a join let SQLite walk the model's rows instead).
    return select(latest.c.key, doc).order_by(by_key(latest.c.key))
