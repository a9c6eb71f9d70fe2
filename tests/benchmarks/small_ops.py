"""Small operations, Eventscope against the eventsourcing library's SQLite recorder.

The operations an application makes all day: read 1 or 10 events after a position,
read the last event of a stream, append one event, and append from several threads
at once. Both sides run in this process on the same events, with their database files
on a RAM disk (so the disk's noise does not hide CPU cost) and their default
durability settings. The table rows are built by ``tests/benchmarks/run.py``.
"""

from __future__ import annotations

import abc
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from core.events import NO_STREAM, NewEvent
from core.store import EventFilter, SqlEventStore

if TYPE_CHECKING:
    from tests.benchmarks.run import BenchEvent

#: Where the database files go: a RAM disk on Linux.
RAM_DISK: Final = Path("/dev/shm")
#: Events per stream in the read store, appended in two passes over the streams.
EVENTS_PER_STREAM: Final = 10
#: Streams each thread of the concurrent appends writes to, round-robin.
STREAMS_PER_THREAD: Final = 10
#: Untimed calls of each read before its timed calls.
WARM_UP_CALLS: Final = 100
#: Calls whose results are compared across the two sides.
CHECKED_CALLS: Final = 50
#: Calls per timed block; the sides take turns block by block.
BLOCK_CALLS: Final = 100
#: The concurrent appends of a round run in this many phases, the sides taking turns.
CONCURRENT_PHASES: Final = 5

# The operations, in table order.
READ_1: Final = "read 1 after a position"
READ_10: Final = "read 10 after a position"
LAST_OF_STREAM: Final = "last event of a stream"
INSERT: Final = "one insert"
CONCURRENT: Final = "concurrent appends"
OPERATIONS: Final = (READ_1, READ_10, LAST_OF_STREAM, INSERT, CONCURRENT)

#: A read's result reduced to what both sides store: (position, stream, version, type).
Seen = tuple[int, str, int, str]


def originator_id(stream_id: str) -> uuid.UUID:
    """The eventsourcing originator id standing for an Eventscope stream id."""
    return uuid.uuid5(uuid.NAMESPACE_URL, stream_id)


def eventsourcing_open(path: Path) -> tuple[SQLiteDatastore, SQLiteApplicationRecorder]:
    """A datastore and application recorder with the library's defaults, constructed as
    ``SQLiteFactory`` does."""
    datastore = SQLiteDatastore(str(path))
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    return datastore, recorder


