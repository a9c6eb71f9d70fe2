"""The read-model history port: what every backend offers, and the values they share.

Every document version is valid for the positions ``valid_from <= p < valid_to``
(``CURRENT`` while it is the latest): the read model at a position is an index range,
not a replay. A read model's checkpoint (the last position it reflects) changes in the
same transaction as its documents, guarded by compare-and-set, so two runners never
apply a batch twice.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from core.projections.definition import JsonDoc
from core.store.port import EventStore, WriteTransaction
from core.store.schema import CURRENT

__all__ = [
    "ACTIVE",
    "CURRENT",
    "DUMP_OPTIONS",
    "FAULTED",
    "FIRST_PAGE",
    "KEEP_RUNS",
    "PAUSED",
    "RETIRED",
    "STATES",
    "Change",
    "Fault",
    "HistoryStore",
    "ModelStatus",
    "RunRecord",
    "VersionChain",
    "chain_versions",
    "version_rows",
]

#: Runs kept per read model in the run history (the oldest go first).
KEEP_RUNS: Final = 10_000
#: A document as stored: compact JSON, keys sorted (equal documents, equal bytes).
DUMP_OPTIONS: Final = orjson.OPT_SORT_KEYS
#: The first page of documents read: a caller showing 50 does not wait for 1,000. Each
#: later page doubles, up to the caller's ``page_size``.
FIRST_PAGE: Final = 64

#: The stored states of a read model. ``active`` ones are run; the others wait for an
#: operator (resume, retry or skip, rebuild).
ACTIVE: Final = "active"
PAUSED: Final = "paused"
FAULTED: Final = "faulted"
RETIRED: Final = "retired"
STATES: Final = (ACTIVE, PAUSED, FAULTED, RETIRED)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One read model (a projection version) as stored: its checkpoint and state."""

    model: str
    name: str
    version: int
    checkpoint: int
    state: str
    history_from: int
    fault_position: int | None
    fault_event_id: str | None
    fault_error: str | None
    updated_at: int
    lease_owner: str | None = None
    lease_expires: int = 0  # microseconds since the epoch

    def leased_to(self, now: int) -> str | None:
        """The worker holding the lease at ``now`` (microseconds), if any."""
        return self.lease_owner if self.lease_owner and self.lease_expires > now else None


@dataclass(frozen=True, slots=True)
class Change:
    """A document written (``doc`` as stored JSON) or deleted (None) at ``position``."""

    key: str
    position: int
    doc: bytes | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a projection: when, how long, which positions, and how it ended."""

    model: str
    started_at: int  # microseconds since the epoch
    duration_us: int
    from_position: int  # the checkpoint it started after
    to_position: int  # the checkpoint it left
    events: int  # events applied
    outcome: str  # "ok", "cancelled", "faulted", "conflict", "stopped", "failed"
    error: str | None = None
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values."""
        return {
            "model": self.model,
            "started_at": self.started_at,
            "duration_us": self.duration_us,
            "from_position": self.from_position,
            "to_position": self.to_position,
            "events": self.events,
            "outcome": self.outcome,
            "error": self.error,
            "worker": self.worker,
        }


@dataclass(frozen=True, slots=True)
class Fault:
    """Where a projection stopped: the event its handler raised on, and the traceback."""

    position: int
    event_id: str
    error: str


@dataclass(frozen=True, slots=True)
class VersionChain:
    """A batch's changes as document versions (see :func:`chain_versions`), as rows of
    the SQL statements that write them.

    ``closes``: (first change's position, model, key) per key changed, in key order: the
    key's current version ends there. ``inserts``: (model, key, valid_from, valid_to,
    doc) per version that begins, in key then position order.
    """

    closes: list[tuple[int, str, str]]
    inserts: list[tuple[str, str, int, int, str]]


