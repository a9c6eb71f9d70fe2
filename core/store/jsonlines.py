"""The JSON-lines form of events (DESIGN §2), read by ``import`` and written by ``export``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

import orjson

from core.errors import ImportFailed, InvalidEvent
from core.events import NewEvent, format_time, from_micros, parse_time, to_micros
from core.store.port import ImportRecord, RawEvent, prepare_events
from core.store.validation import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    decode_json,
    validate_stream_id,
)

__all__ = ["export_line", "parse_import_lines"]

_FIELDS: Final = frozenset(
    {"position", "stream_id", "version", "type", "data", "metadata", "event_id", "recorded_at"}
)


def export_line(row: RawEvent) -> bytes:
    """One event as a JSON line (with its newline), built from the stored JSON text.

    The payloads are copied as stored, not decoded and re-encoded, so export is exact
    and fast.
    """
    return b"".join(
        (
            b'{"position":',
            str(row.position).encode(),
            b',"stream_id":',
            orjson.dumps(row.stream_id),
            b',"version":',
            str(row.version).encode(),
            b',"type":',
            orjson.dumps(row.type),
            b',"data":',
            row.data.encode(),
            b',"metadata":',
            row.metadata.encode(),
            b',"event_id":',
            orjson.dumps(row.event_id),  # a damaged id can hold a quote or a control character
            b',"recorded_at":"',
            format_time(from_micros(row.recorded_at)).encode(),
            b'"}\n',
        )
    )


def parse_import_lines(
    lines: Iterable[bytes | str],
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Iterator[ImportRecord]:
    """Parse JSON lines lazily into import records; blank lines are skipped.

    ``position`` is ignored; ``version``, when given, is the place the event must take;
    ``recorded_at``, when given, is kept (the store still never lets time go backwards).
    JSON that orjson would change silently (a duplicate key, an integer beyond 64 bits)
    is refused (see :func:`~core.store.validation.decode_json`).

    Raises:
        ImportFailed: ``line N: reason`` for the first bad line.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield _parse_line(number, line, max_payload_bytes)
        except InvalidEvent as error:
            raise ImportFailed(number, str(error), error) from None


def _parse_line(number: int, line: bytes | str, max_payload_bytes: int) -> ImportRecord:
    try:
        fields = decode_json(line)
    except ValueError as error:
        reason = str(error).replace("line 1 column", "column")
        raise ImportFailed(number, f"invalid JSON ({reason})") from None
    if not isinstance(fields, dict):
        raise ImportFailed(number, "not a JSON object")
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise ImportFailed(number, f"unknown field(s) {', '.join(unknown)}")
    for required in ("stream_id", "type"):
        if required not in fields:
            raise ImportFailed(number, f"missing {required}")
    stream_id = validate_stream_id(fields["stream_id"])
    version = fields.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 0
    ):
        raise ImportFailed(number, f"version: must be an integer >= 0, not {version!r}")
    recorded_at = fields.get("recorded_at")
    micros: int | None = None
    if recorded_at is not None:
        if not isinstance(recorded_at, str):
            raise ImportFailed(number, "recorded_at: must be an ISO-8601 time text")
        try:
            micros = to_micros(parse_time(recorded_at))
        except ValueError as error:
            raise ImportFailed(number, f"recorded_at: {error}") from None
    event_id = fields.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise ImportFailed(number, "event_id: must be a UUID text")
    new_event = (
        NewEvent(fields["type"], fields.get("data", {}), fields.get("metadata", {}), event_id)
        if event_id is not None
        else NewEvent(fields["type"], fields.get("data", {}), fields.get("metadata", {}))
    )
    (prepared,) = prepare_events([new_event], max_payload_bytes)
    return ImportRecord(number, stream_id, prepared, version, micros)
