"""The writer the ``crashes`` study kills: appends and imports until SIGKILL.

    python -m tests.reliability.writer LOCATION ACK_FILE BATCH_PREFIX SEED [IMPORT_SHARE]
        [IMPORT_MIN IMPORT_MAX]

It prints ``ready`` once the store is open, then loops. Each round is one batch: an
append of 1-50 events to an ``account-N`` stream with the exact expected version, or
(``IMPORT_SHARE`` of the time) an import of IMPORT_MIN..IMPORT_MAX records. Every event
carries ``{"batch": ID, "size": N}`` in its metadata, so a reader can tell a whole batch
from a torn one. Before each call a ``start`` line in ACK_FILE names the batch in flight;
only after the call returned is the batch acknowledged: one JSON line appended to
ACK_FILE and fsync-ed. A batch acknowledged there must survive a crash.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator

import orjson

from core.events import NO_STREAM, ExpectedVersion, NewEvent
from core.store import SqlEventStore
from core.store.jsonlines import parse_import_lines

__all__ = ["STREAMS", "import_lines", "main"]

#: How many ``account-N`` streams the appends spread over.
STREAMS = 20


def main(argv: list[str]) -> int:
    """Write batches until killed (it never returns on its own)."""
    location, ack_path, prefix, seed = argv[:4]
    import_share = float(argv[4]) if len(argv) > 4 else 0.2
    import_min, import_max = (int(argv[5]), int(argv[6])) if len(argv) > 6 else (100, 2_000)
    rng = random.Random(int(seed))
    store = SqlEventStore.open(location, busy_timeout=30.0)
    ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print("ready", flush=True)
    sequence = 0
    while True:
        sequence += 1
        batch = f"{prefix}-{sequence}"
        kind = "import" if rng.random() < import_share else "append"
        # The intent is not fsync-ed: it only tells the study what the kill interrupted.
        os.write(ack, orjson.dumps({"start": batch, "kind": kind}) + b"\n")
        if kind == "import":
            size = rng.randint(import_min, import_max)
            result = store.import_records(parse_import_lines(import_lines(batch, size)))
            line = {"batch": batch, "kind": "import", "size": size, "appended": result.appended}
        else:
            size = rng.randint(1, 50)
            stream_id = f"account-{rng.randrange(STREAMS)}"
            info = store.stream_info(stream_id)
            expected = NO_STREAM if info is None else ExpectedVersion.exact(info.version)
            events = [
                NewEvent("Deposited", {"amount": i}, {"batch": batch, "size": size})
                for i in range(size)
            ]
            appended = store.append_to_stream(stream_id, events, expected)
            line = {
                "batch": batch,
                "kind": "append",
                "size": size,
                "last_position": appended.last_position,
            }
        os.write(ack, orjson.dumps(line) + b"\n")
        os.fsync(ack)


def import_lines(batch: str, size: int) -> Iterator[bytes]:
    """An import's JSON lines: ``size`` events over a few new streams of its own."""
    for i in range(size):
        yield orjson.dumps(
            {
                "stream_id": f"import-{batch}-{i % 7}",
                "type": "Imported",
                "data": {"line": i},
                "metadata": {"batch": batch, "size": size},
            }
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
