"""The time-travel service: read models at any point, stepping, lineage, diff, what-if."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import EventscopeError, StoreError, last_line
from core.events import RecordedEvent, category_of
from core.projections.definition import DictView, Projection
from core.projections.history import CURRENT, open_history
from core.projections.runner import ProjectionRunner
from core.registry import Registry
from core.services.handle import OpenStore, StoreHandle
from core.services.plugins import Plugins
from core.store import EventFilter, SqlEventStore
from core.timetravel.diff import DocumentDiff, collect_diff, diff_documents, summarize_diff
from core.timetravel.lineage import (
    DocumentChange,
    EventEffect,
    apply_one_event,
    changes_by_fold,
    changes_of,
)
from core.timetravel.reference import Point, ReadModelRef
from core.timetravel.snapshots import FoldSnapshots
from core.timetravel.streams import StreamState
from core.upcasting import Upcasters, UpcastFailed

__all__ = [
    "PluginFileFailed",
    "ProjectionHandlerFailed",
    "ReadModelAt",
    "Replay",
    "TimeTravel",
    "WhatIf",
]


class ProjectionHandlerFailed(EventscopeError):
    """A projection's handler raised while a read model was folded for a replay."""


class PluginFileFailed(EventscopeError):
    """A plugin file given to a what-if is not a ``.py`` file, does not load, or brings an
    upcaster the loaded plugins already have."""


@dataclass(frozen=True, slots=True)
class Replay:
    """A read model at a point: its documents, the position it reflects, what went wrong."""

    reference: ReadModelRef
    projection: str
    position: int
    documents: dict[str, dict[str, Any]]
    upcast_failures: tuple[str, ...] = ()
    source: str = "fold"  # "history": read from the read model's history; "fold": replayed


@dataclass(frozen=True, slots=True)
class ReadModelAt:
    """A read model at a point, located but not read: which projection version, which
    position, and whether its history answers (else the log is folded)."""

    reference: ReadModelRef
    projection: type[Projection]
    position: int
    from_history: bool

    @property
    def model(self) -> str:
        """``name:version``."""
        return self.projection.reference()

    @property
    def source(self) -> str:
        """``history`` or ``fold``."""
        return "history" if self.from_history else "fold"


@dataclass(frozen=True, slots=True)
class WhatIf:
    """A projection replayed into a scratch database, compared with a live read model."""

    candidate: str  # name:version replayed
    against: str  # the live reference it was compared with
    position: int  # the point both were taken at
    diff: Mapping[str, Any]  # the contract diff from ``against`` to the candidate, or a summary

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return {
            "candidate": self.candidate,
            "against": self.against,
            "position": self.position,
            "diff": self.diff,
        }