# -- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmallOpsPlan:
    """What every round does, the same for both sides.

    Args:
        events: the read store's size (events appended before the timed calls).
        calls: timed calls of each read.
        inserts: timed single-event appends to existing streams.
        threads: threads appending at once.
        thread_appends: single-event appends per thread.
        rounds: rounds; each runs both sides, in alternating order.
        seed: for the positions and streams read and appended to.
    """

    events: int = 10_000
    calls: int = 2_000
    inserts: int = 2_000
    threads: int = 4
    thread_appends: int = 500
    rounds: int = 5
    seed: int = 16

    @property
    def streams(self) -> int:
        """Streams of the read store."""
        return max(1, self.events // EVENTS_PER_STREAM)

    @property
    def total_events(self) -> int:
        """Events in a store at the end of a round."""
        return self.events + self.inserts + self.threads * self.thread_appends


@dataclass(frozen=True, slots=True)
class Workload:
    """The events and arguments of every call, built once (before any timing).

    ``fill`` appends two passes of ``EVENTS_PER_STREAM / 2`` events to each stream, so a
    stream's events are not all adjacent in the log.
    """

    fill: list[tuple[str, list[BenchEvent]]]
    positions: list[int]  # read after these (exclusive): every read finds 10 events
    last_streams: list[str]
    inserts: list[tuple[str, BenchEvent]]
    per_thread: list[list[tuple[str, BenchEvent]]]

    @classmethod
    def build(cls, plan: SmallOpsPlan, events: Sequence[BenchEvent]) -> Workload:
        """Split ``events`` (at least ``plan.total_events``) into the round's calls."""
        if len(events) < plan.total_events:
            raise ValueError(f"{plan.total_events:,} events needed, {len(events):,} given")
        rng = random.Random(plan.seed)
        streams = [f"order-{index}" for index in range(plan.streams)]
        half = EVENTS_PER_STREAM // 2
        fill: list[tuple[str, list[BenchEvent]]] = []
        taken = 0
        for _pass in range(2):
            for stream_id in streams:
                fill.append((stream_id, list(events[taken : taken + half])))
                taken += half
        stored = taken
        tail = iter(events[stored:])
        inserts = [(rng.choice(streams), next(tail)) for _ in range(plan.inserts)]
        per_thread = [
            [
                (f"concurrent-{thread}-{k % STREAMS_PER_THREAD}", next(tail))
                for k in range(plan.thread_appends)
            ]
            for thread in range(plan.threads)
        ]
        return cls(
            fill,
            [rng.randrange(0, stored - 10) for _ in range(plan.calls)],
            [rng.choice(streams) for _ in range(plan.calls)],
            inserts,
            per_thread,
        )

    @property
    def stored(self) -> int:
        """Events in the store after the fill."""
        return sum(len(batch) for _stream, batch in self.fill)


# -- the two sides -----------------------------------------------------------------------------


class Side(abc.ABC):
    """One contender, open on a file: the calls timed, each as an application makes it."""

    name: str

    @abc.abstractmethod
    def fill(self, batches: Sequence[tuple[str, list[BenchEvent]]]) -> None:
        """Append each batch to a new stream (untimed)."""

    @abc.abstractmethod
    def read_after(self, position: int, limit: int) -> list[Seen]:
        """The first ``limit`` events after ``position``, payloads decoded."""

    @abc.abstractmethod
    def last_of_stream(self, stream_id: str) -> Seen:
        """The last event of one stream, payload decoded."""

    @abc.abstractmethod
    def inserter(self, events: Sequence[BenchEvent]) -> Callable[[str, BenchEvent], None]:
        """A function appending one of ``events`` to a stream at the stream's next version.

        The versions are tracked by the function (what a writer knows from its last
        read), so each call carries an exact expected version. Safe to use from several
        threads as long as each thread writes only to its own streams.
        """

    @abc.abstractmethod
    def stored(self) -> int:
        """How many events the store holds (counted, not looked up)."""

    @abc.abstractmethod
    def synchronous(self) -> int:
        """The ``synchronous`` pragma its connections run with (2 is FULL)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection."""


class EventscopeSide(Side):
    """``SqlEventStore.open(path)`` with its defaults, one store object for all threads."""

    name = "eventscope"

    def __init__(self, path: Path) -> None:
        self.store = SqlEventStore.open(path)
        self.versions: dict[str, int] = {}

    def fill(self, batches: Sequence[tuple[str, list[BenchEvent]]]) -> None:
        """``append_to_stream`` per batch with an exact expected version."""
        for stream_id, batch in batches:
            result = self.store.append_to_stream(
                stream_id,
                [NewEvent(e.type, e.data, e.metadata, e.event_id) for e in batch],
                self.versions.get(stream_id, NO_STREAM),
            )
            self.versions[stream_id] = result.version

    def read_after(self, position: int, limit: int) -> list[Seen]:
        """``store.read(EventFilter(from_position=position + 1), limit=limit)``."""
        return [
            (e.position, e.stream_id, e.version, e.type)
            for e in self.store.read(EventFilter(from_position=position + 1), limit=limit)
        ]

    def last_of_stream(self, stream_id: str) -> Seen:
        """``store.read_stream(stream_id, backwards=True, limit=1)``."""
        e = next(self.store.read_stream(stream_id, backwards=True, limit=1))
        return (e.position, e.stream_id, e.version, e.type)

    def inserter(self, events: Sequence[BenchEvent]) -> Callable[[str, BenchEvent], None]:
        """``append_to_stream(stream_id, [event], version)``; the ``NewEvent`` values are
        made here, before the timing (as run.py's appends make them)."""
        append = self.store.append_to_stream
        versions = self.versions
        made = {e.event_id: NewEvent(e.type, e.data, e.metadata, e.event_id) for e in events}

        def insert(stream_id: str, event: BenchEvent) -> None:
            expected = versions.get(stream_id, NO_STREAM)
            versions[stream_id] = append(stream_id, [made[event.event_id]], expected).version

        return insert

    def stored(self) -> int:
        """``count(*)`` of the events table, through a read transaction."""
        with self.store.read_transaction() as cursor:
            cursor.execute("SELECT count(*) FROM events")
            return int(cursor.fetchone()[0])

    def synchronous(self) -> int:
        """The pragma on one of the store's connections."""
        with self.store.read_transaction() as cursor:
            cursor.execute("PRAGMA synchronous")
            return int(cursor.fetchone()[0])

    def check(self) -> None:
        """Fail unless the store passes its own integrity check."""
        report = self.store.check()
        if not report.ok:
            raise RuntimeError(f"the Eventscope store fails its check: {report.to_dict()}")

    def close(self) -> None:
        """Close the store."""
        self.store.close()


class EventsourcingSide(Side):
    """``SQLiteApplicationRecorder(SQLiteDatastore(path))`` with the library's defaults,
    one recorder for all threads."""

    name = "eventsourcing"

    def __init__(self, path: Path) -> None:
        self.datastore, self.recorder = eventsourcing_open(path)
        self.versions: dict[str, int] = {}
        self.streams: dict[str, str] = {}  # originator id (hex) -> stream id

    def _originator(self, stream_id: str) -> uuid.UUID:
        found = originator_id(stream_id)
        self.streams.setdefault(found.hex, stream_id)
        return found

    def fill(self, batches: Sequence[tuple[str, list[BenchEvent]]]) -> None:
        """``insert_events`` per batch, versions from 0 as Eventscope's."""
        dumps = orjson.dumps
        for stream_id, batch in batches:
            first = self.versions.get(stream_id, -1) + 1
            self.recorder.insert_events(
                [
                    StoredEvent(
                        originator_id=self._originator(stream_id),
                        originator_version=first + i,
                        topic=e.type,
                        state=dumps({"data": e.data, "metadata": e.metadata}),
                    )
                    for i, e in enumerate(batch)
                ]
            )
            self.versions[stream_id] = first + len(batch) - 1

    def read_after(self, position: int, limit: int) -> list[Seen]:
        """``select_notifications(start=position + 1, limit=limit)``, states decoded."""
        loads = orjson.loads
        streams = self.streams
        seen: list[Seen] = []
        for n in self.recorder.select_notifications(start=position + 1, limit=limit):
            loads(n.state)
            seen.append((n.id, streams[_hex(n.originator_id)], n.originator_version, n.topic))
        return seen

    def last_of_stream(self, stream_id: str) -> Seen:
        """``select_events(originator_id, desc=True, limit=1)``, state decoded; the position
        is not part of a stored event (0 here)."""
        (e,) = self.recorder.select_events(originator_id(stream_id), desc=True, limit=1)
        orjson.loads(e.state)
        return (0, self.streams[_hex(e.originator_id)], e.originator_version, e.topic)

    def inserter(self, events: Sequence[BenchEvent]) -> Callable[[str, BenchEvent], None]:
        """``insert_events([StoredEvent(...)])`` at the stream's next version; the state is
        encoded in the call (Eventscope encodes its payloads in the append)."""
        insert_events = self.recorder.insert_events
        versions = self.versions
        dumps = orjson.dumps
        ids = {stream_id: self._originator(stream_id) for stream_id in list(self.versions)}

        def insert(stream_id: str, event: BenchEvent) -> None:
            owner = ids.get(stream_id)
            if owner is None:
                owner = ids[stream_id] = originator_id(stream_id)
            version = versions.get(stream_id, -1) + 1
            insert_events(
                [
                    StoredEvent(
                        originator_id=owner,
                        originator_version=version,
                        topic=event.type,
                        state=dumps({"data": event.data, "metadata": event.metadata}),
                    )
                ]
            )
            versions[stream_id] = version

        return insert

    def stored(self) -> int:
        """``count(*)`` of the library's events table."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT count(*) FROM {self.recorder.events_table_name}")
            return int(cursor.fetchone()[0])

    def synchronous(self) -> int:
        """The pragma on one of the datastore's connections."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous")
            return int(cursor.fetchone()[0])

    def close(self) -> None:
        """Close the datastore's connections."""
        self.datastore.close()


def _hex(owner: uuid.UUID | str) -> str:
    return owner.hex if isinstance(owner, uuid.UUID) else uuid.UUID(owner).hex


SIDES: Final[dict[str, Callable[[Path], Side]]] = {
    "eventscope": EventscopeSide,
    "eventsourcing": EventsourcingSide,
}


@contextmanager
def ram_disk_side(name: str, workload: Workload | None = None) -> Iterator[Side]:
    """One side open on a fresh folder of the RAM disk (removed after), filled with the
    workload's events when one is given."""
    base = RAM_DISK if RAM_DISK.is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix=f"eventscope-small-{name}-", dir=base))
    try:
        side = SIDES[name](folder / "store.db")
        try:
            if workload is not None:
                side.fill(workload.fill)
            yield side
        finally:
            side.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- one round ---------------------------------------------------------------------------------


