"""``eventscope worker`` and ``eventscope relay``: commands that run until SIGTERM or
SIGINT, print a JSON line per run or status, and serve Prometheus metrics on
``--metrics-port`` (DESIGN §6)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from console.cli_output import json_line, run_line, write_lines
from core.store.sql.engines import display_location
from core.workspace import Workspace

__all__ = ["relay", "worker"]

EXIT_OK = 0


def worker(args: argparse.Namespace, workspace: Workspace) -> int:
    """``worker [REF]...``: run projections on the scheduler until SIGTERM or SIGINT."""
    from core.scheduler import ProjectionScheduler, TickOutcome  # APScheduler: only here

    stop = threading.Event()
    out_lock = threading.Lock()
    metrics: Any = None

    def report(outcome: TickOutcome) -> None:
        line: dict[str, Any] = {"projection": outcome.model}
        if outcome.result is not None:
            line |= run_line(outcome.result)
        else:
            line["error"] = outcome.error
        if metrics is not None:
            _count_run(metrics, outcome)
        with out_lock:
            write_lines([json_line(line)])

    scheduler = ProjectionScheduler(
        workspace,
        references=args.refs or None,
        worker=args.name,
        lease_seconds=args.lease_seconds,
        on_tick=report,
        max_threads=max(1, args.threads),
        batch_size=max(1, args.batch_size),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.metrics_port is not None:
        from core.metrics import serve_metrics

        metrics = serve_metrics(workspace, args.metrics_port)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    scheduler.start()
    print(
        f"eventscope: worker {scheduler.worker} running "
        f"{', '.join(scheduler.projections)} on {workspace.display_location}",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    scheduler.shutdown()
    if metrics is not None:
        metrics.close()
    print(f"eventscope: worker {scheduler.worker} stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def relay(args: argparse.Namespace, workspace: Workspace) -> int:
    """``relay URL``: publish every stored event, then each new one, until SIGTERM or
    SIGINT; a status line every ``--status-seconds`` and one at the end.

    Raises:
        RelayLeased: another relay of the name runs.
        RelayFaulted: an event the broker can never take stopped it.
    """
    from core.relay.publishers import open_publisher
    from core.relay.relay import Relay

    stop = threading.Event()
    failure: list[BaseException] = []
    for noisy in ("aiormq", "aio_pika", "nats"):  # their reconnect chatter; the relay says it once
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    def connect() -> Any:
        return open_publisher(
            args.url,
            subject=args.subject,
            jetstream_stream=args.jetstream_stream,
            exchange=args.exchange,
        )

    metrics: Any = None
    relay = Relay(
        workspace,
        connect,
        name=args.name,
        batch_size=args.batch_size,
        lease_seconds=args.lease_seconds,
        on_batch=lambda events, seconds: _count_batch(metrics, args.name, events, seconds),
        on_fault=lambda _error: _count_fault(metrics, args.name),
    )
    if args.metrics_port is not None:
        from core.metrics import serve_metrics

        metrics = serve_metrics(workspace, args.metrics_port, relays=lambda: [relay.status()])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def run() -> None:
        try:
            relay.run(stop, from_position=args.from_position, skip_fault=args.skip_fault)
        except BaseException as error:  # reported by the main thread
            failure.append(error)
            _count_fault(metrics, args.name)
            stop.set()

    thread = threading.Thread(target=run, name=f"relay {args.name}", daemon=True)
    thread.start()
    print(
        f"eventscope: relay {args.name!r} ({relay.worker}) publishing "
        f"{workspace.display_location} to {display_location(args.url)}",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(args.status_seconds):
        write_lines([json_line(relay.status().to_dict())])
    thread.join()
    write_lines([json_line(relay.status().to_dict())])
    if metrics is not None:
        metrics.close()
    if failure:
        raise failure[0]
    print(f"eventscope: relay {args.name!r} stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _count_batch(metrics: Any, name: str, events: int, seconds: float) -> None:
    if metrics is not None:
        metrics.published.labels(relay=name).inc(events)
        metrics.batch_seconds.labels(kind="relay", name=name).observe(seconds)


def _count_fault(metrics: Any, name: str) -> None:
    if metrics is not None:
        metrics.faults.labels(kind="relay", name=name).inc()


def _count_run(metrics: Any, outcome: Any) -> None:
    result = outcome.result
    if result is None:
        if outcome.error is not None:
            metrics.faults.labels(kind="projection", name=outcome.model).inc()
        return
    metrics.applied.labels(projection=outcome.model).inc(result.events)
    metrics.batch_seconds.labels(kind="projection", name=outcome.model).observe(result.seconds)
    if result.fault is not None:
        metrics.faults.labels(kind="projection", name=outcome.model).inc()