def chain_versions(model: str, changes: Sequence[Change]) -> VersionChain:
    """The versions a batch of changes (in position order) writes: each one valid until
    the next change of its key, the last until CURRENT. A delete begins no version, nor
    does a change overwritten at the same position."""
    inserts: list[tuple[str, str, int, int, str]] = []
    following: dict[str, int] = {}  # key -> position of its next change (going backwards)
    for change in reversed(changes):
        valid_to = following.get(change.key, CURRENT)
        following[change.key] = change.position
        if change.doc is not None and valid_to != change.position:
            inserts.append((model, change.key, change.position, valid_to, change.doc.decode()))
    # In key order (the primary key's), so consecutive statements land in the same
    # pages: a 1M-event rebuild commits 2 s faster than in position order.
    closes = [(first, model, key) for key, first in sorted(following.items())]
    inserts.sort()  # (model, key, valid_from) is unique: docs are never compared
    return VersionChain(closes, inserts)


def version_rows(model: str, changes: Sequence[Change]) -> list[tuple[str, str, int, str | None]]:
    """The rows a batch of changes (in position order) appends to an append-only history:
    (model, key, valid_from, doc) per version that begins, doc None for a tombstone (the
    key deleted there), in key then position order (the primary key's, so a batch's rows
    land in the same pages). Each version is valid until the next row of its key.

    A change overwritten at the same position writes nothing, nor does a delete right
    after a delete of the same key in the batch (the key is already gone). A delete of a
    key with no version before it in the batch still writes a tombstone: whether the
    store holds one would take a query per key (the runner deletes only documents it
    holds, so it sends no such delete).
    """
    kept: dict[str, list[Change]] = {}  # key -> its changes that stay, newest first
    following: dict[str, int] = {}  # key -> position of its next change (going backwards)
    for change in reversed(changes):
        if following.get(change.key) == change.position:
            continue  # overwritten by a later change at the same position
        following[change.key] = change.position
        kept.setdefault(change.key, []).append(change)
    rows: list[tuple[str, str, int, str | None]] = []
    for key in sorted(kept):  # code-point order is UTF-8 byte order: SQLite's BINARY
        gone = False  # the key's previous row in the batch is a tombstone
        for change in reversed(kept[key]):
            if change.doc is None:
                if not gone:
                    rows.append((model, key, change.position, None))
                gone = True
            else:
                rows.append((model, key, change.position, change.doc.decode()))
                gone = False
    return rows


