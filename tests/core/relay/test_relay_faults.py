"""An event a broker can never take (issue 18): the relay publishes what comes before it,
stops there as *faulted* with the reason in one line, and stays stopped until started
with ``--skip-fault``, instead of retrying it forever; and the CLI counts each batch a
broker refused in its Prometheus metrics."""

from __future__ import annotations

import asyncio
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

import orjson
import pytest

from core.events import NewEvent
from core.relay.relay import Relay, RelayFaulted, relay_statuses
from core.store import ImportRecord, SqlEventStore
from core.store.port import prepare_events
from core.workspace import Workspace
from tests.core.relay.brokers import (
    AMQP,
    NATS,
    TIMEOUT,
    bind_queue,
    drain_queue,
    needs_nats,
    needs_rabbit,
    relay_command,
    relay_to,
    run_until,
    stream_ids,
)


def store_of(path: Path, events: list[NewEvent]) -> list[str]:
    """A store holding ``events`` in stream ``order-1``; returns their ids in order."""
    records = [
        ImportRecord(n, "order-1", prepared)
        for n, (prepared,) in enumerate((prepare_events([e]) for e in events), start=1)
    ]
    with SqlEventStore.open(path) as store:
        store.import_records(records)
    return [record.event.event_id for record in records]


def run_in_thread(relay: Relay, **options: Any) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=lambda: relay.run(stop, **options))
    thread.start()
    return thread, stop


@needs_rabbit
def test_an_event_whose_routing_key_amqp_cannot_carry_stops_the_relay_until_skipped(
    tmp_path: Path,
) -> None:
    store = tmp_path / "shop.db"
    too_long = "T" * 256  # "order." + 256 characters: a 262-byte routing key
    ids = store_of(
        store,
        [NewEvent("Placed", {}), NewEvent("Paid", {}), NewEvent(too_long, {}),
         NewEvent("Shipped", {}), NewEvent("Closed", {})],
    )  # fmt: skip
    name = f"f-{uuid.uuid4().hex[:10]}"
    queue = asyncio.run(bind_queue(name))
    try:
        with Workspace.open(str(store), read_only=False, load_plugins=False) as workspace:
            with pytest.raises(RelayFaulted) as faulted:  # it stops by itself, at the event
                run_until(relay_to(workspace, AMQP, exchange=name, name=name), lambda: False)
            message = str(faulted.value)
            assert "\n" not in message
            assert f"stopped at position 3 (event {ids[2]})" in message
            assert "routing key of 262 bytes: AMQP takes at most 255" in message
            assert "--skip-fault" in message
            (status,) = [s for s in relay_statuses(workspace) if s.name == name]
            assert (status.state, status.checkpoint, status.worker) == ("faulted", 2, None)
            assert status.last_error and "routing key of 262 bytes" in status.last_error

            again = relay_to(workspace, AMQP, exchange=name, name=name)
            began = time.monotonic()
            with pytest.raises(RelayFaulted, match="position 3"):
                run_until(again, lambda: False)  # refused at once: nothing is tried
            assert time.monotonic() - began < 5 and again.published == 0

            skipping = relay_to(workspace, AMQP, exchange=name, name=name)
            thread, stop = run_in_thread(skipping, skip_fault=True)
            deadline = time.monotonic() + TIMEOUT
            while skipping.checkpoint < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            (status,) = [s for s in relay_statuses(workspace) if s.name == name]
            stop.set()
            thread.join(TIMEOUT)
            assert (status.state, status.checkpoint) == ("caught up", 5)
    finally:
        received = asyncio.run(drain_queue(queue, idle=1.0))
    assert received == [ids[0], ids[1], ids[3], ids[4]]  # the skipped event never went out


