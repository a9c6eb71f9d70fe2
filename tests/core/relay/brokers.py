"""What the relay's tests share: the machine's brokers, a seeded store, a relay to run."""

from __future__ import annotations

import socket
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


def run_until(relay: Relay, condition: Any, timeout: float = TIMEOUT) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            relay.run(stop)
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
