"""A broker stopped and restarted while a relay publishes (issue 18): the relay retries,
says so once, moves its checkpoint only past what the broker confirmed, shows the
outage in its status, and once the broker is back publishes the rest: nothing is lost.

NATS: a server of the test's own (its own port and JetStream folder), stopped with
SIGTERM and started again on the same port and folder. RabbitMQ: the machine's broker,
its application stopped and started again with ``rabbitmqctl`` (the queue is durable,
the messages persistent)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.relay.relay import RelayStatus, relay_statuses
from core.workspace import Workspace
from tests.core.relay.brokers import (
    AMQP,
    TIMEOUT,
    bind_queue,
    drain_queue,
    needs_rabbit,
    reachable,
    relay_command,
    seed,
    stream_ids,
)

EVENTS = 10_000
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
RABBITMQCTL = shutil.which("rabbitmqctl")


class NatsServer:
    """A nats-server with JetStream on a free port, storing in ``folder``."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self._command = [
            NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(folder),
        ]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: reachable(self.port), "the NATS server to listen")

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(TIMEOUT)
            self._process = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    if not os.access(NATS_SERVER, os.X_OK):
        pytest.skip(f"no nats-server at {NATS_SERVER}")
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


def wait_for(condition: object, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def status_of(workspace: Workspace, name: str) -> RelayStatus | None:
    found = [status for status in relay_statuses(workspace) if status.name == name]
    return found[0] if found else None


def checkpoint_of(workspace: Workspace, name: str) -> int:
    status = status_of(workspace, name)
    return status.checkpoint if status is not None else 0


def outage_mid_run(
    store: Path, command: list[str], name: str, stop: object, start: object
) -> tuple[list[str], str]:
    """Run the relay, stop the broker a quarter of the way, check the relay is stalled
    and says why, start the broker, let the relay finish. Returns (stored event ids,
    the relay's stderr)."""
    relay = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with Workspace.open(str(store), load_plugins=False) as workspace:
            wait_for(lambda: checkpoint_of(workspace, name) >= EVENTS // 4, "a quarter")
            stop()  # type: ignore[operator]
            wait_for(
                lambda: getattr(status_of(workspace, name), "state", "") == "broker unavailable",
                "the relay to say the broker is unavailable",
            )
            stalled = checkpoint_of(workspace, name)
            time.sleep(1.0)  # retrying, in vain
            assert checkpoint_of(workspace, name) == stalled < EVENTS
            status = status_of(workspace, name)
            assert status is not None and status.last_error and status.worker
            start()  # type: ignore[operator]
            wait_for(lambda: checkpoint_of(workspace, name) == EVENTS, "the rest", 2 * TIMEOUT)
            ids = [row.event_id for row in workspace.events.export_rows()]
    finally:
        relay.send_signal(signal.SIGTERM)
        _, err = relay.communicate(timeout=TIMEOUT)
    assert relay.returncode == 0, err
    return ids, err.decode()


def test_a_nats_server_stopped_and_restarted_mid_run_loses_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    store = tmp_path / "shop.db"
    seed(store, EVENTS)
    name = f"R{uuid.uuid4().hex[:10].upper()}"
    command = relay_command(store, nats_server.url, name, "--batch-size", "500")
    ids, err = outage_mid_run(store, command, name, nats_server.stop, nats_server.start)
    stored = asyncio.run(stream_ids(name, EVENTS + 1, url=nats_server.url))
    assert stored == ids  # each once (the re-sent batch deduplicated), in order
    assert err.count("broker unavailable") == 1 and err.count("broker back") == 1


@needs_rabbit
@pytest.mark.skipif(
    RABBITMQCTL is None or os.geteuid() != 0, reason="stopping RabbitMQ needs rabbitmqctl as root"
)
def test_rabbitmq_stopped_and_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    assert RABBITMQCTL is not None
    store = tmp_path / "shop.db"
    seed(store, EVENTS)
    name = f"r-{uuid.uuid4().hex[:10]}"
    queue = asyncio.run(bind_queue(name))
    command = relay_command(store, AMQP, name, "--batch-size", "500")

    def stop() -> None:
        subprocess.run([RABBITMQCTL, "stop_app"], capture_output=True, check=True, timeout=120)
        assert not reachable(5672)

    def start() -> None:
        subprocess.run([RABBITMQCTL, "start_app"], capture_output=True, check=True, timeout=120)
        wait_for(lambda: reachable(5672), "RabbitMQ to listen", 120)

    try:
        ids, err = outage_mid_run(store, command, name, stop, start)
    finally:
        if not reachable(5672):
            start()
        received = asyncio.run(drain_queue(queue, idle=1.0))
    assert list(dict.fromkeys(received)) == ids  # every event, first copies in order
    assert err.count("broker unavailable") == 1 and err.count("broker back") == 1
