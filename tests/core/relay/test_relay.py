"""The relay over the real brokers (issue 18): every event published once in order with its
id, the checkpoint in the store moving only past confirmed batches, one relay of a name at a
time, a broker down retried with one warning, and the metrics endpoint scraped over HTTP.
Kills (-9) are in test_relay_crashes, brokers stopped mid-run in test_relay_restarts,
events a broker can never take in test_relay_faults."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.relay.relay import RelayLeased, relay_statuses
from core.store.jsonlines import export_line
from core.workspace import Workspace
from tests.core.relay.brokers import (
    AMQP,
    NATS,
    TIMEOUT,
    needs_nats,
    needs_rabbit,
    relay_to,
    run_until,
    seed,
    stored_messages,
)


@needs_nats
def test_every_event_is_published_once_in_order_as_export_prints_it(
    store: Path, jetstream: tuple[str, str]
) -> None:
    name, subject = jetstream
    with Workspace.open(str(store), read_only=False, load_plugins=False) as workspace:
        relay = relay_to(
            workspace, NATS, subject=subject, jetstream_stream=name, batch_size=400, name=name
        )
        head = workspace.events.head_position()
        run_until(relay, lambda: relay.checkpoint == head)
        seed(store, 500, start=3_000)  # new events: the next run goes on from its checkpoint
        run_until(relay, lambda: relay.checkpoint == head + 500)
        rows = list(workspace.events.export_rows())
        (status,) = relay_statuses(workspace)

    stored = asyncio.run(stored_messages(name))
    assert len(stored) == len(rows) == 3_500
    assert [m.headers["Nats-Msg-Id"] for m in stored] == [row.event_id for row in rows]
    assert [m.data for m in stored] == [export_line(row).rstrip(b"\n") for row in rows]
    first = stored[0]
    assert first.subject == f"t{name.lower()}.{rows[0].stream_id.split('-')[0]}.{rows[0].type}"
    assert first.headers["Eventscope-Position"] == "1"
    assert first.headers["Eventscope-Stream"] == rows[0].stream_id
    assert first.headers["Eventscope-Type"] == rows[0].type
    assert (status.name, status.checkpoint, status.lag) == (name, 3_500, 0)


@needs_nats
def test_a_relay_that_starts_at_a_position_never_publishes_what_is_before(
    store: Path, jetstream: tuple[str, str]
) -> None:
    name, subject = jetstream
    with Workspace.open(str(store), read_only=False, load_plugins=False) as workspace:
        relay = relay_to(workspace, NATS, subject=subject, jetstream_stream=name, name=name)
        run_until(relay, lambda: relay.checkpoint == 3_000, from_position=2_901)

    stored = asyncio.run(stored_messages(name))
    assert [int(m.headers["Eventscope-Position"]) for m in stored] == list(range(2_901, 3_001))


@needs_nats
def test_two_relays_of_one_name_never_publish_at_once(
    store: Path, jetstream: tuple[str, str]
) -> None:
    name, subject = jetstream
    with Workspace.open(str(store), read_only=False, load_plugins=False) as workspace:
        first = relay_to(workspace, NATS, subject=subject, jetstream_stream=name, name=name)
        second = relay_to(workspace, NATS, subject=subject, jetstream_stream=name, name=name)
        stop = threading.Event()
        thread = threading.Thread(target=lambda: first.run(stop))
        thread.start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while first.checkpoint == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            with pytest.raises(RelayLeased, match="one at a time"):
                second.run(threading.Event())
        finally:
            stop.set()
            thread.join(TIMEOUT)


def test_a_broker_down_is_retried_said_once_and_nothing_is_checkpointed(
    store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.WARNING, logger="core.relay.relay")
    with Workspace.open(str(store), read_only=False, load_plugins=False) as workspace:
        faults: list[Exception] = []
        relay = relay_to(
            workspace,
            f"nats://127.0.0.1:{port}",
            name="down",
            backoff=(0.05, 0.2),
            on_fault=faults.append,
        )
        stop = threading.Event()
        thread = threading.Thread(target=lambda: relay.run(stop))
        thread.start()
        time.sleep(2.0)
        stop.set()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert relay.checkpoint == 0 and relay.last_error
        assert "\n" not in relay.last_error
        assert len(faults) > 1 and str(faults[-1]) == relay.last_error  # every retry counted

    warnings = [r for r in caplog.records if "broker unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, however many retries


@needs_rabbit
def test_amqp_consumers_see_every_event_in_order_with_its_message_id(store: Path) -> None:
    exchange = f"t-{uuid.uuid4().hex[:10]}"
    with Workspace.open(str(store), read_only=False, load_plugins=False) as workspace:
        received = asyncio.run(_consume_while(workspace, exchange, 3_000))
        rows = list(workspace.events.export_rows())

    ids = [message["message_id"] for message in received]
    unique = list(dict.fromkeys(ids))  # at least once: a consumer drops repeats by id
    assert unique == [row.event_id for row in rows]
    assert received[0]["routing_key"] == f"{rows[0].stream_id.split('-')[0]}.{rows[0].type}"
    assert received[0]["body"] == export_line(rows[0]).rstrip(b"\n")
    assert received[0]["persistent"]


async def _consume_while(workspace: Workspace, exchange: str, count: int) -> list[dict[str, Any]]:
    import aio_pika

    connection = await aio_pika.connect_robust(AMQP)
    channel = await connection.channel()
    declared = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(declared, routing_key="#")
    relay = relay_to(workspace, AMQP, exchange=exchange, name=exchange, batch_size=500)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: relay.run(stop))
    thread.start()
    received: list[dict[str, Any]] = []
    try:
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    received.append(
                        {
                            "message_id": message.message_id,
                            "routing_key": message.routing_key,
                            "body": message.body,
                            "persistent": message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT,
                        }
                    )
                if len({m["message_id"] for m in received}) >= count:
                    break
    finally:
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, thread.join, TIMEOUT)
        await channel.exchange_delete(exchange)
        await connection.close()
    return received


@needs_nats
def test_the_metrics_endpoint_shows_what_relays_prints(
    store: Path, jetstream: tuple[str, str]
) -> None:
    name, subject = jetstream
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "console.cli", "--store", str(store), "relay", NATS,
        "--name", name, "--subject", subject, "--jetstream-stream", name,
        "--metrics-port", str(port), "--status-seconds", "0.2",
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        text = ""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                text = ""
            if f'eventscope_relay_checkpoint{{relay="{name}"}} 3000.0' in text:
                break
            time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=TIMEOUT)

    with Workspace.open(str(store), load_plugins=False) as workspace:
        (status,) = relay_statuses(workspace)
    assert status.checkpoint == 3_000
    assert f'eventscope_relay_checkpoint{{relay="{name}"}} 3000.0' in text
    assert f'eventscope_relay_lag_events{{relay="{name}"}} 0.0' in text
    assert "eventscope_store_head_position 3000.0" in text
    assert f'eventscope_relay_events_published_total{{relay="{name}"}} 3000.0' in text
    assert "eventscope_batch_duration_seconds_bucket" in text