@dataclass(slots=True)
class RoundResult:
    """One side's figures in one round: µs per call (per event for the concurrent
    appends, wall time over all threads) and the results of the checked calls."""

    micros: dict[str, float] = field(default_factory=dict)
    seen: dict[str, list[Any]] = field(default_factory=dict)
    synchronous: int = -1


def alternating_blocks(
    runs: dict[str, Callable[[Sequence[Any]], None]],
    items: Sequence[Any],
    order: Sequence[str],
    block: int = BLOCK_CALLS,
) -> dict[str, float]:
    """µs per item of each side: the median over blocks of ``block`` items, the sides
    taking turns block by block (who goes first alternates too), so a burst of load from
    another process falls on both sides rather than on one."""
    per_block: dict[str, list[float]] = {name: [] for name in runs}
    for index, start in enumerate(range(0, len(items), block)):
        chunk = items[start : start + block]
        for name in order if index % 2 == 0 else list(reversed(order)):
            began = time.perf_counter()
            runs[name](chunk)
            per_block[name].append(1e6 * (time.perf_counter() - began) / len(chunk))
    return {name: statistics.median(figures) for name, figures in per_block.items()}


def _reader(side: Side, limit: int) -> Callable[[Sequence[Any]], None]:
    """A block of reads of ``limit`` events after each position; fails on a short read."""
    read = side.read_after

    def reads(positions: Sequence[Any]) -> None:
        rows = 0
        for position in positions:
            rows += len(read(position, limit))
        if rows != limit * len(positions):
            raise RuntimeError(f"{side.name}: {len(positions)} reads of {limit} gave {rows}")

    return reads


