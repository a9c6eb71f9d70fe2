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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from core.errors import BrokerSetupError, BrokerUnavailable, EventscopeError
from core.events import category_of, wall_clock_micros
from core.projections.history import FAULTED, Fault, HistoryStore, ModelStatus, RunRecord
from core.relay.publishers import Message, Publisher
from core.services.projections import default_worker_name
from core.store import EventFilter, RawEvent
from core.store.jsonlines import export_line
from core.workspace import Workspace

__all__ = [
    "RELAY_PREFIX",
    "Relay",
    "RelayFaulted",
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


class RelayFaulted(EventscopeError):
    """The relay stopped at an event the broker can never take (too large, too long a
    subject or routing key): publishing it again would fail forever. The relay stays
    stopped there until it is started with ``skip_fault`` (``--skip-fault``)."""


def relay_model(name: str) -> str:
    """The read-model row that keeps a relay's checkpoint and lease."""
    return f"{RELAY_PREFIX}{name}:1"


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """A relay as ``relay`` prints it and the console shows it."""

    name: str
    state: str  # "stopped", "faulted", "broker unavailable", "publishing" or "caught up"
    checkpoint: int
    head: int
    lag: int  # events behind the head
    lag_seconds: float  # how old the oldest event not yet published is
    published: int  # events this process published (0 when read from the store)
    rate: float  # events/s while publishing, over the last minute's runs (0 unless running)
    worker: str | None  # who holds the lease now
    last_error: str | None  # the newest failure (broker or fault), current or past
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
        name = status.name[len(RELAY_PREFIX) :]
        runs = history.runs(status.model, limit=RUNS_READ)
        found.append(_status(workspace, name, status, head, runs, now))
    return sorted(found, key=lambda s: s.name)


def _status(
    workspace: Workspace,
    name: str,
    stored: ModelStatus | None,
    head: int,
    runs: list[RunRecord],
    now: int,
    published: int = 0,
) -> RelayStatus:
    """A relay's status from its stored row (checkpoint, lease, fault) and its runs
    (newest first)."""
    checkpoint = stored.checkpoint if stored is not None else 0
    worker = stored.leased_to(now) if stored is not None else None
    lag, lag_seconds = workspace.events.behind(checkpoint, head, now)
    failed = next((run for run in runs if run.error is not None), None)
    recent = [run for run in runs if run.error is None and now - run.started_at <= RATE_WINDOW_US]
    busy = sum(run.duration_us for run in recent)
    events = sum(run.events for run in recent)
    if stored is not None and stored.state == FAULTED:
        state = "faulted"
    elif worker is None:
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
        events * 1_000_000 / busy if busy and worker is not None else 0.0,
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
        runs = self._history.runs(self.model, limit=RUNS_READ)
        head = self.workspace.events.head_position()
        return _status(self.workspace, self.name, stored, head, runs, now, self.published)

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        from_position: int | None = None,
        skip_fault: bool = False,
    ) -> None:
        """Publish until ``stop`` is set: the events after the checkpoint, then each new one.

        ``from_position`` starts a relay that has published nothing yet at that position
        (the events before it are never published); a relay with a checkpoint goes on
        from it. ``skip_fault`` moves a faulted relay past the event it stopped at (that
        event is never published). The lease is given back on the way out.

        Raises:
            RelayLeased: another relay of this name holds the lease.
            RelayFaulted: an event the broker can never take stops the relay (now, or
                when it last ran and ``skip_fault`` is not given).
            BrokerSetupError: the broker is set up so that publishing cannot work.
            StoreError: the store failed (the broker failing is retried, never raised).
        """
        name, version = self.model.rsplit(":", 1)
        self._history.ensure(name, int(version))
        stored = self._history.status(self.model)
        if stored is not None and stored.state == FAULTED:
            if not skip_fault:
                raise RelayFaulted(_fault_text(self.name, stored))
            self._history.skip_fault(self.model)
            _log.warning("relay %s: skipped position %s", self.name, stored.fault_position)
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
        reader = _Reader(self.workspace, self.batch_size, self.name)
        upcoming = reader.after(checkpoint)
        try:
            while not stop.is_set():
                messages = upcoming.result()
                if not messages:
                    stretch = self._record(stretch, checkpoint)  # caught up
                    if time.monotonic() - last_renewal > self.lease_seconds / 3:
                        checkpoint = self._commit(checkpoint, checkpoint)  # renews the lease
                        last_renewal = time.monotonic()
                    stop.wait(self.poll_seconds)
                    upcoming = reader.after(checkpoint)
                    continue
                # The next batch is read while this one is published.
                upcoming = reader.after(messages[-1].position)
                began, began_at = time.perf_counter(), wall_clock_micros()
                try:
                    published = self._publish(messages)
                except BrokerSetupError as error:  # retrying cannot help: say why, and stop
                    self.last_error = str(error)
                    self._record_failure(began_at, checkpoint, str(error), "failed")
                    raise
                except BrokerUnavailable as error:
                    upcoming.cancel()
                    upcoming = reader.after(checkpoint)  # the whole batch again
                    self.last_error = str(error)
                    if down_since is None:  # once per outage
                        _log.warning("relay %s: broker unavailable, retrying: %s", self.name, error)
                        down_since = time.monotonic()
                        stretch = self._record(stretch, checkpoint)
                        self._record_failure(began_at, checkpoint, str(error), "failed")
                    if self.on_fault is not None:
                        self.on_fault(error)
                    stop.wait(wait)
                    wait = min(wait * 2, self.backoff[1])
                    continue
                if down_since is not None:
                    seconds_down = time.monotonic() - down_since
                    _log.warning("relay %s: broker back after %.1f s", self.name, seconds_down)
                    down_since, wait = None, self.backoff[0]
                if not published:  # the first message can never be published
                    stretch = self._record(stretch, checkpoint)
                    self._fault(checkpoint, messages[0], began_at)
                seconds = time.perf_counter() - began
                checkpoint = self._commit(checkpoint, messages[published - 1].position)
                if published < len(messages):  # the next one can never be: fault there
                    upcoming.cancel()
                    upcoming = reader.after(checkpoint)
                last_renewal = time.monotonic()
                self.published += published
                stretch.add(began_at, published, seconds)
                if stretch.seconds_since_start() >= RECORD_SECONDS:
                    stretch = self._record(stretch, checkpoint)
                if self.on_batch is not None:
                    self.on_batch(published, seconds)
        finally:
            reader.close()
            if stretch.events:
                self._record(stretch, checkpoint)

    def _publish(self, messages: list[Message]) -> int:
        """Publish the messages up to the first one the broker can never take; returns how
        many were published (and confirmed).

        Raises:
            BrokerUnavailable: the broker cannot be reached, or did not confirm.
        """
        if self._publisher is None:
            self._publisher = self._connect()
        publisher = self._publisher
        count = next(
            (i for i, message in enumerate(messages) if publisher.problem(message) is not None),
            len(messages),
        )
        publisher.publish(messages[:count])
        return count

    def _fault(self, checkpoint: int, message: Message, at: int) -> None:
        """Stop at ``message`` for good (until skipped): the relay's row is faulted there.

        Raises:
            RelayFaulted: always.
        """
        assert self._publisher is not None
        why = self._publisher.problem(message) or "the broker cannot take it"
        self.last_error = f"position {message.position}: {why}"
        self._record_failure(at, checkpoint, self.last_error, "faulted")
        expires = wall_clock_micros() + int(self.lease_seconds * 1_000_000)
        fault = Fault(message.position, message.event_id, why)
        self._history.commit(
            self.model, checkpoint, checkpoint, (), lease=(self.worker, expires), fault=fault
        )
        stored = self._history.status(self.model)
        raise RelayFaulted(_fault_text(self.name, stored) if stored else self.last_error)

    def _record_failure(self, at: int, checkpoint: int, error: str, outcome: str) -> None:
        """Write a failure as a run (the start of an outage, or a fault): its error is the
        relay's last."""
        self._history.record_run(
            RunRecord(self.model, at, 0, checkpoint, checkpoint, 0, outcome, error, self.worker)
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


def _message(row: RawEvent) -> Message:
    """A stored event (an export row) as the message published for it."""
    return Message(
        row.event_id,
        category_of(row.stream_id),
        row.type,
        row.stream_id,
        row.position,
        export_line(row).rstrip(b"\n"),
    )


def _fault_text(name: str, stored: ModelStatus) -> str:
    """One line: where a faulted relay stopped, why, and how to go on."""
    return (
        f"relay {name!r} stopped at position {stored.fault_position} "
        f"(event {stored.fault_event_id}): {stored.fault_error}; "
        f"start it with --skip-fault to go on without that event"
    )


class _Reader:
    """Reads the stored events after a position and builds their messages, in a thread of
    its own: the relay reads the next batch while it publishes one."""

    def __init__(self, workspace: Workspace, batch_size: int, name: str) -> None:
        self._workspace = workspace
        self._batch_size = batch_size
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"relay {name} reader")

    def after(self, position: int) -> Future[list[Message]]:
        """The messages of the next batch after ``position`` (none: caught up)."""
        return self._pool.submit(self._read, position)

    def _read(self, position: int) -> list[Message]:
        where = EventFilter(from_position=position + 1)
        rows = self._workspace.events.export_rows(where, limit=self._batch_size)
        return [_message(row) for row in rows]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


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
