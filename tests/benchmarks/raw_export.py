"""Baseline for the export benchmark: the same JSON lines with nothing but sqlite3 and orjson.

Run as a script (``python tests/benchmarks/raw_export.py STORE [LIMIT] > /dev/null``) so its
peak RSS is that of a bare interpreter plus what it needs, never SQLAlchemy or core.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from typing import Final

import orjson

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PAGE: Final = (
    "SELECT position, stream_id, version, type, data, metadata, event_id, recorded_at "
    "FROM events WHERE position > ? ORDER BY position LIMIT ?"
)


def export(path: str, limit: int | None = None) -> None:
    """Write the events of the store at ``path`` to stdout as Eventscope's export lines."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA cache_size=-32000")
    out = sys.stdout.buffer
    dumps = orjson.dumps
    cursor = 0
    remaining = limit
    while remaining is None or remaining > 0:
        size = 1000 if remaining is None else min(1000, remaining)
        rows = conn.execute(_PAGE, (cursor, size)).fetchall()
        out.write(
            b"".join(
                b'{"position":%d,"stream_id":%s,"version":%d,"type":%s,"data":%s,'
                b'"metadata":%s,"event_id":"%s","recorded_at":"%s"}\n'
                % (
                    position,
                    dumps(stream_id),
                    version,
                    dumps(kind),
                    data.encode(),
                    metadata.encode(),
                    event_id.encode(),
                    (_EPOCH + timedelta(microseconds=at))
                    .strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    .encode(),
                )
                for position, stream_id, version, kind, data, metadata, event_id, at in rows
            )
        )
        if len(rows) < size:
            break
        cursor = rows[-1][0]
        if remaining is not None:
            remaining -= len(rows)
    out.flush()
    conn.close()


if __name__ == "__main__":
    export(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
