"""Value types of the event model (DESIGN §2): new and recorded events, expected versions."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "ExpectedVersion",
    "NewEvent",
    "RecordedEvent",
    "StreamInfo",
    "category_of",
    "format_time",
    "from_micros",
    "new_event_id",
    "parse_time",
    "to_micros",
    "wall_clock_micros",
]

JsonObject = dict[str, Any]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def wall_clock_micros() -> int:
    """Now, in microseconds since the Unix epoch (the stores' default clock)."""
    return time.time_ns() // 1000


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no zone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime at a count of microseconds since the Unix epoch."""
    return _EPOCH + timedelta(0, 0, micros)


#: The last time :func:`format_time` formatted, and its text (kept alive, so identity is safe).
_last_formatted: tuple[datetime, str] = (_EPOCH, "1970-01-01T00:00:00.000000Z")


def format_time(moment: datetime) -> str:
    """ISO-8601 in UTC with microseconds and a ``Z``: ``2026-03-01T10:15:00.123456Z``.

    Cheap enough to call in every projection handler: the last time formatted is
    remembered by identity (the events of one append, as read, share one ``datetime``
    object, and the handlers of one event share its ``recorded_at``), and UTC times,
    as the store records them, take ``isoformat`` (a third of ``strftime``'s cost).
    """
    global _last_formatted  # a one-entry memo: a tuple, swapped in one assignment
    last = _last_formatted
    if last[0] is moment:
        return last[1]
    if moment.tzinfo is UTC and moment.year >= 1000:  # strftime does not pad years < 1000
        text = moment.isoformat()[:-6]  # without "+00:00"; no fraction at 0 microseconds
        text = f"{text}Z" if moment.microsecond else f"{text}.000000Z"
    else:
        text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _last_formatted = (moment, text)
    return text


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time that carries a zone (``Z`` or ``±HH:MM``) into aware UTC.

    Raises:
        ValueError: the text is not ISO-8601, or it has no zone.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone (add Z or +HH:MM)")
    return moment.astimezone(UTC)


def category_of(stream_id: str) -> str:
    """The category of a stream: the part before the first ``-`` (``order-17`` -> ``order``)."""
    return stream_id.split("-", 1)[0]


_uuid7_lock = threading.Lock()
_uuid7_last = 0
#: Random bytes for ids, read from the system 4 KiB at a time (a read per id cost a
#: system call each); a forked child must not reuse its parent's, so it starts anew.
_random_pool = b""
_random_offset = 0


def _forget_random_pool() -> None:
    global _random_pool, _random_offset
    _random_pool, _random_offset = b"", 0


os.register_at_fork(after_in_child=_forget_random_pool)


def new_event_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562), so the event-id index stays append-only.

    Within one process the ids are strictly increasing, even inside one millisecond
    (the 12 ``rand_a`` bits count, and borrow the clock when they overflow).
    """
    global _uuid7_last, _random_pool, _random_offset
    with _uuid7_lock:
        stamp = (time.time_ns() // 1_000_000) << 12
        stamp = max(stamp, _uuid7_last + 1)
        _uuid7_last = stamp
        offset = _random_offset
        if offset >= len(_random_pool):
            _random_pool, offset = os.urandom(4096), 0
        _random_offset = offset + 8
        random_bits = int.from_bytes(_random_pool[offset : offset + 8])
    # 48-bit milliseconds | version 7 | 12-bit counter | variant 0b10 | 62 random bits,
    # formatted group by group (no 128-bit integer is built).
    millis = stamp >> 12
    return (
        f"{millis >> 16:08x}-{millis & 0xFFFF:04x}-{0x7000 | (stamp & 0xFFF):04x}-"
        f"{0x8000 | (random_bits >> 48 & 0x3FFF):04x}-{random_bits & 0xFFFF_FFFF_FFFF:012x}"
    )


def _normalise_event_id(value: str | uuid.UUID) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        from core.errors import InvalidEvent

        raise InvalidEvent("event_id", f"{value!r} is not a UUID") from None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its type, payload and metadata; the store assigns the rest.

    ``event_id`` defaults to a fresh time-ordered UUID; pass one to make a retry
    idempotent.
    """

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=new_event_id)

    def __post_init__(self) -> None:
        if not isinstance(self.event_id, str) or len(self.event_id) != 36:
            object.__setattr__(self, "event_id", _normalise_event_id(self.event_id))


class RecordedEvent(NamedTuple):
    """An event as stored: DESIGN §2, the contract seen by readers and projections.

    Immutable. A named tuple rather than a frozen dataclass: readers build millions of
    these, and a tuple is built about eight times faster (see docs/benchmarks.md).
    """

    position: int
    stream_id: str
    version: int
    type: str
    data: JsonObject
    metadata: JsonObject
    event_id: str
    recorded_at: datetime

    @property
    def category(self) -> str:
        """The stream's category (the part of ``stream_id`` before the first ``-``)."""
        return category_of(self.stream_id)

    def to_dict(self) -> JsonObject:
        """The JSON form of DESIGN §2, with ``recorded_at`` as ``…Z`` text."""
        return {
            "position": self.position,
            "stream_id": self.stream_id,
            "version": self.version,
            "type": self.type,
            "data": self.data,
            "metadata": self.metadata,
            "event_id": self.event_id,
            "recorded_at": format_time(self.recorded_at),
        }


ExpectedKind = Literal["any", "no_stream", "stream_exists", "exact"]


@dataclass(frozen=True, slots=True)
class ExpectedVersion:
    """What an append expects of its stream (KurrentDB semantics).

    ``any`` accepts every state, ``no_stream`` a stream with no events,
    ``stream_exists`` one with at least one event, and an exact version N a
    stream whose last event has version N.
    """

    kind: ExpectedKind
    version: int | None = None

    @classmethod
    def exact(cls, version: int) -> ExpectedVersion:
        """Expect the stream's last event to have this version."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ValueError(f"an exact expected version is an integer >= 0, not {version!r}")
        return cls("exact", version)

    @classmethod
    def coerce(cls, value: ExpectedVersion | int | str | None) -> ExpectedVersion:
        """Accept an ExpectedVersion, an int (exact), ``None`` (any) or text (see ``parse``)."""
        if isinstance(value, ExpectedVersion):
            return value
        if value is None:
            return ANY
        if isinstance(value, str):
            return cls.parse(value)
        return cls.exact(value)

    @classmethod
    def parse(cls, text: str) -> ExpectedVersion:
        """Parse ``any``, ``no_stream``, ``stream_exists`` or a version number."""
        word = text.strip().lower().replace("-", "_")
        if word in ("any", "no_stream", "stream_exists"):
            return cls(word)  # type: ignore[arg-type]
        if word.isdigit():
            return cls.exact(int(word))
        raise ValueError(
            f"expected version {text!r} is not any, no_stream, stream_exists or a number"
        )

    def matches(self, current: int | None) -> bool:
        """Whether a stream whose last version is ``current`` (None: no stream) satisfies this."""
        if self.kind == "any":
            return True
        if self.kind == "no_stream":
            return current is None
        if self.kind == "stream_exists":
            return current is not None
        return current == self.version

    def __str__(self) -> str:
        return str(self.version) if self.kind == "exact" else self.kind


ANY: Final = ExpectedVersion("any")
NO_STREAM: Final = ExpectedVersion("no_stream")
STREAM_EXISTS: Final = ExpectedVersion("stream_exists")


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream in a listing: its size and the span of its events."""

    stream_id: str
    category: str
    version: int
    event_count: int
    first_position: int
    last_position: int
    first_recorded_at: datetime
    last_recorded_at: datetime

    def to_dict(self) -> JsonObject:
        """The JSON form printed by ``eventscope streams``."""
        return {
            "stream_id": self.stream_id,
            "category": self.category,
            "version": self.version,
            "event_count": self.event_count,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "first_recorded_at": format_time(self.first_recorded_at),
            "last_recorded_at": format_time(self.last_recorded_at),
        }
