"""The in-memory twin of the read-model history: same contract, no database.

Bound to one :class:`InMemoryEventStore`: every write runs in one of its transactions
(the caller's ``within``, or one of its own), so an operator action commits with the
caller's ``$audit`` append, and a transaction that raises takes the change back through
``on_rollback``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import orjson

from core.events import wall_clock_micros
from core.projections.definition import JsonDoc
from core.projections.history.port import (
    ACTIVE,
    CURRENT,
    FAULTED,
    FIRST_PAGE,
    KEEP_RUNS,
    Change,
    Fault,
    HistoryStore,
    ModelStatus,
    RunRecord,
    chain_versions,
    distinct_states,
)
from core.store.memory import InMemoryEventStore
from core.store.port import WriteTransaction

__all__ = ["InMemoryHistoryStore"]


@dataclass(frozen=True, slots=True)
class _Version:
    """One stored version of a document (replaced by a copy with ``valid_to`` set when
    the next one begins: an undo keeps the lists it replaced)."""

    valid_from: int
    valid_to: int
    doc: str


#: A read model's documents: key -> its versions by ``valid_from``.
_Documents = dict[str, list[_Version]]


class InMemoryHistoryStore(HistoryStore):
    """The read models of one in-memory store: documents with history, checkpoints, runs.

    Args:
        store: the in-memory event store whose transactions these read models join.
        keep_runs: how many runs of each read model the run history keeps (the newest).
    """

    store: InMemoryEventStore

    def __init__(self, store: InMemoryEventStore, *, keep_runs: int = KEEP_RUNS) -> None:
        self.store = store
        self.keep_runs = keep_runs
        self._lock = threading.RLock()  # taken after the store's transaction, never before
        self._statuses: dict[str, ModelStatus] = {}
        self._documents: dict[str, _Documents] = {}
        self._keys: dict[str, list[str]] = {}  # model -> its documents' keys, sorted
        self._runs: list[tuple[int, RunRecord]] = []  # (id, run), oldest first
        self._next_run = 1

    @contextmanager
    def _writing(self, within: WriteTransaction | None) -> Iterator[WriteTransaction]:
        """The caller's transaction, or one of our own on the store, with our lock held."""
        if within is not None:
            with self._lock:
                yield within
        else:
            with self.store.transaction() as unit, self._lock:
                yield unit

    def _set_status(self, unit: WriteTransaction, status: ModelStatus) -> None:
        """Store a status; a rollback of ``unit`` puts the previous one back."""
        model = status.model
        before = self._statuses.get(model)
        self._statuses[model] = status

        def undo() -> None:
            with self._lock:
                if before is None:
                    self._statuses.pop(model, None)
                else:
                    self._statuses[model] = before

        unit.on_rollback(undo)

    def _set_documents(self, unit: WriteTransaction, model: str, documents: _Documents) -> None:
        """Replace a model's documents; a rollback of ``unit`` puts the previous ones back."""
        before = self._documents.get(model, {}), self._keys.get(model, [])
        self._documents[model] = documents
        self._keys[model] = sorted(documents)

        def undo() -> None:
            with self._lock:
                self._documents[model], self._keys[model] = before

        unit.on_rollback(undo)

    # -- read models ------------------------------------------------------------------------

    def ensure(
        self, name: str, version: int, *, within: WriteTransaction | None = None
    ) -> ModelStatus:
        """The status of ``name:version``, registering it (checkpoint 0) if it is new."""
        model = f"{name}:{version}"
        found = self.status(model)
        if found is not None:
            return found
        with self._writing(within) as unit:
            status = self._statuses.get(model)
            if status is None:
                status = ModelStatus(
                    model, name, version, 0, ACTIVE, 0, None, None, None, wall_clock_micros()
                )
                self._set_status(unit, status)
            return status

    def status(self, model: str) -> ModelStatus | None:
        """One read model's status, or None if it was never run."""
        with self._lock:
            return self._statuses.get(model)

    def statuses(self) -> list[ModelStatus]:
        """Every read model that has run, by name and version."""
        with self._lock:
            found = list(self._statuses.values())
        return sorted(found, key=lambda status: (status.name, status.version))

    def reset(
        self, model: str, *, state: str = ACTIVE, within: WriteTransaction | None = None
    ) -> None:
        """Forget a read model's documents and history; its checkpoint goes back to 0.

        ``state`` is ACTIVE (rebuild from the first event) or RETIRED (stop keeping it:
        schedulers leave it alone until it is rebuilt).
        """
        with self._writing(within) as unit:
            self._set_documents(unit, model, {})
            status = self._statuses.get(model)
            if status is not None:
                self._set_status(
                    unit,
                    replace(
                        status,
                        checkpoint=0,
                        state=state,
                        history_from=0,
                        fault_position=None,
                        fault_event_id=None,
                        fault_error=None,
                        updated_at=wall_clock_micros(),
                    ),
                )

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
        with self._writing(within) as unit:
            status = self._statuses.get(model)
            if status is None or status.state not in wanted:
                return False
            moved = replace(status, state=state, updated_at=wall_clock_micros())
            if state != FAULTED:
                moved = replace(moved, fault_position=None, fault_event_id=None, fault_error=None)
            self._set_status(unit, moved)
            return True

    def skip_fault(
        self, model: str, *, within: WriteTransaction | None = None
    ) -> ModelStatus | None:
        """Move a faulted read model's checkpoint over the event it faulted on and make it
        active again; returns the status it had (None if it was not faulted there: another
        retry, reset or skip came first, and nothing changed)."""
        with self._writing(within) as unit:
            status = self._statuses.get(model)
            if (
                status is None
                or status.state != FAULTED
                or status.fault_position is None
                or status.checkpoint != status.fault_position - 1
            ):
                return None
            self._set_status(
                unit,
                replace(
                    status,
                    checkpoint=status.fault_position,
                    state=ACTIVE,
                    fault_position=None,
                    fault_event_id=None,
                    fault_error=None,
                    updated_at=wall_clock_micros(),
                ),
            )
            return status

    def retain(self, model: str, since: int, *, within: WriteTransaction | None = None) -> int:
        """Keep history from position ``since`` on: versions no longer valid at any
        position >= ``since`` are deleted. Returns how many were.

        The read model at an earlier position is then folded from the log instead.
        """
        with self._writing(within) as unit:
            kept: _Documents = {}
            deleted = 0
            for key, versions in self._documents.get(model, {}).items():
                alive = [version for version in versions if version.valid_to > since]
                deleted += len(versions) - len(alive)
                if alive:
                    kept[key] = alive
            if deleted:
                self._set_documents(unit, model, kept)
            status = self._statuses.get(model)
            if status is not None and status.history_from < since:
                self._set_status(
                    unit, replace(status, history_from=since, updated_at=wall_clock_micros())
                )
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
        with self._writing(within) as unit:
            status = self._statuses.get(model)
            if status is None or status.leased_to(now) not in (None, owner):
                return False
            expires = now + int(seconds * 1_000_000)
            self._set_status(unit, replace(status, lease_owner=owner, lease_expires=expires))
            return True

    def release_lease(
        self, model: str, owner: str, *, within: WriteTransaction | None = None
    ) -> None:
        """Give a lease back (nothing happens if ``owner`` does not hold it)."""
        with self._writing(within) as unit:
            status = self._statuses.get(model)
            if status is not None and status.lease_owner == owner:
                self._set_status(unit, replace(status, lease_owner=None, lease_expires=0))

    # -- documents --------------------------------------------------------------------------

    def current_doc(self, model: str, key: str) -> bytes | None:
        """The latest version of a document as stored JSON, or None."""
        with self._lock:
            versions = self._documents.get(model, {}).get(key)
            if versions and versions[-1].valid_to == CURRENT:
                return versions[-1].doc.encode()
        return None

    def current_keys(self, model: str, *, limit: int) -> set[str] | None:
        """The keys of a read model's current documents, or None if there are more than
        ``limit``."""
        with self._lock:
            documents = self._documents.get(model, {})
            keys = {key for key, versions in documents.items() if versions[-1].valid_to == CURRENT}
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

        Pages as the SQL store reads them: the lock is held for one page at a time.
        """
        loads = orjson.loads
        last = after_key if after_key is not None else ""  # "" is a key too
        first = after_key is None
        size = min(FIRST_PAGE, page_size)
        while True:
            with self._lock:
                page = self._page(model, position, last, first, size)
            for key, doc in page:
                yield key, loads(doc)
            if len(page) < size:
                return
            last, first = page[-1][0], False
            size = min(size * 2, page_size)

    def _page(
        self, model: str, position: int | None, last: str, first: bool, size: int
    ) -> list[tuple[str, str]]:
        """Up to ``size`` documents alive at ``position`` from key ``last`` on (or after it)."""
        documents = self._documents.get(model, {})
        keys = self._keys.get(model, [])
        start = (bisect.bisect_left if first else bisect.bisect_right)(keys, last)
        page: list[tuple[str, str]] = []
        for key in keys[start:]:
            found = _valid_at(documents[key], position)
            if found is not None:
                page.append((key, found.doc))
                if len(page) == size:
                    break
        return page

    def versions_of(self, model: str, key: str) -> list[tuple[int, int, JsonDoc]]:
        """Every stored version of one document, oldest first: (valid_from, valid_to, doc)."""
        with self._lock:
            versions = list(self._documents.get(model, {}).get(key, ()))
        return [(v.valid_from, v.valid_to, orjson.loads(v.doc)) for v in versions]

    def document_at(self, model: str, key: str, position: int | None = None) -> JsonDoc | None:
        """One document after ``position`` (None: now), or None."""
        with self._lock:
            found = _valid_at(self._documents.get(model, {}).get(key, []), position)
        if found is None:
            return None
        doc: JsonDoc = orjson.loads(found.doc)
        return doc

    def versions(self, model: str) -> int:
        """How many document versions the history holds (current ones included)."""
        with self._lock:
            return sum(len(versions) for versions in self._documents.get(model, {}).values())

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
        """
        chain = chain_versions(model, changes)
        with self._writing(None) as unit:
            status = self._statuses.get(model)
            if (
                status is None
                or status.checkpoint != expected_checkpoint
                or status.state != ACTIVE
                or (lease is not None and status.lease_owner != lease[0])
            ):
                return False
            moved = replace(status, checkpoint=checkpoint, updated_at=wall_clock_micros())
            if lease is not None:
                moved = replace(moved, lease_expires=lease[1])
            if fault is not None:
                moved = replace(
                    moved,
                    state=FAULTED,
                    fault_position=fault.position,
                    fault_event_id=fault.event_id,
                    fault_error=fault.error,
                )
            documents = self._documents.setdefault(model, {})
            keys = self._keys.setdefault(model, [])
            # Only the chained keys' version lists change: copies of those are the undo.
            touched = {key: documents.get(key) for _, _, key in chain.closes}
            for first, _, key in chain.closes:
                versions = documents.get(key)
                if versions and versions[-1].valid_to == CURRENT:
                    versions = [*versions[:-1], replace(versions[-1], valid_to=first)]
                    documents[key] = versions
            for _, key, valid_from, valid_to, doc in chain.inserts:
                documents[key] = [*documents.get(key, []), _Version(valid_from, valid_to, doc)]
            for key in touched:
                if touched[key] is None and key in documents:
                    bisect.insort(keys, key)

            def undo() -> None:
                with self._lock:
                    for key, versions in touched.items():
                        if versions is None:
                            if documents.pop(key, None) is not None:
                                keys.remove(key)
                        else:
                            documents[key] = versions

            unit.on_rollback(undo)
            self._set_status(unit, moved)
        return True

    # -- runs -------------------------------------------------------------------------------

    def record_run(self, run: RunRecord) -> None:
        """Keep a run in the run history (and forget the read model's oldest runs beyond
        ``keep_runs``)."""
        with self._writing(None) as unit:
            before, next_run = list(self._runs), self._next_run
            self._runs.append((self._next_run, run))
            self._next_run += 1
            ids = [number for number, kept in self._runs if kept.model == run.model]
            if len(ids) > self.keep_runs:
                newest_dropped = ids[-self.keep_runs - 1]
                self._runs = [
                    (number, kept)
                    for number, kept in self._runs
                    if kept.model != run.model or number > newest_dropped
                ]

            def undo() -> None:
                with self._lock:
                    self._runs, self._next_run = before, next_run

            unit.on_rollback(undo)

    def runs(
        self, model: str | None = None, *, limit: int = 100, system: bool = True
    ) -> list[RunRecord]:
        """The newest runs first (of one read model, or of all; with ``system=False``, of
        all but the rows named ``$...``, such as relays' checkpoints)."""
        with self._lock:
            found = [
                run
                for _, run in reversed(self._runs)
                if (run.model == model if model is not None else system or run.model[:1] != "$")
            ]
        return found[:limit]


def _valid_at(versions: Sequence[_Version], position: int | None) -> _Version | None:
    """The version valid after ``position`` (None: the current one), if any."""
    if not versions:
        return None
    if position is None:
        return versions[-1] if versions[-1].valid_to == CURRENT else None
    index = bisect.bisect_right(versions, position, key=lambda version: version.valid_from)
    if index == 0:
        return None
    found = versions[index - 1]
    return found if found.valid_to > position else None
