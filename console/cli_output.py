"""What the ``eventscope`` commands print: JSON lines on stdout (DESIGN §6)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import orjson

from core.projections.runner import RunResult

__all__ = ["json_line", "run_line", "write_lines"]


def write_lines(lines: Iterable[bytes]) -> None:
    """Write ``lines`` to stdout in a few large writes, then flush."""
    out = sys.stdout.buffer
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= 512:
            out.write(b"".join(batch))
            batch.clear()
    out.write(b"".join(batch))
    out.flush()


def json_line(value: Any) -> bytes:
    """``value`` as one JSON line."""
    return orjson.dumps(value) + b"\n"


def run_line(result: RunResult) -> dict[str, Any]:
    """A projection run as the JSON object ``projections run`` and ``worker`` print."""
    line: dict[str, Any] = {
        "projection": result.model,
        "from_position": result.from_position,
        "checkpoint": result.checkpoint,
        "events": result.events,
        "seconds": round(result.seconds, 3),
    }
    if result.fault is not None:
        line["fault"] = {
            "position": result.fault.position,
            "event_id": result.fault.event_id,
            "error": result.fault.error,
        }
    return line