class HistoryStore(abc.ABC):
    """The read models of one event store: documents with history, checkpoints, runs.

    Operator actions (``ensure``, ``reset``, ``change_state``, ``skip_fault``,
    ``retain``, and the leases) take ``within``: a :class:`WriteTransaction` of the same
    store, so the change commits with the caller's appends (its ``$audit`` event), or
    neither does. Without it, each runs in a transaction of its own: inside a
    ``store.transaction()`` block, pass the block's transaction instead (a SQL store
    has one writer connection, which the block holds).

    Every backend passes the same contract suite
    (``tests/core/projections/test_history_contract.py``).
    """

    #: The event store whose transactions these read models live in.
    store: EventStore
    #: How many runs of each read model the run history keeps (the newest).
    keep_runs: int

    # -- read models ------------------------------------------------------------------------

    @abc.abstractmethod
    def ensure(
        self, name: str, version: int, *, within: WriteTransaction | None = None
    ) -> ModelStatus:
        """The status of ``name:version``, registering it (checkpoint 0) if it is new."""

    @abc.abstractmethod
    def status(self, model: str) -> ModelStatus | None:
        """One read model's status, or None if it was never run."""

    @abc.abstractmethod
    def statuses(self) -> list[ModelStatus]:
        """Every read model that has run, by name and version."""

    @abc.abstractmethod
    def reset(
        self, model: str, *, state: str = ACTIVE, within: WriteTransaction | None = None
    ) -> None:
        """Forget a read model's documents and history; its checkpoint goes back to 0.

        ``state`` is ACTIVE (rebuild from the first event) or RETIRED (stop keeping it:
        schedulers leave it alone until it is rebuilt).
        """

    @abc.abstractmethod
    def change_state(
        self,
        model: str,
        state: str,
        *,
        only_from: Sequence[str],
        within: WriteTransaction | None = None,
    ) -> bool:
        """Move a read model to ``state`` if it is in one of ``only_from``; returns whether
        it moved. Leaving FAULTED clears the fault (a retry applies the event again).

        Raises:
            ValueError: ``only_from`` names more distinct states than :data:`STATES`.
        """

    @abc.abstractmethod
    def skip_fault(
        self, model: str, *, within: WriteTransaction | None = None
    ) -> ModelStatus | None:
        """Move a faulted read model's checkpoint over the event it faulted on and make it
        active again; returns the status it had.

        The status is read and compared-and-set in one transaction: None means it was
        not faulted there (another retry, reset or skip came first), and nothing changed.
        """

    @abc.abstractmethod
    def retain(self, model: str, since: int, *, within: WriteTransaction | None = None) -> int:
        """Keep history from position ``since`` on: versions no longer valid at any
        position >= ``since`` are deleted. Returns how many were.

        The read model at an earlier position is then folded from the log instead.
        """

    # -- leases -----------------------------------------------------------------------------

    @abc.abstractmethod
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

    @abc.abstractmethod
    def release_lease(
        self, model: str, owner: str, *, within: WriteTransaction | None = None
    ) -> None:
        """Give a lease back (nothing happens if ``owner`` does not hold it)."""

    # -- documents --------------------------------------------------------------------------

    @abc.abstractmethod
    def current_doc(self, model: str, key: str) -> bytes | None:
        """The latest version of a document as stored JSON, or None."""

    @abc.abstractmethod
    def current_keys(self, model: str, *, limit: int) -> set[str] | None:
        """The keys of a read model's current documents, or None if there are more than
        ``limit``."""

    def documents_at(self, model: str, position: int | None = None) -> dict[str, Any]:
        """The read model as it was after ``position`` (None: now), as {key: doc}."""
        return dict(self.iter_documents_at(model, position))

    @abc.abstractmethod
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

        Read in pages, the first of ``FIRST_PAGE`` documents and each next one twice the
        last up to ``page_size``, so nothing holds more than a page.
        """

    @abc.abstractmethod
    def versions_of(self, model: str, key: str) -> list[tuple[int, int, JsonDoc]]:
        """Every stored version of one document, oldest first: (valid_from, valid_to, doc)."""

    @abc.abstractmethod
    def document_at(self, model: str, key: str, position: int | None = None) -> JsonDoc | None:
        """One document after ``position`` (None: now), or None."""

    @abc.abstractmethod
    def versions(self, model: str) -> int:
        """How many document versions the history holds (current ones included)."""

    # -- committing a batch -----------------------------------------------------------------

    @abc.abstractmethod
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
        """

    # -- runs -------------------------------------------------------------------------------

    @abc.abstractmethod
    def record_run(self, run: RunRecord) -> None:
        """Keep a run in the run history (and forget the read model's oldest runs beyond
        ``keep_runs``)."""

    @abc.abstractmethod
    def runs(
        self, model: str | None = None, *, limit: int = 100, system: bool = True
    ) -> list[RunRecord]:
        """The newest runs first (of one read model, or of all; with ``system=False``, of
        all but the rows named ``$...``, such as relays' checkpoints)."""


def distinct_states(only_from: Sequence[str]) -> list[str]:
    """``only_from`` without repeats, in order (a compare-and-set over states).

    Raises:
        ValueError: more distinct states than :data:`STATES` holds.
    """
    wanted = list(dict.fromkeys(only_from))
    if len(wanted) > len(STATES):
        raise ValueError(f"only_from names {len(wanted)} states; there are {len(STATES)}")
    return wanted
