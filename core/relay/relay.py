"""The relay: every stored event published to a broker, in position order, at least once
(DESIGN §8).

A relay of a name keeps its checkpoint where the store keeps read models (a row of the
read-model table, ``$relay.NAME:1``, with the same compare-and-set and lease a projection
has): two relays of one name never publish at once, and the checkpoint moves only past
a batch the broker confirmed. After a crash the next relay of that name goes on from the
checkpoint, re-sending at most the batch in flight: the event ids let the broker
(JetStream's duplicate window) or consumers (AMQP ``message_id``) drop the repeats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from core.errors import BrokerUnavailable, EventscopeError
from core.events import category_of, wall_clock_micros
from core.projections.history import HistoryStore, RunRecord
from core.relay.publishers import Message, Publisher
from core.services.projections import default_worker_name
from core.store import EventFilter
from core.store.jsonlines import export_line
from core.workspace import Workspace

__all__ = [
    "RELAY_PREFIX",
    "Relay",
    "RelayLeased",
    "RelayStatus",
    "relay_model",
    "relay_statuses",
]

#: Relays' rows in the read-model table are named ``$relay.NAME`` (version 1).
RELAY_PREFIX: Final = "$relay."
BATCH_SIZE: Final = 1_000
LEASE_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.2
#: A relay writes a run record (events, seconds) at least this often while it publishes,
#: and one when the broker fails: what ``relays`` and the console read its rate and last
#: error from, in another process.
RECORD_SECONDS: Final = 5.0
#: The rate is taken over the runs of the last minute (as a projection's throughput is).
RATE_WINDOW_US: Final = 60_000_000
#: Run records read for a status: a minute's, and the newest failure's if among them.
RUNS_READ: Final = 100
#: Waits between retries while the broker is down: doubling from the first to the last.
BACKOFF: Final = (0.5, 10.0)
_log = logging.getLogger(__name__)


class RelayLeased(EventscopeError):
    """Another relay of the same name holds the lease (it publishes now)."""


def relay_model(name: str) -> str:
    """The read-model row that keeps a relay's checkpoint and lease."""
    return f"{RELAY_PREFIX}{name}:1"


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """A relay as ``relay`` prints it and the console shows it."""

    name: str
    state: str  # "stopped", "broker unavailable", "publishing" or "caught up"
    checkpoint: int
    head: int
    lag: int  # events behind the head
    lag_seconds: float  # how old the oldest event not yet published is
    published: int  # events this process published (0 when read from the store)
    rate: float  # events per second while publishing, over the last minute's runs
    worker: str | None  # who holds the lease now
    last_error: str | None  # the newest failure (the broker's), current or past
    last_error_at: int | None  # when (microseconds since the epoch)

    def to_dict(self) -> dict[str, Any]:
        """The JSON line (the shape of ``projections list``'s)."""
        return {
            "relay": self.name,
            "state": self.state,
            "checkpoint": self.checkpoint,
            "head": self.head,
            "lag": self.lag,
            "lag_seconds": round(self.lag_seconds, 3),
            "published": self.published,
            "rate": round(self.rate, 1),
            "worker": self.worker,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def relay_statuses(workspace: Workspace) -> list[RelayStatus]:
    """Every relay that ever ran on this store, as stored (by name): its checkpoint and
    lease, and the rate and last error its run records hold."""
    history = workspace.projections.history()
    head = workspace.events.head_position()
    now = wall_clock_micros()
    found = []
    for status in history.statuses():
        if not status.name.startswith(RELAY_PREFIX):
            continue
        found.append(
            _status(
                workspace,
                status.name[len(RELAY_PREFIX) :],
                status.checkpoint,
                head,
                status.leased_to(now),
                history.runs(status.model, limit=RUNS_READ),
                now,
            )
        )
    return sorted(found, key=lambda s: s.name)


def _status(
    workspace: Workspace,
    name: str,
    checkpoint: int,
    head: int,
    worker: str | None,
    runs: list[RunRecord],
    now: int,
    published: int = 0,
) -> RelayStatus:
    """A relay's status from its stored checkpoint, lease and runs (newest first)."""
    lag, lag_seconds = workspace.events.behind(checkpoint, head, now)
    failed = next((run for run in runs if run.error is not None), None)
    recent = [run for run in runs if run.error is None and now - run.started_at <= RATE_WINDOW_US]
    busy = sum(run.duration_us for run in recent)
    events = sum(run.events for run in recent)
    if worker is None:
        state = "stopped"
    elif runs and runs[0].error is not None:
        state = "broker unavailable"
    else:
        state = "caught up" if lag == 0 else "publishing"
    return RelayStatus(
        name,
        state,
        checkpoint,
        head,
        lag,
        lag_seconds,
        published,
        events * 1_000_000 / busy if busy else 0.0,
        worker,
        failed.error if failed is not None else None,
        failed.started_at if failed is not None else None,
    )


class Relay:
    """Publishes a store's events through a publisher, checkpointed in the store.

    Args:
        workspace: the store (writable: the checkpoint is written there, or in the sidecar
            of another tool's store).
        connect: opens the publisher (``core.relay.publishers.open_publisher`` with its
            URL); called when there is something to publish and again after the broker
            was unavailable at connection.
        name: the relay's name: its checkpoint and lease.
        worker: who runs it, for the lease (default: ``relay:host:pid``).
        batch_size: events read, published and checkpointed at a time.
        lease_seconds: how long the lease lasts without a batch renewing it.
        on_batch: called after each confirmed batch with (events, seconds) (metrics).
        on_fault: called with the error each time a batch could not be published.
    """

    def __init__(
        self,
        workspace: Workspace,
        connect: Callable[[], Publisher],
        *,
        name: str = "default",
        worker: str | None = None,
        batch_size: int = BATCH_SIZE,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        backoff: tuple[float, float] = BACKOFF,
        on_batch: Callable[[int, float], None] | None = None,
        on_fault: Callable[[BrokerUnavailable], None] | None = None,
    ) -> None:
        self.workspace = workspace
        self._connect = connect
        self._publisher: Publisher | None = None
        self.name = name
        self.worker = worker or default_worker_name("relay")
        self.model = relay_model(name)
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.backoff = backoff
        self.on_batch = on_batch
        self.on_fault = on_fault
        self.published = 0
        self.last_error: str | None = None
        self._history: HistoryStore = workspace.projections.history()

    # -- status -------------------------------------------------------------------------------

    @property
    def checkpoint(self) -> int:
        """The last position published and confirmed (0: none)."""
        status = self._history.status(self.model)
        return status.checkpoint if status is not None else 0

    def status(self) -> RelayStatus:
        """This relay now: its checkpoint, lag, rate, what this process published, and
        its last error."""
        now = wall_clock_micros()
        stored = self._history.status(self.model)
        checkpoint = stored.checkpoint if stored is not None else 0
        worker = stored.leased_to(now) if stored is not None else None
        runs = self._history.runs(self.model, limit=RUNS_READ)
        return _status(
            self.workspace,
            self.name,
            checkpoint,
            self.workspace.events.head_position(),
            worker,
            runs,
            now,
            self.published,
        )

    # -- running ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, from_position: int | None = None) -> None:
        """Publish until ``stop`` is set: the events after the checkpoint, then each new one.

        ``from_position`` starts a relay that has published nothing yet at that position
        (the events before it are never published); a relay with a checkpoint goes on
        from it. The lease is given back on the way out.

        Raises:
            RelayLeased: another relay of this name holds the lease.
            StoreError: the store failed (the broker failing is retried, never raised).
        """
        name, version = self.model.rsplit(":", 1)
        self._history.ensure(name, int(version))
        if not self._history.acquire_lease(self.model, self.worker, seconds=self.lease_seconds):
            holder = self._history.status(self.model)
            owner = holder.lease_owner if holder is not None else "another relay"
            raise RelayLeased(f"relay {self.name!r} is running as {owner}: one at a time")
        try:
            checkpoint = self.checkpoint
            if from_position is not None and checkpoint == 0 and from_position > 1:
                checkpoint = self._commit(0, from_position - 1)
            self._loop(stop, checkpoint)
        finally:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None
            self._history.release_lease(self.model, self.worker)

    def _loop(self, stop: threading.Event, checkpoint: int) -> None:
        wait, down_since = self.backoff[0], None
        last_renewal = time.monotonic()
        stretch = _Stretch(checkpoint)
        try:
            while not stop.is_set():
                rows = list(
                    self.workspace.events.export_rows(
                        EventFilter(from_position=checkpoint + 1), limit=self.batch_size
                    )
                )
                if not rows:
                    stretch = self._record(stretch, checkpoint)  # caught up
                    if time.monotonic() - last_renewal > self.lease_seconds / 3:
                        checkpoint = self._commit(checkpoint, checkpoint)  # renews the lease
                        last_renewal = time.monotonic()
                    stop.wait(self.poll_seconds)
                    continue
                messages = [
                    Message(
                        row.event_id,
                        category_of(row.stream_id),
                        row.type,
                        row.stream_id,
                        row.position,
                        export_line(row).rstrip(b"\n"),
                    )
                    for row in rows
                ]
                began = time.perf_counter()
                began_at = wall_clock_micros()
                try:
                    if self._publisher is None:
                        self._publisher = self._connect()
                    self._publisher.publish(messages)
                except BrokerUnavailable as error:
                    self.last_error = str(error)
                    if down_since is None:  # once per outage
                        _log.warning("relay %s: broker unavailable, retrying: %s", self.name, error)
                        down_since = time.monotonic()
                        stretch = self._record(stretch, checkpoint)
                        self._record_outage(began_at, checkpoint, error)
                    if self.on_fault is not None:
                        self.on_fault(error)
                    stop.wait(wait)
                    wait = min(wait * 2, self.backoff[1])
                    continue
                if down_since is not None:
                    _log.warning(
                        "relay %s: broker back after %.1f s",
                        self.name,
                        time.monotonic() - down_since,
                    )
                    down_since, wait = None, self.backoff[0]
                seconds = time.perf_counter() - began
                checkpoint = self._commit(checkpoint, rows[-1].position)
                last_renewal = time.monotonic()
                self.published += len(rows)
                stretch.add(began_at, len(rows), seconds)
                if stretch.seconds_since_start() >= RECORD_SECONDS:
                    stretch = self._record(stretch, checkpoint)
                if self.on_batch is not None:
                    self.on_batch(len(rows), seconds)
        finally:
            if stretch.events:
                self._record(stretch, checkpoint)

    def _record_outage(self, at: int, checkpoint: int, error: BrokerUnavailable) -> None:
        """Write the start of an outage as a failed run: its error is the relay's last."""
        self._history.record_run(
            RunRecord(
                self.model, at, 0, checkpoint, checkpoint, 0, "failed", str(error), self.worker
            )
        )

    def _record(self, stretch: _Stretch, checkpoint: int) -> _Stretch:
        """Write the batches published since the last record as one run (none: nothing)."""
        if stretch.events:
            self._history.record_run(
                RunRecord(
                    self.model,
                    stretch.started_at,
                    stretch.busy_us,
                    stretch.from_position,
                    checkpoint,
                    stretch.events,
                    "ok",
                    None,
                    self.worker,
                )
            )
        return _Stretch(checkpoint)

    def _commit(self, expected: int, checkpoint: int) -> int:
        """Move the checkpoint (renewing the lease); a relay that lost its lease stops."""
        expires = wall_clock_micros() + int(self.lease_seconds * 1_000_000)
        if not self._history.commit(
            self.model, expected, checkpoint, (), lease=(self.worker, expires)
        ):
            raise RelayLeased(
                f"relay {self.name!r} lost its lease or its checkpoint moved: it stops"
            )
        return checkpoint


class _Stretch:
    """Batches published since a relay's last run record: when the first began, how many
    events, and how long the publishes took (confirms included)."""

    def __init__(self, from_position: int) -> None:
        self.from_position = from_position
        self.started_at = 0
        self.events = 0
        self.busy_us = 0

    def add(self, began_at: int, events: int, seconds: float) -> None:
        if not self.events:
            self.started_at = began_at
        self.events += events
        self.busy_us += int(seconds * 1_000_000)

    def seconds_since_start(self) -> float:
        return (wall_clock_micros() - self.started_at) / 1_000_000 if self.events else 0.0