@needs_nats
def test_an_event_larger_than_nats_takes_stops_the_cli_relay_with_one_line_and_exit_1(
    tmp_path: Path, jetstream: tuple[str, str]
) -> None:
    name, _subject = jetstream
    store = tmp_path / "shop.db"
    large = NewEvent("Scanned", {"blob": "x" * 1_000_000}, {"note": "y" * 60_000})
    ids = store_of(store, [NewEvent("Placed", {}), large, NewEvent("Paid", {})])
    command = relay_command(store, NATS, name, "--status-seconds", "60")

    first = subprocess.run(command, capture_output=True, timeout=TIMEOUT)
    assert first.returncode == 1
    (line,) = first.stderr.decode().strip().splitlines()[-1:]
    assert line.startswith(f"eventscope: relay {name!r} stopped at position 2 (event {ids[1]})")
    assert "the NATS server takes at most 1,048,576" in line and "--skip-fault" in line
    status = orjson.loads(first.stdout.splitlines()[-1])
    assert (status["state"], status["checkpoint"]) == ("faulted", 1)

    refused = subprocess.run(command, capture_output=True, timeout=TIMEOUT)
    assert refused.returncode == 1 and b"stopped at position 2" in refused.stderr

    going_on = subprocess.Popen([*command, "--skip-fault"], stderr=subprocess.PIPE)
    with Workspace.open(str(store), load_plugins=False) as workspace:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            found = [s for s in relay_statuses(workspace) if s.name == name]
            if found and found[0].checkpoint == 3:
                break
            time.sleep(0.05)
    going_on.send_signal(signal.SIGTERM)
    _, err = going_on.communicate(timeout=TIMEOUT)
    assert going_on.returncode == 0, err
    assert asyncio.run(stream_ids(name, 10)) == [ids[0], ids[2]]


def test_the_cli_relay_counts_each_batch_a_broker_refused_in_its_metrics(
    tmp_path: Path,
) -> None:
    store = tmp_path / "shop.db"
    store_of(store, [NewEvent("Placed", {})])
    ports = []
    for _ in range(2):  # one for the metrics, one nobody listens on (the broker down)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    metrics, down = ports
    command = [
        sys.executable, "-m", "console.cli", "--store", str(store), "relay",
        f"nats://127.0.0.1:{down}", "--name", "down", "--metrics-port", str(metrics),
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    faults = 0.0
    try:
        deadline = time.monotonic() + TIMEOUT
        while faults < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith('eventscope_faults_total{kind="relay",name="down"}'):
                    faults = float(line.split()[-1])
        listed = subprocess.run(
            [sys.executable, "-m", "console.cli", "--store", str(store), "relays"],
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
    finally:
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=TIMEOUT)
    assert faults >= 2  # a fault per failed attempt, not one per outage
    assert 'eventscope_relay_checkpoint{relay="down"} 0.0' in text
    (status,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert status["state"] == "broker unavailable" and status["worker"]
    assert status["last_error"].startswith(f"cannot connect to nats://127.0.0.1:{down}")
    assert err.decode().count("broker unavailable") == 1  # said once per outage


@needs_rabbit
def test_a_broker_set_up_otherwise_stops_the_relay_at_once_saying_what_to_change(
    tmp_path: Path,
) -> None:
    import aio_pika

    store = tmp_path / "shop.db"
    store_of(store, [NewEvent("Placed", {})])
    name = f"s-{uuid.uuid4().hex[:10]}"

    async def exchange(action: str) -> None:
        connection = await aio_pika.connect(AMQP)
        async with connection:
            channel = await connection.channel()
            if action == "declare":
                await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)
            else:
                await channel.exchange_delete(name)

    asyncio.run(exchange("declare"))
    try:
        began = time.monotonic()
        failed = subprocess.run(
            relay_command(store, AMQP, name), capture_output=True, timeout=TIMEOUT
        )
    finally:
        asyncio.run(exchange("delete"))
    assert failed.returncode == 1 and time.monotonic() - began < TIMEOUT / 2
    (line,) = failed.stderr.decode().strip().splitlines()[-1:]
    assert line.startswith(f"eventscope: exchange {name!r} exists, but not as a durable topic")
    with Workspace.open(str(store), load_plugins=False) as workspace:
        (status,) = [s for s in relay_statuses(workspace) if s.name == name]
    assert (status.state, status.checkpoint) == ("stopped", 0)
    assert status.last_error and "choose another --exchange" in status.last_error
