"""The relay (issue 18) against bare broker clients, and its append-to-published latency.

Rows 1-2: the relay's throughput over a seeded SQLite store against a bare nats-py
JetStream publisher and a bare aio-pika publisher with confirms, both sending the same
messages (pre-built) with the same window, in the same process; baseline and relay runs
alternate, ``--rounds`` times, and the median ratio is kept. Rows 3-4: while a writer
appends single events at a steady rate, the ``eventscope relay`` command publishes them
and a consumer of the broker times each from the append's return to its delivery.
Writes docs/benchmarks-relay.md::

    .venv/bin/python -m tests.benchmarks.relay [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Final

import psutil

from core.events import NewEvent, category_of
from core.relay.publishers import (
    DUPLICATE_WINDOW,
    AmqpPublisher,
    Message,
    Publisher,
    open_publisher,
    subject_safe,
)
from core.relay.relay import Relay, relay_statuses
from core.store import ImportRecord, SqlEventStore
from core.store.jsonlines import export_line
from core.store.port import prepare_events
from core.workspace import Workspace
from tests.benchmarks.run import ROOT, environment, generate_events, write_markdown

REPORT: Final = ROOT / "docs" / "benchmarks-relay.md"
NATS: Final = "nats://127.0.0.1:4222"
AMQP: Final = "amqp://guest:guest@127.0.0.1:5672/"
#: The relay's publishers' default window (``open_publisher(window=256)``).
WINDOW: Final = 256
TIMEOUT: Final = 120.0
RATIO_TARGET: Final = 0.5
LATENCY_TARGET_MS: Final = 1_000
CATEGORIES: Final = ("order", "cart", "payment", "shipment")
STREAMS_PER_CATEGORY: Final = 250
#: Messages whose socket writes are counted (under cProfile).
SOCKET_SAMPLE: Final = 10_000


# -- the store and the messages ----------------------------------------------------------------


def seed_store(path: Path, count: int) -> None:
    """``count`` events (~400-byte JSON lines, 8 types) over 1,000 streams of 4
    categories, in one import."""

    def records() -> Iterator[ImportRecord]:
        for n, generated in enumerate(generate_events(count)):
            category = CATEGORIES[n % len(CATEGORIES)]
            stream_id = f"{category}-{(n // len(CATEGORIES)) % STREAMS_PER_CATEGORY}"
            (event,) = prepare_events(
                [NewEvent(generated.type, generated.data, generated.metadata, generated.event_id)]
            )
            yield ImportRecord(n + 1, stream_id, event)

    with SqlEventStore.open(path) as store:
        store.import_records(records())


def relay_messages(path: Path) -> list[Message]:
    """Every stored event as the relay builds it for its publisher (relay.py's ``_loop``)."""
    with Workspace.open(str(path), load_plugins=False) as workspace:
        return [
            Message(
                row.event_id,
                category_of(row.stream_id),
                row.type,
                row.stream_id,
                row.position,
                export_line(row).rstrip(b"\n"),
            )
            for row in workspace.events.export_rows()
        ]


def unique_name() -> str:
    """A JetStream stream / exchange name of its own (also the relay's name)."""
    return f"B{uuid.uuid4().hex[:10].upper()}"


def subject_template(name: str) -> str:
    return f"{name.lower()}.{{category}}.{{type}}"


def nats_subject(template: str, message: Message) -> str:
    """The subject the relay's ``NatsPublisher.subject_of`` gives ``message``."""
    return template.format(
        category=subject_safe(message.category),
        type=subject_safe(message.type),
        stream_id=subject_safe(message.stream_id),
    )


# -- the bare publishers ------------------------------------------------------------------------


async def _add_stream(js: Any, name: str) -> None:
    import nats.js.api

    await js.add_stream(
        nats.js.api.StreamConfig(
            name=name,
            subjects=[f"{name.lower()}.>"],
            storage=nats.js.api.StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
        )
    )


async def _delete_stream(name: str) -> int:
    """Delete a stream; returns how many messages it held."""
    import nats

    connection = await nats.connect(NATS)
    try:
        js = connection.jetstream()
        info = await js.stream_info(name)
        await js.delete_stream(name)
        return int(info.state.messages)
    finally:
        await connection.close()


async def _nats_bare(messages: Sequence[Message], name: str) -> float:
    """nats-py alone: ``publish_async`` of every message (window ``WINDOW``), then every
    PubAck awaited; seconds from the first publish to the last ack."""
    import nats

    template = subject_template(name)
    prepared = [
        (
            nats_subject(template, m),
            m.body,
            {"Nats-Msg-Id": m.event_id, **m.headers()},
        )
        for m in messages
    ]
    connection = await nats.connect(NATS)
    try:
        js = connection.jetstream(publish_async_max_pending=WINDOW)
        await _add_stream(js, name)
        began = time.perf_counter()
        acks = [
            await js.publish_async(subject, body, headers=headers)
            for subject, body, headers in prepared
        ]
        await asyncio.gather(*acks)
        return time.perf_counter() - began
    finally:
        await connection.close()


def nats_baseline(messages: Sequence[Message]) -> float:
    name = unique_name()
    seconds = asyncio.run(_nats_bare(messages, name))
    stored = asyncio.run(_delete_stream(name))
    assert stored == len(messages), (stored, len(messages))
    return seconds


async def _amqp_bare(messages: Sequence[Message], exchange_name: str) -> float:
    """aio-pika alone: persistent messages to a durable topic exchange on a channel with
    publisher confirms, at most ``WINDOW`` unconfirmed (a semaphore); seconds from the
    first publish to the last confirm."""
    import aio_pika

    prepared = [
        (
            AmqpPublisher.routing_key_of(m),
            m.body,
            m.event_id,
            {
                "Eventscope-Position": m.position,
                "Eventscope-Stream": m.stream_id,
                "Eventscope-Type": m.type,
            },
        )
        for m in messages
    ]
    connection = await aio_pika.connect(AMQP)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        window = asyncio.Semaphore(WINDOW)
        began = time.perf_counter()
        confirms = []
        for key, body, message_id, headers in prepared:
            await window.acquire()
            confirm = asyncio.ensure_future(
                exchange.publish(
                    aio_pika.Message(
                        body,
                        message_id=message_id,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers=headers,
                    ),
                    key,
                    mandatory=False,  # as the relay: no queue is bound, nothing is returned
                )
            )
            confirm.add_done_callback(lambda _: window.release())
            confirms.append(confirm)
        await asyncio.gather(*confirms)
        seconds = time.perf_counter() - began
        await channel.exchange_delete(exchange_name)
        return seconds
    finally:
        await connection.close()


def amqp_baseline(messages: Sequence[Message]) -> float:
    return asyncio.run(_amqp_bare(messages, unique_name().lower()))


async def _delete_exchange(name: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    try:
        channel = await connection.channel()
        await channel.exchange_delete(name)
    finally:
        await connection.close()


# -- the relay ----------------------------------------------------------------------------------

#: Opens a publisher to a broker URL for a stream / exchange name (and its subjects).
PublisherFactory = Callable[[str, str], Publisher]


def relay_publisher(url: str, name: str) -> Publisher:
    """The relay's own publisher, as the ``relay`` command opens it."""
    return open_publisher(
        url,
        subject=subject_template(name),
        jetstream_stream=name,
        exchange=name.lower(),
        window=WINDOW,
    )


def _drop(url: str, name: str, events: int) -> None:
    """Delete a run's stream (checking it holds every event once) or exchange."""
    if url.startswith("nats"):
        stored = asyncio.run(_delete_stream(name))
        assert stored == events, (stored, events)
    else:
        asyncio.run(_delete_exchange(name.lower()))


def publisher_alone(
    url: str, messages: Sequence[Message], factory: PublisherFactory, batch_size: int = 1_000
) -> float:
    """A relay's publisher without the relay: ``publish`` of the pre-built messages, a
    batch at a time; seconds, connecting left out."""
    name = unique_name()
    publisher = factory(url, name)
    try:
        began = time.perf_counter()
        for start in range(0, len(messages), batch_size):
            publisher.publish(messages[start : start + batch_size])
        seconds = time.perf_counter() - began
    finally:
        publisher.close()
    _drop(url, name, len(messages))
    return seconds


@dataclass(frozen=True, slots=True)
class RelayRun:
    """One relay run over the whole store."""

    seconds: float  # from run() to the last batch confirmed, connecting left out
    publish_seconds: float  # the batches' publish() calls (confirms included)
    batches: int


def relay_throughput(
    path: Path,
    url: str,
    events: int,
    *,
    batch_size: int = 1_000,
    factory: PublisherFactory = relay_publisher,
) -> RelayRun:
    """A ``Relay`` in a thread publishing the whole store to a fresh stream / exchange."""
    name = unique_name()
    connected: list[float] = []
    batches: list[float] = []
    finished: list[float] = []
    errors: list[BaseException] = []
    done = threading.Event()
    stop = threading.Event()

    def connect() -> Publisher:
        began = time.perf_counter()
        publisher = factory(url, name)
        connected.append(time.perf_counter() - began)
        return publisher

    def on_batch(count: int, seconds: float) -> None:
        batches.append(seconds)
        if relay.published >= events:
            finished.append(time.perf_counter())
            done.set()

    with Workspace.open(str(path), read_only=False, load_plugins=False) as workspace:
        relay = Relay(workspace, connect, name=name, batch_size=batch_size, on_batch=on_batch)
        began = time.perf_counter()

        def run() -> None:
            try:
                relay.run(stop)
            except BaseException as error:
                errors.append(error)
                done.set()

        thread = threading.Thread(target=run, name=f"relay {name}")
        thread.start()
        done.wait(TIMEOUT)
        stop.set()
        thread.join(TIMEOUT)
    if errors:
        raise errors[0]
    assert finished, "the relay did not publish every event in time"
    _drop(url, name, events)
    connect_seconds = sum(connected)  # the first batch's publish() connects
    return RelayRun(
        finished[0] - began - connect_seconds, sum(batches) - connect_seconds, len(batches)
    )


# -- latency --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """Append returned → delivered to a consumer, per event (milliseconds)."""

    appended: int
    measured: int
    missing: int
    p50: float
    p95: float
    p99: float
    max: float
    rate: float  # appends per second achieved


def _append_steadily(
    path: Path, rate: float, seconds: float, returned: dict[str, float]
) -> Callable[[], float]:
    """A thread appending one event at a time at ``rate``/s for ``seconds`` through
    ``Writing.append``; ``returned`` gets each event id's return time. Returns a join
    that gives the achieved rate."""
    count = int(rate * seconds)
    source = list(generate_events(count, seed=7))
    achieved: list[float] = []

    def write() -> None:
        with Workspace.open(str(path), read_only=False, load_plugins=False) as workspace:
            began = time.perf_counter()
            for n, generated in enumerate(source):
                delay = began + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                category = CATEGORIES[n % len(CATEGORIES)]
                event = workspace.writing.append(
                    f"{category}-live-{n // len(CATEGORIES) % 50}",
                    generated.type,
                    generated.data,
                    generated.metadata,  # a fresh event id: every run appends new events
                )
                returned[event.event_id] = time.perf_counter()
            achieved.append(count / (time.perf_counter() - began))

    thread = threading.Thread(target=write, name="writer")
    thread.start()

    def join() -> float:
        thread.join()
        return achieved[0]

    return join


def _relay_command(path: Path, url: str, name: str, head: int) -> list[str]:
    return [
        sys.executable, "-m", "console.cli", "--store", str(path), "relay", url,
        "--name", name, "--subject", subject_template(name), "--jetstream-stream", name,
        "--exchange", name.lower(), "--from-position", str(head + 1),
    ]  # fmt: skip


def _wait_for_relay(path: Path, name: str, child: subprocess.Popen[bytes]) -> None:
    """Until the relay command holds its lease (it publishes from there)."""
    deadline = time.monotonic() + TIMEOUT
    with Workspace.open(str(path), load_plugins=False) as workspace:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RuntimeError(f"the relay command exited with {child.returncode}")
            if any(s.name == name and s.worker for s in relay_statuses(workspace)):
                return
            time.sleep(0.05)
    raise RuntimeError("the relay command did not start in time")


async def _measure_latency(
    path: Path, url: str, rate: float, seconds: float, warmup: float
) -> Latency:
    """The relay command publishing what a steady writer appends, timed by a consumer."""
    name = unique_name()
    received: dict[str, float] = {}
    returned: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    with Workspace.open(str(path), load_plugins=False) as workspace:
        head = workspace.events.head_position()
    if url.startswith("nats"):
        import nats

        connection: Any = await nats.connect(NATS)
        js = connection.jetstream()
        await _add_stream(js, name)  # as the relay would create it (it finds it)

        async def on_nats(msg: Any) -> None:
            received.setdefault(msg.headers["Nats-Msg-Id"], time.perf_counter())

        await js.subscribe(f"{name.lower()}.>", cb=on_nats, ordered_consumer=True)
    else:
        import aio_pika

        connection = await aio_pika.connect(AMQP)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            name.lower(), aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="#")

        async def on_amqp(message: Any) -> None:
            received.setdefault(message.message_id, time.perf_counter())

        await queue.consume(on_amqp, no_ack=True)
    log = tempfile.TemporaryFile()
    child = subprocess.Popen(
        _relay_command(path, url, name, head), stdout=log, stderr=log, cwd=ROOT
    )
    try:
        await loop.run_in_executor(None, _wait_for_relay, path, name, child)
        join = _append_steadily(path, rate, seconds, returned)
        achieved = await loop.run_in_executor(None, join)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not returned.keys() <= received.keys():
            await asyncio.sleep(0.05)
    finally:
        child.send_signal(signal.SIGTERM)
        await loop.run_in_executor(None, child.wait, TIMEOUT)
        log.seek(0)
        stderr = log.read().decode(errors="replace")
        log.close()
        await connection.close()
        if url.startswith("nats"):
            await _delete_stream(name)
        else:
            await _delete_exchange(name.lower())
    if child.returncode != 0:
        raise RuntimeError(f"the relay command failed ({child.returncode}): {stderr}")
    first = min(returned.values())
    measured = [
        (received[event_id] - at) * 1000
        for event_id, at in returned.items()
        if at - first >= warmup and event_id in received
    ]
    missing = sum(1 for event_id in returned if event_id not in received)
    if len(measured) < 2:
        raise RuntimeError(
            f"{url}: {len(received)} of {len(returned)} events delivered; relay said: {stderr}"
        )
    cuts = statistics.quantiles(measured, n=100, method="inclusive")
    return Latency(
        len(returned), len(measured), missing, cuts[49], cuts[94], cuts[98], max(measured), achieved
    )


def latency(path: Path, url: str, rate: float, seconds: float, warmup: float) -> Latency:
    return asyncio.run(_measure_latency(path, url, rate, seconds, warmup))


# -- the report -----------------------------------------------------------------------------------


#: What each round of a broker measures, in seconds for every event: the bare client, the
#: relay, and (to tell where the relay's time goes) its publisher alone.
Contender = tuple[str, Callable[[], float]]


@dataclass
class Throughput:
    """One broker's rounds: each contender's seconds for the same events, and the relay's
    runs (with the time its publish() calls took)."""

    label: str
    seconds: dict[str, list[float]]
    relay: list[RelayRun]

    def ratios(self, over: str = "relay") -> list[float]:
        return [b / r for b, r in zip(self.seconds["baseline"], self.seconds[over], strict=True)]


def throughput_rounds(
    label: str,
    path: Path,
    messages: Sequence[Message],
    url: str,
    baseline: Callable[[Sequence[Message]], float],
    rounds: int,
) -> Throughput:
    """A small warm-up of each, then ``rounds`` rounds of every contender, each round
    starting one further along (none always meets a broker just written to)."""
    events = len(messages)
    result = Throughput(label, {}, [])

    def relay(factory: PublisherFactory = relay_publisher) -> float:
        run = relay_throughput(path, url, events, factory=factory)
        if factory is relay_publisher:
            result.relay.append(run)
        return run.seconds

    contenders: list[Contender] = [
        ("baseline", lambda: baseline(messages)),
        ("relay", relay),
        ("publisher", lambda: publisher_alone(url, messages, relay_publisher)),
    ]
    baseline(messages[:2_000])
    publisher_alone(url, messages[:2_000], relay_publisher)
    for number in range(rounds):
        shift = number % len(contenders)
        for name, measure in contenders[shift:] + contenders[:shift]:
            result.seconds.setdefault(name, []).append(measure())
        print(
            f"{label} round {number + 1}: "
            + ", ".join(f"{name} {events / s[-1]:,.0f} ev/s" for name, s in result.seconds.items()),
            file=sys.stderr,
        )
    return result


def throughput_row(number: int, row: Throughput, what: str, events: int) -> str:
    ratios = row.ratios()
    median = statistics.median(ratios)
    baseline = statistics.median(events / s for s in row.seconds["baseline"])
    relay = statistics.median(events / s for s in row.seconds["relay"])
    each = ", ".join(f"{r:.2f}x" for r in ratios)
    verdict = "PASS" if median >= RATIO_TARGET else "MISS"
    return (
        f"| {number} | {what} (rounds: {each}) | {baseline:,.0f} ev/s | {relay:,.0f} ev/s "
        f"| {median:.2f}x | ≥ {RATIO_TARGET}x | {verdict} |"
    )


def latency_row(number: int, what: str, found: Latency) -> str:
    verdict = "PASS" if found.p95 < LATENCY_TARGET_MS and not found.missing else "MISS"
    return (
        f"| {number} | {what} | {found.p50:,.0f} ms | {found.p95:,.0f} ms | {found.p99:,.0f} ms "
        f"| {found.max:,.0f} ms | {found.measured:,} of {found.appended:,} "
        f"({found.rate:,.0f}/s) | p95 < {LATENCY_TARGET_MS:,} ms | {verdict} |"
    )


def socket_writes(messages: Sequence[Message]) -> dict[str, int]:
    """``socket.send`` calls to publish ``messages`` to JetStream: the bare client's and the
    relay publisher's (cProfile of the thread running the loop)."""

    def sends(profiler: cProfile.Profile) -> int:
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        return sum(
            calls
            for (_file, _line, function), (_cc, calls, *_rest) in stats.items()
            if function == "<method 'send' of '_socket.socket' objects>"
        )

    found = {}
    profiler = cProfile.Profile()
    profiler.enable()
    nats_baseline(messages)
    profiler.disable()
    found["baseline"] = sends(profiler)
    for label, factory in (("publisher", relay_publisher),):
        name = unique_name()
        publisher = factory(NATS, name)
        profiler = cProfile.Profile()

        async def switch(on: bool, profiler: cProfile.Profile = profiler) -> None:
            profiler.enable() if on else profiler.disable()

        try:
            publisher._loop.run(switch(True))  # type: ignore[attr-defined]
            for start in range(0, len(messages), 1_000):
                publisher.publish(messages[start : start + 1_000])
            publisher._loop.run(switch(False))  # type: ignore[attr-defined]
        finally:
            publisher.close()
        _drop(NATS, name, len(messages))
        found[label] = sends(profiler)
    return found


def where_time_goes(
    rows: Sequence[Throughput], events: int, writes: dict[str, int], sample: int
) -> str:
    """Per broker: the relay's time split into its publish() calls and the rest, the
    publisher alone, and the socket writes."""
    lines = [
        "",
        "## Where the relay's time goes",
        "",
        "Seconds for every event, median over the rounds. *relay: publish* is the relay's "
        "`Publisher.publish` calls (the publisher's loop thread sending a batch and waiting "
        "for every confirm); *relay: the rest* is the relay thread reading the batch "
        "(`export_rows`), building its messages (`export_line`) and committing the "
        "checkpoint, less what overlaps a publish (it reads the next batch meanwhile). "
        "*publisher alone* is `open_publisher(...)"
        ".publish` of the pre-built messages, 1,000 at a time, without the relay.",
        "",
        "| broker | bare client | relay: whole | relay: publish | relay: the rest "
        "| publisher alone |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for row in rows:

        def median(name: str, row: Throughput = row) -> str:
            return f"{statistics.median(row.seconds[name]):.2f} s"

        publish = statistics.median(r.publish_seconds for r in row.relay)
        rest = statistics.median(r.seconds - r.publish_seconds for r in row.relay)
        lines.append(
            f"| {row.label} | {median('baseline')} | {median('relay')} | {publish:.2f} s "
            f"| {rest:.2f} s | {median('publisher')} |"
        )
    lines += [
        "",
        f"Socket writes to publish {sample:,} messages to JetStream: bare client "
        f"{writes['baseline']:,}, relay publisher {writes['publisher']:,}. (Before this "
        "benchmark the publisher passed `wait_stall` to every `publish_async`: nats-py then "
        "waited for its window in a task of its own, yielded to the loop after every "
        "message, and wrote each in a syscall of its own: 10,001 writes for 10,000 "
        "messages, 0.23x the bare client. It now passes one only when the window is full, "
        "and the relay reads its next batch while one is published.)",
    ]
    return "\n".join(lines) + "\n"


async def _broker_versions() -> str:
    import aio_pika
    import nats

    connection = await nats.connect(NATS)
    nats_server = str(connection.connected_server_version).strip("<>")
    await connection.close()
    amqp = await aio_pika.connect(AMQP)
    rabbit = amqp.transport.connection.server_properties.get("version", "?")
    await amqp.close()
    return (
        f"- brokers (same machine): {nats_server} (JetStream), RabbitMQ {rabbit}; clients "
        f"nats-py {package_version('nats-py')}, aio-pika {package_version('aio-pika')}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.relay", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="events in the store")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/relay rounds per broker")
    parser.add_argument("--rate", type=float, default=300.0, help="appends per second (latency)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the writer appends")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    if args.events < 2_000 or args.rounds < 1 or args.seconds < 2:
        parser.error("--events >= 2000, --rounds >= 1, --seconds >= 2")
    brokers = asyncio.run(_broker_versions())
    busy_before = psutil.cpu_percent(interval=1.0)
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="eventscope-relay-bench-"))
    try:
        path = folder / "relay.db"
        seed_store(path, args.events)
        messages = relay_messages(path)
        body_bytes = statistics.mean(len(m.body) for m in messages)
        nats_rows = throughput_rounds(
            "NATS JetStream", path, messages, NATS, nats_baseline, args.rounds
        )
        amqp_rows = throughput_rounds("RabbitMQ", path, messages, AMQP, amqp_baseline, args.rounds)
        sample = min(len(messages), SOCKET_SAMPLE)
        writes = socket_writes(messages[:sample])
        print(f"socket writes for {sample:,} messages: {writes}", file=sys.stderr)
        warmup = 1.0
        nats_latency = latency(path, NATS, args.rate, args.seconds, warmup)
        print(nats_latency, file=sys.stderr)
        amqp_latency = latency(path, AMQP, args.rate, args.seconds, warmup)
        print(amqp_latency, file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    events = args.events
    table = "\n".join(
        [
            "| # | benchmark | baseline (same run) | relay | ratio (median) | target | result |",
            "|---|---|--:|--:|--:|---|---|",
            throughput_row(
                1,
                nats_rows,
                f"relay → NATS JetStream vs bare nats-py `publish_async` ({events:,} events)",
                events,
            ),
            throughput_row(
                2,
                amqp_rows,
                f"relay → RabbitMQ vs bare aio-pika with confirms ({events:,} events)",
                events,
            ),
            "",
            "| # | append → published, while relaying | p50 | p95 | p99 | max | events measured "
            "(appends/s) | target | result |",
            "|---|---|--:|--:|--:|--:|--:|---|---|",
            latency_row(3, "`eventscope relay` → NATS JetStream consumer", nats_latency),
            latency_row(4, "`eventscope relay` → RabbitMQ consumer", amqp_latency),
        ]
    )
    print(table)
    notes = [
        f"- store: {events:,} events imported into one SQLite file (8 types over 1,000 "
        f"streams of {len(CATEGORIES)} categories, ~200-byte `data`, a correlation id in "
        f"`metadata`; {body_bytes:,.0f}-byte messages on average: the event's export line).",
        "- rows 1-2: each round publishes every event once with the bare client, and once "
        "with a `Relay` (default batch size 1,000, publisher window "
        f"{WINDOW}) run in a thread from position 1 until its last batch is confirmed; "
        "every run to a stream / exchange of its own, deleted afterwards (JetStream: file "
        f"storage, {DUPLICATE_WINDOW:.0f} s duplicate window, the relay's stream settings; "
        "every message checked to be stored; RabbitMQ: a durable topic exchange with no "
        "queue bound, so the broker confirms without persisting). In a round every "
        "contender runs once (the bare client, the relay, and for the last section the "
        "relay's publisher alone), each round starting one further along the list; the "
        "ratio is bare "
        "seconds / relay seconds in the same round, and the row shows the median and "
        "each round.",
        "- the bare clients publish pre-built messages (same subjects / routing keys, "
        "headers with `Nats-Msg-Id` / `message_id`, same bodies, the JSON lines the relay "
        "sends): they neither read the store nor write a checkpoint, which is their "
        "advantage. nats-py: `jetstream(publish_async_max_pending=256)`, `publish_async` "
        "of every message, then every PubAck gathered. aio-pika: a channel with publisher "
        "confirms, a 256 semaphore released as each confirm arrives, persistent messages. "
        "Connecting and creating the stream / declaring the exchange are left out of both.",
        f"- rows 3-4: `python -m console.cli --store FILE relay URL --from-position "
        f"head+1` (a subprocess: the real command, default batch size, window and 0.2 s "
        f"poll) while a thread appends single events with `Workspace.writing.append` at "
        f"{args.rate:,.0f}/s for {args.seconds:.0f} s, each to one of 200 streams; a "
        "consumer in the benchmark's process (JetStream: an ordered push consumer of the "
        "stream's subjects; RabbitMQ: an exclusive queue bound with `#`, no-ack) notes "
        "when each event id first arrives; latency is that minus when the append returned "
        f"(one clock). The first {warmup:.0f} s of appends are left out (the relay connects "
        "on its first batch); an event never delivered within 30 s after the last append "
        "would fail the row. A relay that is caught up reads the store again every "
        "0.2 s (`POLL_SECONDS`): that wait is most of each figure.",
        f"- whole run: {time.perf_counter() - started:.0f} s.",
    ]
    write_markdown(
        args.output,
        title="Benchmarks: the relay",
        module="tests.benchmarks.relay",
        target="bench-relay",
        scope="every figure in one run",
        header=[*environment(busy_before), brokers],
        table=table,
        notes=notes,
        extra=where_time_goes([nats_rows, amqp_rows], events, writes, sample),
    )


if __name__ == "__main__":
    main()
