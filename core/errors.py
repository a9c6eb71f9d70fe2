"""The error hierarchy: every failure a caller of the engine can see."""

from __future__ import annotations

__all__ = [
    "BrokerSetupError",
    "BrokerUnavailable",
    "Cancelled",
    "DuplicateEventId",
    "EventscopeError",
    "ImportFailed",
    "InvalidEvent",
    "NewerSchema",
    "NotAnEventStore",
    "SourceReadOnly",
    "StoreBusy",
    "StoreClosed",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreNotFound",
    "StoreReadOnly",
    "StoreUnreachable",
    "StoreUnusable",
    "WrongExpectedVersion",
    "last_line",
    "one_line",
]


class EventscopeError(Exception):
    """Base class of every error raised by the engine."""


class InvalidEvent(EventscopeError, ValueError):
    """An event (or its stream id) breaks the rules of DESIGN §2.

    Args:
        field: the offending field, e.g. ``"data"`` or ``"stream_id"``.
        reason: what is wrong with it, in a few words.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidFilter(EventscopeError, ValueError):
    """A read's filter cannot be used (text that is not valid UTF-8, a wrong type)."""


class WrongExpectedVersion(EventscopeError):
    """An append's expected version does not match the stream; nothing was appended."""

    def __init__(self, stream_id: str, expected: object, actual: int | None) -> None:
        shown = "no stream" if actual is None else f"version {actual}"
        super().__init__(
            f"wrong expected version for stream {stream_id!r}: expected {expected}, "
            f"the stream is at {shown}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEventId(EventscopeError):
    """An event id is already stored somewhere other than where it was appended again."""

    def __init__(self, event_id: str, stream_id: str, version: int) -> None:
        super().__init__(
            f"event_id {event_id} is already stored in stream {stream_id!r} at version {version}"
        )
        self.event_id = event_id
        self.stream_id = stream_id
        self.version = version


class ImportFailed(EventscopeError):
    """A line of an import is bad; the whole import was rolled back."""

    def __init__(self, line: int, reason: str, cause: Exception | None = None) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason
        self.cause = cause


class StoreError(EventscopeError):
    """The store failed to do what was asked (driver errors are translated to this)."""


class StoreBusy(StoreError):
    """Another writer held the store for longer than the busy timeout."""


class StoreClosed(StoreError):
    """The store (or the handle holding it) was closed; it stays unusable (open it
    again to use it)."""


class StoreFull(StoreError):
    """The disk (or the database server's) is full: the write was rolled back whole, and
    the store works again once space is freed (exit code 1: reads still work)."""


class StoreReadOnly(StoreError):
    """A write was attempted on a store opened read-only."""


class StoreUnusable(StoreError):
    """The store cannot be opened at all (exit code 5)."""


class StoreNotFound(StoreUnusable):
    """The store file or database does not exist."""


class StoreCorrupt(StoreUnusable):
    """The file is not a readable SQLite database (random bytes, truncated, malformed)."""


class NotAnEventStore(StoreUnusable):
    """The database is readable but holds no Eventscope schema."""


class NewerSchema(StoreUnusable):
    """The store was written by a newer Eventscope; it is refused and left untouched."""


class OlderSchema(StoreUnusable):
    """A shared (PostgreSQL) store has an older schema: it is upgraded only by an explicit
    ``eventscope migrate``, never by a writable open."""


class StoreUnreachable(StoreUnusable):
    """The database server cannot be reached."""


class SourceReadOnly(StoreUnusable, StoreReadOnly):
    """Another tool's store (a foreign source) was opened writable, or written to: it is
    only ever read (exit code 5; ``import-from`` copies it into an Eventscope store)."""


class Cancelled(EventscopeError):
    """The caller cancelled the work (see :mod:`core.jobs`); nothing it wrote was kept."""


class BrokerUnavailable(EventscopeError):
    """A message broker cannot be reached, or did not confirm a publish in time.

    The message is one line and never shows a password. Nothing of the batch counts as
    published: the caller sends the whole batch again later (ids deduplicate).
    """


class BrokerSetupError(EventscopeError):
    """The broker answers, but is set up so that publishing as asked cannot work (a
    JetStream stream whose subjects do not cover the relay's, an exchange of another
    type). Retrying would not help: the relay stops, saying what to change."""


def one_line(text: str) -> str:
    """``text`` fit for a one-line message: every character that is not printable (a line
    break, a vertical tab, a control byte a damaged row decodes to) shown as its escape
    (``\\x0b``), so that no reader splits the line there."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def last_line(text: str) -> str:
    """The last line of a traceback (the exception and its message), for one-line reports."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else text