def _last_reader(side: Side) -> Callable[[Sequence[Any]], None]:
    """A block of last-event-of-stream reads."""
    last = side.last_of_stream

    def reads(streams: Sequence[Any]) -> None:
        for stream_id in streams:
            last(stream_id)

    return reads


def _block_inserter(insert: Callable[[str, BenchEvent], None]) -> Callable[[Sequence[Any]], None]:
    """A block of single-event appends."""

    def inserts(calls: Sequence[Any]) -> None:
        for stream_id, event in calls:
            insert(stream_id, event)

    return inserts


def _time_concurrent(
    insert: Callable[[str, BenchEvent], None], per_thread: Sequence[Sequence[tuple[str, Any]]]
) -> float:
    """µs of wall time per event while every thread appends its own events at once."""
    start_line = threading.Barrier(len(per_thread) + 1)
    errors: list[BaseException] = []

    def append_all(calls: Sequence[tuple[str, BenchEvent]]) -> None:
        start_line.wait()
        try:
            for stream_id, event in calls:
                insert(stream_id, event)
        except BaseException as error:  # re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=append_all, args=(calls,)) for calls in per_thread]
    for thread in threads:
        thread.start()
    start_line.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return 1e6 * seconds / sum(len(calls) for calls in per_thread)


def run_round(plan: SmallOpsPlan, work: Workload, order: Sequence[str]) -> dict[str, RoundResult]:
    """One round: both sides on fresh stores, filled alike; each operation timed in
    alternating blocks (the concurrent appends in alternating phases); then the checks."""
    results = {name: RoundResult() for name in order}
    with ram_disk_side(order[0], work) as first, ram_disk_side(order[1], work) as second:
        sides = {first.name: first, second.name: second}
        for name, side in sides.items():
            result = results[name]
            result.synchronous = side.synchronous()
            checked = work.positions[:CHECKED_CALLS]
            result.seen[READ_1] = [side.read_after(p, 1) for p in checked]
            result.seen[READ_10] = [side.read_after(p, 10) for p in checked]
            result.seen[LAST_OF_STREAM] = [  # the library's events carry no position
                side.last_of_stream(s)[1:] for s in work.last_streams[:CHECKED_CALLS]
            ]
        timed: list[tuple[str, dict[str, Callable[[Sequence[Any]], None]], Sequence[Any]]] = [
            (READ_1, {n: _reader(side, 1) for n, side in sides.items()}, work.positions),
            (READ_10, {n: _reader(side, 10) for n, side in sides.items()}, work.positions),
            (
                LAST_OF_STREAM,
                {n: _last_reader(side) for n, side in sides.items()},
                work.last_streams,
            ),
        ]
        for operation, runs, items in timed:
            for run in runs.values():  # warm-up: code paths, statement caches, pages
                run(items[:WARM_UP_CALLS])
            for name, micros in alternating_blocks(runs, items, order).items():
                results[name].micros[operation] = micros
        appended = [event for _stream, event in work.inserts] + [
            event for calls in work.per_thread for _stream, event in calls
        ]
        inserters = {name: side.inserter(appended) for name, side in sides.items()}
        blocks = {name: _block_inserter(insert) for name, insert in inserters.items()}
        for name, micros in alternating_blocks(blocks, work.inserts, order).items():
            results[name].micros[INSERT] = micros
        phases: dict[str, list[float]] = {name: [] for name in order}
        size = -(-plan.thread_appends // CONCURRENT_PHASES)
        for phase in range(CONCURRENT_PHASES):
            chunks = [calls[phase * size : (phase + 1) * size] for calls in work.per_thread]
            if not chunks[0]:
                break
            for name in order if phase % 2 == 0 else list(reversed(order)):
                phases[name].append(_time_concurrent(inserters[name], chunks))
        for name, figures in phases.items():
            results[name].micros[CONCURRENT] = statistics.median(figures)
        for name, side in sides.items():
            stored = side.stored()
            if stored != plan.total_events:
                raise RuntimeError(f"{name} holds {stored:,} events, not {plan.total_events:,}")
            results[name].seen["after appends"] = [side.read_after(work.stored - 1, 3)]
            if isinstance(side, EventscopeSide):
                side.check()
    return results


# -- every round -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One operation's figures over the rounds: each side's median, and the per-round
    cost ratios (Eventscope over eventsourcing)."""

    operation: str
    eventscope: float
    eventsourcing: float
    ratios: tuple[float, ...]

    @property
    def ratio(self) -> float:
        """Eventscope's median over eventsourcing's: a cost ratio, lower is better."""
        return self.eventscope / self.eventsourcing


@dataclass(frozen=True, slots=True)
class SmallOpsResult:
    """Every operation's figures, and the sides' ``synchronous`` pragmas."""

    figures: dict[str, Figure]
    synchronous: dict[str, int]
    seconds: float


def measure(
    plan: SmallOpsPlan,
    events: Sequence[BenchEvent],
    progress: Callable[[str], None] = lambda _message: None,
) -> SmallOpsResult:
    """Run ``plan.rounds`` rounds, the sides alternating which goes first; each side
    gets a fresh store on the RAM disk per round. Fails if the two sides' checked reads
    differ (same positions, streams, versions and types)."""
    started = time.perf_counter()
    work = Workload.build(plan, events)
    runs: dict[str, list[RoundResult]] = {name: [] for name in SIDES}
    for number in range(plan.rounds):
        order = list(SIDES) if number % 2 == 0 else list(reversed(SIDES))
        for name, result in run_round(plan, work, order).items():
            runs[name].append(result)
        progress(f"small operations: round {number + 1} of {plan.rounds} done")
        ours, theirs = runs["eventscope"][-1].seen, runs["eventsourcing"][-1].seen
        for key, values in ours.items():
            if values != theirs[key]:
                raise RuntimeError(f"{key}: the two sides read different events")
    figures = {
        operation: Figure(
            operation,
            statistics.median(r.micros[operation] for r in runs["eventscope"]),
            statistics.median(r.micros[operation] for r in runs["eventsourcing"]),
            tuple(
                ours.micros[operation] / theirs.micros[operation]
                for ours, theirs in zip(runs["eventscope"], runs["eventsourcing"], strict=True)
            ),
        )
        for operation in OPERATIONS
    }
    return SmallOpsResult(
        figures,
        {name: results[0].synchronous for name, results in runs.items()},
        time.perf_counter() - started,
    )


# -- profiling ---------------------------------------------------------------------------------


def profile_work(
    plan: SmallOpsPlan, events: Sequence[BenchEvent]
) -> Iterator[tuple[str, Callable[[], object]]]:
    """Eventscope's side of a small read and of an insert, as works to profile: each
    yielded while its store is open on the RAM disk (consume one before the next)."""
    work = Workload.build(plan, events)
    with ram_disk_side("eventscope", work) as side:
        positions = work.positions

        def reads() -> None:
            for position in positions:
                side.read_after(position, 1)

        yield f"read 1 event after a position, {len(positions):,} calls (Eventscope)", reads
    with ram_disk_side("eventscope", work) as side:
        # profile() runs a work twice (cProfile, then pyinstrument): new event ids each
        # time, made here, appended round-robin to the existing streams.
        streams = [stream_id for stream_id, _batch in work.fill[: plan.streams]]
        runs = [
            [
                (streams[index % len(streams)], replace(event, event_id=str(uuid.uuid4())))
                for index, (_stream, event) in enumerate(work.inserts)
            ]
            for _run in range(2)
        ]
        insert = side.inserter([event for calls in runs for _stream, event in calls])
        pending = iter(runs)

        def inserts() -> None:
            for stream_id, event in next(pending):
                insert(stream_id, event)

        yield f"one insert, {len(work.inserts):,} calls (Eventscope)", inserts