class TimeTravel:
    """Read models and streams at any point of the log (DESIGN §5): from history where
    a projection's runner has passed the point, else folded from the log (from the
    nearest snapshot of an earlier fold).

    Args:
        handle: the store.
        plugins: the projections, upcasters and evolvers.
    """

    def __init__(self, handle: StoreHandle, plugins: Plugins) -> None:
        self._handle = handle
        self._plugins = plugins
        self._snapshots = FoldSnapshots()
        self._snapshots_for = plugins.generation
        self._snapshots_lock = threading.Lock()

    @property
    def snapshots(self) -> FoldSnapshots:
        """Folds of read models without history, kept so repeated seeks fold less
        (dropped when the plugins are reloaded: a handler may have changed)."""
        with self._snapshots_lock:
            if self._snapshots_for != self._plugins.generation:
                self._snapshots = FoldSnapshots(self._snapshots.budget)
                self._snapshots_for = self._plugins.generation
            return self._snapshots

    # -- where a point is ---------------------------------------------------------------------

    def resolve_position(self, reference: ReadModelRef) -> int:
        """The log position a reference's point stands for (clamped to the head)."""
        with self._handle.use() as opened:
            return _position_of(opened, reference)

    def locate(self, reference: ReadModelRef | str) -> ReadModelAt:
        """Where a read model at a point comes from: its history, when its runner has
        passed the point (and history is kept there), else a fold of the log.

        Raises:
            InvalidReference: the reference does not parse (names the part).
            UnknownProjection: no such projection or version.
        """
        ref = reference if isinstance(reference, ReadModelRef) else ReadModelRef.parse(reference)
        projection = self._plugins.registry.projection(ref.name, ref.version)
        with self._handle.use() as opened:
            position = _position_of(opened, ref)
            history = opened.history
            status = history.status(projection.reference()) if history is not None else None
        kept = status is not None and status.history_from <= position <= status.checkpoint
        return ReadModelAt(ref, projection, position, kept)

    # -- documents ----------------------------------------------------------------------------

    def iter_documents(
        self, at: ReadModelAt, *, after_key: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """A located read model's (key, document) pairs in key order, after ``after_key``:
        streamed in pages from history, or sorted out of a fold."""
        if at.from_history:
            with self._handle.use() as opened:
                history = opened.require_history()
                head = opened.store.head_position()
                position = None if at.position >= head else at.position
                yield from history.iter_documents_at(at.model, position, after_key=after_key)
            return
        for key, doc in self._fold(at).documents.items():  # sorted by the fold
            if after_key is None or key > after_key:
                yield key, doc

    def document(self, at: ReadModelAt, key: str) -> dict[str, Any] | None:
        """One document of a located read model (one index probe from history)."""
        if at.from_history:
            with self._handle.use() as opened:
                return opened.require_history().document_at(at.model, key, at.position)
        return self._fold(at).documents.get(key)

    def replay(self, reference: ReadModelRef | str) -> Replay:
        """A read model at a point: from its history when its runner has passed the
        point, else folded from the log (upcasting applied).

        Raises:
            InvalidReference: the reference does not parse.
            UnknownProjection: no such projection or version.
            ProjectionHandlerFailed: a handler raised during the fold.
        """
        at = self.locate(reference)
        if at.from_history:
            documents = dict(self.iter_documents(at))
            return Replay(at.reference, at.model, at.position, documents, (), "history")
        return self._fold(at)

    def diff(self, before: ReadModelRef | str, after: ReadModelRef | str) -> DocumentDiff:
        """The read model ``after`` compared with ``before`` (two versions, two points, or
        both), as a streaming merge by key (see :mod:`core.timetravel.diff`)."""
        first, second = self.locate(before), self.locate(after)
        return diff_documents(self.iter_documents(first), self.iter_documents(second))

    # -- stepping and lineage -----------------------------------------------------------------

    def step(self, reference: ReadModelRef | str) -> EventEffect:
        """What the event at the reference's point did to the read model: each document
        it changed, before and after (stepping through time one event at a time).

        Raises:
            InvalidReference, UnknownProjection: as :meth:`locate`.
            StoreError: there is no event at that point (an empty log, or position 0).
        """
        at = self.locate(reference)
        event = self._event_at(at.position) if at.position > 0 else None
        if event is None:
            raise StoreError(f"there is no event at position {at.position} of the log")
        before = self.locate(replace(at.reference, point=Point("position", at.position - 1)))
        if before.from_history:
            return apply_one_event(at.projection, event, lambda key: self.document(before, key))
        documents = self._fold(before).documents
        return apply_one_event(at.projection, event, documents.get)

    def lineage(self, reference: ReadModelRef | str, key: str) -> list[DocumentChange]:
        """Every event that changed one document, up to the reference's point, oldest
        first, with the change each made (from history when it reaches back to the first
        event, else by folding the log).

        Raises:
            InvalidReference, UnknownProjection: as :meth:`locate`.
        """
        at = self.locate(reference)
        with self._handle.use() as opened:
            history = opened.history
            status = history.status(at.model) if history is not None else None
            if (
                history is not None
                and status is not None
                and status.history_from == 0
                and status.checkpoint >= at.position
            ):
                versions = history.versions_of(at.model, key)
                changes = [
                    c for c in changes_of(key, versions, CURRENT) if c.position <= at.position
                ]
            else:
                where = EventFilter(types=at.projection.event_types(), to_position=at.position)
                events = self._plugins.registry.upcasters.upcast_all(
                    opened.store.read(where), _raise_upcast, keep_raw=False
                )
                changes = changes_by_fold(at.projection, events, key)
            return [replace(c, event=self._event_at(c.position)) for c in changes]

    def stream_state(self, stream_id: str, version: int | None = None) -> StreamState:
        """A stream folded by its category's ``@evolver`` up to ``version`` (default: its
        last), upcasting applied: what a command on that stream would have decided on."""
        registry = self._plugins.registry
        folding = registry.evolvers.get(category_of(stream_id))
        state = folding.initial() if folding is not None else None
        reached: int | None = None
        limit = None if version is None else version + 1
        upcast = registry.upcasters.upcast
        with self._handle.use() as opened:
            for event in opened.store.read_stream(stream_id, limit=limit):
                reached = event.version
                if folding is not None:
                    state = folding.function(state, upcast(event, keep_raw=False))
        return StreamState(stream_id, reached, folding.category if folding else None, state)

    # -- what-if ------------------------------------------------------------------------------

    def what_if(
        self,
        candidate: ReadModelRef | str,
        against: ReadModelRef | str,
        *,
        summary: bool = False,
    ) -> WhatIf:
        """Replay a projection version into a scratch database up to its point, without
        touching the store's read models, and compare the live read model ``against``
        with it (at the same point, unless ``against`` names one).

        The candidate is any loaded projection version, such as one from a plugin folder
        that no worker runs yet. The scratch database is deleted afterwards.

        Raises:
            InvalidReference, UnknownProjection: as :meth:`locate`.
            ProjectionHandlerFailed: the candidate's handler raised (where is named).
        """
        wanted = candidate if isinstance(candidate, ReadModelRef) else ReadModelRef.parse(candidate)
        registry = self._plugins.registry
        projection = registry.projection(wanted.name, wanted.version)
        return self._what_if(projection, registry.upcasters, wanted, against, summary=summary)

    def what_if_file(
        self,
        path: str | os.PathLike[str],
        candidate: ReadModelRef | str,
        against: ReadModelRef | str,
        *,
        summary: bool = False,
    ) -> WhatIf:
        """:meth:`what_if` for a projection defined in a plugin file not installed yet:
        what would this file change?

        The file is loaded as an extra plugin from a temporary copy (as ``what-if
        --plugin-file`` does); the candidate comes from it, so a file may also redefine a
        loaded version. Events are upcast by the loaded plugins' upcasters and the file's.

        Args:
            path: a plugin ``.py`` file (it imports ``core.api``, as any plugin does).
            candidate: the version of the file's projection to replay, ``NAME[:VERSION][@POINT]``.
            against: the live read model to compare it with.
            summary: counts only (:func:`~core.timetravel.diff.summarize_diff`).

        Raises:
            PluginFileFailed: the file is missing, not ``.py``, fails to import, or its
                upcasters clash with the loaded ones (the message is one line).
            InvalidReference, UnknownProjection: as :meth:`what_if` (the file lacks it).
            ProjectionHandlerFailed: the candidate's handler raised.
        """
        source = Path(path)
        if not source.is_file() or source.suffix != ".py":
            raise PluginFileFailed(f"{source}: not a plugin .py file")
        wanted = candidate if isinstance(candidate, ReadModelRef) else ReadModelRef.parse(candidate)
        with tempfile.TemporaryDirectory(prefix="eventscope-plugin-") as folder:
            # A name starting with _ or . would be skipped as private by the folder scan.
            shutil.copyfile(source, Path(folder) / (source.name.lstrip("_.") or "plugin.py"))
            extra = Registry.discover([folder], environ={}, builtin=False, entry_points=False)
            try:
                if extra.failed:
                    error = extra.failed[0].error or "failed to load"
                    raise PluginFileFailed(f"{source.name}: {last_line(error)}")
                projection = extra.projection(wanted.name, wanted.version)
                loaded = self._plugins.registry.plugins
                try:
                    upcasters = Upcasters(
                        u for info in [*loaded, *extra.plugins] for u in info.upcasters
                    )
                except ValueError as error:
                    raise PluginFileFailed(f"{source.name}: {error}") from None
                return self._what_if(projection, upcasters, wanted, against, summary=summary)
            finally:
                _forget_modules_under(folder)

    def _what_if(
        self,
        projection: type[Projection],
        upcasters: Upcasters,
        wanted: ReadModelRef,
        against: ReadModelRef | str,
        *,
        summary: bool,
    ) -> WhatIf:
        """Replay ``projection`` into a scratch database up to ``wanted``'s point and diff
        the live read model ``against`` with it."""
        live = against if isinstance(against, ReadModelRef) else ReadModelRef.parse(against)
        with self._handle.use() as opened:
            position = _position_of(opened, wanted)
            if live.point.kind == "head":
                live = replace(live, point=Point("position", position))
            with tempfile.TemporaryDirectory(prefix="eventscope-what-if-") as folder:
                scratch = SqlEventStore.open(Path(folder) / "scratch.db")
                try:
                    history = open_history(scratch)
                    assert history is not None  # a new SQL store keeps read models
                    runner = ProjectionRunner(
                        history, projection, upcasters=upcasters, source=opened.store
                    )
                    try:
                        fault = runner.run(until=position).fault
                    finally:
                        runner.close()
                    if fault is not None:
                        raise ProjectionHandlerFailed(
                            f"{projection.reference()}: its handler raised at position "
                            f"{fault.position} (event {fault.event_id}): "
                            f"{last_line(fault.error)}"
                        )
                    changes = diff_documents(
                        self.iter_documents(self.locate(live)),
                        history.iter_documents_at(projection.reference()),
                    )
                    compared = (
                        summarize_diff(changes).to_dict() if summary else collect_diff(changes)
                    )
                finally:
                    scratch.close()
        return WhatIf(projection.reference(), str(live), position, compared)

    # -- folding ------------------------------------------------------------------------------

    def _event_at(self, position: int) -> RecordedEvent | None:
        """The event at a position, upcast, or None."""
        with self._handle.use() as opened:
            where = EventFilter(from_position=position)
            found = next(opened.store.read(where, limit=1), None)
        if found is None or found.position != position:
            return None
        return self._plugins.registry.upcasters.upcast(found, keep_raw=False)

    def _fold(self, at: ReadModelAt) -> Replay:
        """Fold the log up to the point, from the nearest snapshot of an earlier fold."""
        projection = at.projection
        failures: list[str] = []

        def note(failure: UpcastFailed) -> None:
            failures.append(str(failure))

        snapshots = self.snapshots
        start, documents = snapshots.nearest(at.model, at.position)
        where = EventFilter(
            types=projection.event_types(), from_position=start + 1, to_position=at.position
        )
        last: list[RecordedEvent] = []
        view = DictView(documents)
        instance = projection()
        with self._handle.use() as opened:

            def events() -> Iterator[RecordedEvent]:
                for event in opened.store.read(where):
                    last[:] = [event]
                    yield event

            try:
                for event in self._plugins.registry.upcasters.upcast_all(events(), note):
                    instance.apply(view, event)
            except EventscopeError:
                raise
            except Exception as error:  # the plugin's handler: say where, as a fault does
                place = (
                    f" at position {last[0].position} (event {last[0].event_id})" if last else ""
                )
                raise ProjectionHandlerFailed(
                    f"{projection.reference()}: its handler raised{place}: "
                    f"{type(error).__name__}: {error}"
                ) from error
        folded = {key: view.documents[key] for key in sorted(view.documents)}
        snapshots.keep(at.model, at.position, folded)
        return Replay(at.reference, at.model, at.position, folded, tuple(failures), "fold")


def _position_of(opened: OpenStore, reference: ReadModelRef) -> int:
    head = opened.store.head_position()
    point = reference.point
    if point.kind == "position" and point.position is not None:
        return min(point.position, head)
    if point.kind == "time" and point.time is not None:
        return opened.store.position_at(point.time)
    return head


def _raise_upcast(failure: UpcastFailed) -> None:
    raise failure


def _forget_modules_under(folder: str) -> None:
    """Drop the modules imported from a temporary plugin folder from ``sys.modules``."""
    root = os.path.realpath(folder) + os.sep
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if where is not None and os.path.realpath(where).startswith(root):
            del sys.modules[name]
