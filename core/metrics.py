"""Prometheus metrics of a worker or a relay (``--metrics-port``), with ``prometheus_client``.

Gauges are read from the store at each scrape, so they are the figures ``projections
list`` and ``relays`` print: per projection version and per relay the checkpoint and the
lag in events and in seconds, and the store's head position. Counters and the batch
histogram count what this process did: events applied or published, batch durations,
faults.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from core.workspace import Workspace

__all__ = ["MetricsServer", "serve_metrics"]

#: Batch durations' histogram buckets, in seconds.
BATCH_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class MetricsServer:
    """The HTTP endpoint and the process's counters (see :func:`serve_metrics`)."""

    def __init__(
        self, workspace: Workspace, port: int, host: str, relays: Callable[[], list[Any]]
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(workspace, relays))
        self.applied = Counter(
            "eventscope_projection_events_applied",
            "Events a projection version applied in this process.",
            ["projection"],
            registry=self.registry,
        )
        self.published = Counter(
            "eventscope_relay_events_published",
            "Events a relay published (and the broker confirmed) in this process.",
            ["relay"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "eventscope_batch_duration_seconds",
            "How long a batch took: a relay's (publish until confirmed), or a projection "
            "version's scheduled run (its batches until caught up).",
            ["kind", "name"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.faults = Counter(
            "eventscope_faults",
            "Faults: a projection batch that failed, a relay batch the broker refused.",
            ["kind", "name"],
            registry=self.registry,
        )
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)

    @property
    def port(self) -> int:
        """The port it listens on (the one asked, or the one given for port 0)."""
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(
    workspace: Workspace,
    port: int,
    *,
    host: str = "0.0.0.0",
    relays: Callable[[], list[Any]] = list,
) -> MetricsServer:
    """Serve Prometheus metrics of ``workspace`` (and of ``relays()``: RelayStatus-like
    objects) on ``host:port`` until closed."""
    return MetricsServer(workspace, port, host, relays)


class _StoreCollector:
    """The gauges, read from the store at each scrape."""

    def __init__(self, workspace: Workspace, relays: Callable[[], list[Any]]) -> None:
        self._workspace = workspace
        self._relays = relays
        self._lock = threading.Lock()  # one scrape at a time reads the store

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only (no read of the store at registration)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with self._lock:
            head = self._workspace.events.head_position()
            statuses = self._workspace.projections.statuses()
            relays = self._relays()
        yield GaugeMetricFamily(
            "eventscope_store_head_position", "The position of the store's last event.", head
        )
        projections = [(status.reference, status) for status in statuses]
        yield from _reader_gauges("projection", "a projection version", "applied", projections)
        relayed = [(relay.name, relay) for relay in relays]
        yield from _reader_gauges("relay", "a relay", "published (broker-confirmed)", relayed)


def _reader_gauges(kind: str, who: str, done: str, readers: list[tuple[str, Any]]) -> list[Any]:
    """``eventscope_<kind>_checkpoint``, ``_lag_events`` and ``_lag_seconds``, labelled
    ``<kind>``, for readers of the log (projection versions, relays): (label, status) pairs
    whose status has ``checkpoint``, ``lag`` and ``lag_seconds``."""
    from prometheus_client.core import GaugeMetricFamily

    checkpoint = GaugeMetricFamily(
        f"eventscope_{kind}_checkpoint",
        f"The last position {who} has {done}.",
        labels=[kind],
    )
    lag = GaugeMetricFamily(
        f"eventscope_{kind}_lag_events", f"Events {who} is behind the head.", labels=[kind]
    )
    lag_seconds = GaugeMetricFamily(
        f"eventscope_{kind}_lag_seconds",
        f"How old the oldest event {who} has not {done} is.",
        labels=[kind],
    )
    for label, status in readers:
        checkpoint.add_metric([label], status.checkpoint)
        lag.add_metric([label], status.lag)
        lag_seconds.add_metric([label], status.lag_seconds)
    return [checkpoint, lag, lag_seconds]
