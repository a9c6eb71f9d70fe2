"""What the relay's tests share: the machine's brokers, a seeded store, a relay to run."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.events import NewEvent
from core.relay.publishers import open_publisher
from core.relay.relay import Relay
from core.store import ImportRecord, SqlEventStore
from core.store.port import prepare_events
from core.workspace import Workspace

NATS = "nats://127.0.0.1:4222"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
TIMEOUT = 60.0


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


needs_nats = pytest.mark.skipif(not reachable(4222), reason="no NATS server at 127.0.0.1:4222")
needs_rabbit = pytest.mark.skipif(not reachable(5672), reason="no RabbitMQ at 127.0.0.1:5672")


def seed(path: Path, count: int, start: int = 0) -> None:
    """``count`` events in 7 streams of 3 categories, appended in one import."""
    kinds = ("Placed", "Paid", "Shipped")

    def records() -> Iterator[ImportRecord]:
        for n in range(start, start + count):
            (event,) = prepare_events([NewEvent(kinds[n % 3], {"n": n})])
            yield ImportRecord(n + 1, f"{('order', 'cart', 'user')[n % 3]}-{n % 7}", event)

    with SqlEventStore.open(path) as store:
        store.import_records(records())


async def delete_stream(name: str) -> None:
    import nats

    connection = await nats.connect(NATS)
    try:
        await connection.jetstream().delete_stream(name)
    except Exception:
        pass
    await connection.close()


async def stored_messages(name: str) -> list[Any]:
    """Every message of a JetStream stream, in sequence order."""
    import nats

    connection = await nats.connect(NATS)
    js = connection.jetstream()
    info = await js.stream_info(name)
    found = [await js.get_msg(name, seq) for seq in range(1, info.state.last_seq + 1)]
    await connection.close()
    return found


def run_until(relay: Relay, condition: Any, timeout: float = TIMEOUT, **options: Any) -> None:
    """Run ``relay`` (with ``options`` for ``Relay.run``) until ``condition()`` holds, then
    stop it; raise what it raised if it ended by itself, fail if it never got there."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            relay.run(stop, **options)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    stop.set()
    thread.join(TIMEOUT)
    if errors:
        raise errors[0]
    assert condition(), "the relay did not get there in time"


def relay_to(workspace: Workspace, url: str, **options: Any) -> Relay:
    names = ("subject", "jetstream_stream", "exchange", "timeout")
    publisher_options = {key: options.pop(key) for key in names if key in options}
    return Relay(workspace, lambda: open_publisher(url, **publisher_options), **options)


async def stream_ids(name: str, count: int, *, url: str = NATS) -> list[str]:
    """The ``Nats-Msg-Id`` of a JetStream stream's first ``count`` messages, in sequence
    order, read by an ordered pull consumer a thousand at a time."""
    import nats
    import nats.errors

    connection = await nats.connect(url)
    js = connection.jetstream()
    info = await js.stream_info(name)
    subscription = await js.pull_subscribe(info.config.subjects[0], stream=name)
    found: list[str] = []
    try:
        while len(found) < min(count, info.state.messages):
            try:
                batch = await subscription.fetch(1_000, timeout=5)
            except nats.errors.TimeoutError:
                break
            for message in batch:
                found.append((message.headers or {})["Nats-Msg-Id"])
                await message.ack()
    finally:
        await subscription.unsubscribe()
        await connection.close()
    return found


async def bind_queue(exchange: str, *, url: str = AMQP) -> str:
    """A durable queue bound to every routing key of a durable topic exchange (both
    declared here): it keeps what the relay publishes across connections and restarts."""
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    declared = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"{exchange}.all", durable=True)
    await queue.bind(declared, routing_key="#")
    await connection.close()
    return queue.name


async def drain_queue(queue: str, *, url: str = AMQP, idle: float = 2.0) -> list[str]:
    """Every ``message_id`` in ``queue``, in delivery order, until none comes for ``idle``
    seconds; then the queue and its exchange are deleted."""
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=2_000)
    declared = await channel.get_queue(queue, ensure=True)
    found: list[str] = []
    got = asyncio.Event()

    async def receive(message: Any) -> None:
        found.append(message.message_id)
        got.set()

    tag = await declared.consume(receive, no_ack=True)
    try:
        while True:
            got.clear()
            try:
                await asyncio.wait_for(got.wait(), idle)
            except TimeoutError:
                break
    finally:
        await declared.cancel(tag)
        await declared.delete(if_unused=False, if_empty=False)
        await channel.exchange_delete(queue.rsplit(".", 1)[0])
        await connection.close()
    return found


def relay_command(store: Path, url: str, name: str, *options: str) -> list[str]:
    """``eventscope relay`` as a child process, publishing under names of its own: the
    JetStream stream ``name`` (subjects ``t<name>.…``) or the exchange ``name``."""
    return [
        sys.executable, "-m", "console.cli", "--store", str(store), "relay", url,
        "--name", name, "--subject", f"t{name.lower()}.{{category}}.{{type}}",
        "--jetstream-stream", name, "--exchange", name, *options,
    ]  # fmt: skip


async def delete_exchange(name: str, *, url: str = AMQP) -> None:
    """Delete an exchange (and nothing bound to it)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(name)
