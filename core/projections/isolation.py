"""Isolated projections: handlers applied in a child process, killed when a call runs too long.

A runner whose projection sets ``isolated = True`` applies its handlers through an
:class:`IsolatedHandlers`: one long-lived child process, started when first needed,
reused across batches and runs, started again after a kill, and stopped by
:meth:`~IsolatedHandlers.close`, when its owner is dropped, or at interpreter exit.
The child holds no connection: the parent reads and upcasts the events, answers the
child's reads of committed documents, and commits the changes the child sends back.
So killing it can never leave a connection or a lock half used.

The child is a fresh interpreter (never a fork: the console process has Qt and
scheduler threads) running :mod:`core.projections.handler_process` with the parent's
``sys.path``. Messages are pickled tuples, each preceded by its length (8 bytes,
little-endian), on the child's stdin (parent to child) and stdout (child to parent; a
handler's prints go to stderr):

- ``("load", module, qualname, plugin_file, reference, dump_options)``: import the
  projection class (from ``plugin_file`` for a plugin loaded from a folder, else by
  module name); the child answers ``("ready",)`` or ``("failed", traceback)``.
- ``("apply", time_limit, events)``: apply the handlers to the events, in order. While
  it does, the child may ask ``("get", key)`` for a document it has not written in this
  message, and the parent answers ``("doc", stored JSON or b"")``. It ends with
  ``("done", changes, applied, failure)``: the (key, position, stored JSON or None for a
  delete) of the ``applied`` events before ``failure``, which is None or (position, fault
  text): a handler raised (its traceback) or ran past the limit at a view call or when
  it returned.
- End of input: the child exits at once, even in the middle of a handler.

The hard limit costs no message per event: a 24-byte slot file mapped by both processes
holds (call number, position, ``time.monotonic()`` at the start) of the handler call
in progress, position 0 between calls (``time.monotonic()`` is system-wide on Linux,
macOS and Windows). The parent looks at it while it waits, and kills the child when
one call has run past the limit. What the child had applied of the message dies with
it: the parent applies the message's earlier events again in a fresh child, and the
runner commits them with the fault, exactly as when a handler raises.
"""

from __future__ import annotations

import itertools
import mmap
import os
import pickle
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from core.errors import Cancelled, EventscopeError
from core.events import RecordedEvent
from core.projections.definition import Projection
from core.projections.limits import timed_out_text
from core.registry import PLUGIN_MODULE_PREFIX

__all__ = [
    "SLOT",
    "Applied",
    "HandlerFailure",
    "IsolatedHandlers",
    "IsolationFailed",
    "read_message",
    "write_message",
]

#: The slot: call number, position (0: no handler running), start (time.monotonic()).
SLOT: Final = struct.Struct("<qqd")
_LENGTH: Final = struct.Struct("<Q")
#: Events per "apply" message: what a kill makes the parent apply again, at most, and
#: what one message holds in memory on both sides.
CHUNK: Final = 1_000
#: Seconds a child may take to start and import its projection.
START_TIMEOUT: Final = 60.0

Change = tuple[str, int, bytes | None]


class IsolationFailed(EventscopeError):
    """The child process of an isolated projection could not be started, or failed
    outside a handler call (no event to fault on): the run fails, nothing is committed."""


@dataclass(frozen=True, slots=True)
class HandlerFailure:
    """The event a handler failed on in the child, and the fault text."""

    event: RecordedEvent
    error: str


@dataclass(slots=True)
class Applied:
    """What the child did with a batch: the changes of the ``applied`` events before
    ``failure`` (None when every event was applied)."""

    changes: list[Change] = field(default_factory=list)
    applied: int = 0
    failure: HandlerFailure | None = None


@dataclass(frozen=True, slots=True)
class _Lost:
    """The child was killed (or died) in the handler call of ``position``."""

    position: int
    error: str


class _ChildGone(Exception):
    """The child's output ended: it exited, or was killed."""


def write_message(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    """Send one message: its pickled length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_message(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """Receive one message (None at the end of the stream)."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        return None
    message: tuple[Any, ...] = pickle.loads(data)
    return message


class IsolatedHandlers:
    """One projection's handlers, applied in a child process killed past the time limit.

    Args:
        projection: the projection class: importable by module name, or defined in a
            plugin loaded from a folder (not in ``__main__`` or inside a function).
        dump_options: the orjson options documents are stored with.
        chunk: events per message to the child.
    """

    def __init__(
        self, projection: type[Projection], *, dump_options: int, chunk: int = CHUNK
    ) -> None:
        self.projection = projection
        self.limit = float(projection.time_limit)
        self._dump_options = dump_options
        self._chunk = max(1, chunk)
        # Several looks per limit, but not a busy wait for long limits.
        self._poll = min(0.05, max(self.limit / 10, 0.001))
        self._child: _Child | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id, while one is running."""
        child = self._child
        return None if child is None else child.process.pid

    def apply(self, events: Iterable[RecordedEvent], stored: Callable[[str], bytes]) -> Applied:
        """Apply the handlers to ``events`` in the child, up to the first failure.

        Args:
            events: in position order.
            stored: a document's latest committed version (b"" for none).

        Raises:
            IsolationFailed: the child could not start, or failed outside a handler.
            Cancelled: :meth:`close` was called meanwhile (nothing is to be committed).
        """
        result = Applied()
        pending: dict[str, bytes] = {}  # what the batch's earlier messages wrote

        def answer(key: str) -> bytes:
            found = pending.get(key)
            return stored(key) if found is None else found

        source = iter(events)
        while chunk := list(itertools.islice(source, self._chunk)):
            changes, applied, failure = self._apply_chunk(chunk, answer)
            result.changes.extend(changes)
            result.applied += applied
            if failure is not None:
                result.failure = failure
                break
            for key, _, doc in changes:
                pending[key] = b"" if doc is None else doc
        return result

    def close(self) -> None:
        """Stop the child, if one is running (a later :meth:`apply` starts a new one)."""
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.stop()

    def _apply_chunk(
        self, chunk: Sequence[RecordedEvent], answer: Callable[[str], bytes]
    ) -> tuple[list[Change], int, HandlerFailure | None]:
        """Apply one message's events; after a kill, apply the earlier ones again."""
        by_position = {event.position: event for event in chunk}
        lost: HandlerFailure | None = None
        while True:
            if not chunk:
                return [], 0, lost
            outcome = self._apply_once(chunk, answer)
            if isinstance(outcome, _Lost):
                # What the child applied before went with it; a handler that is slow
                # again on an earlier event moves the fault there.
                lost = HandlerFailure(by_position[outcome.position], outcome.error)
                chunk = [event for event in chunk if event.position < outcome.position]
                continue
            changes, applied, failed = outcome
            if failed is not None:
                position, error = failed
                return changes, applied, HandlerFailure(by_position[position], error)
            return changes, applied, lost

    def _apply_once(
        self, chunk: Sequence[RecordedEvent], answer: Callable[[str], bytes]
    ) -> tuple[list[Change], int, tuple[int, str] | None] | _Lost:
        child = self._running_child()
        try:
            child.send(("apply", self.limit, list(chunk)))
            looked = time.monotonic()
            while True:
                message = child.receive(self._poll)
                now = time.monotonic()
                if message is None or now - looked >= self._poll:
                    looked = now
                    position = child.overdue(self.limit, now)
                    if position:
                        self._discard(child)
                        return _Lost(position, timed_out_text(self.limit, "its process was killed"))
                if message is None:
                    continue
                if message[0] == "get":
                    child.send(("doc", answer(message[1])))
                elif message[0] == "done":
                    return message[1], message[2], message[3]
                else:
                    raise IsolationFailed(f"unexpected message from the child: {message[0]!r}")
        except _ChildGone:
            if self._child is not child:
                raise Cancelled(f"{self.projection.reference()}: the runner was closed") from None
            position = child.running_position()
            code = self._discard(child)
            if position:
                return _Lost(
                    position, f"HandlerProcessDied: the handler's process ended (exit code {code})"
                )
            raise IsolationFailed(
                f"{self.projection.reference()}: the handlers' process ended unexpectedly "
                f"(exit code {code})"
            ) from None
        except BaseException:
            self._discard(child)  # in the middle of a message: its state is unknown
            raise

    def _running_child(self) -> _Child:
        """The child, started (and its projection loaded) if there is none."""
        child = self._child
        if child is not None:
            return child
        load = _load_message(self.projection, self._dump_options)
        child = _Child()
        try:
            child.send(load)
            began = time.monotonic()
            while (reply := child.receive(1.0)) is None:
                if time.monotonic() - began > START_TIMEOUT:
                    raise IsolationFailed(
                        f"{self.projection.reference()}: its process did not start in "
                        f"{START_TIMEOUT:g} s"
                    )
            if reply[0] != "ready":
                raise IsolationFailed(
                    f"{self.projection.reference()}: its process could not load it:\n{reply[1]}"
                )
            child.unlink_slot_file()
        except _ChildGone:
            child.stop()
            raise IsolationFailed(
                f"{self.projection.reference()}: its process ended while starting "
                f"(exit code {child.process.returncode})"
            ) from None
        except BaseException:
            child.stop()
            raise
        with self._lock:
            self._child = child
        return child

    def _discard(self, child: _Child) -> int | None:
        """Stop ``child`` (a new one is started when needed); returns its exit code."""
        with self._lock:
            if self._child is child:
                self._child = None
        return child.stop()


def _load_message(projection: type[Projection], dump_options: int) -> tuple[Any, ...]:
    """The "load" message: where the child finds the projection class."""
    module_name, qualname = projection.__module__, projection.__qualname__
    if module_name == "__main__" or "<locals>" in qualname:
        raise IsolationFailed(
            f"{projection.reference()}: an isolated projection must be defined at the top "
            "level of an importable module or plugin file (not in __main__ or in a function): "
            "its process imports it by name"
        )
    plugin_file = None
    top = module_name.partition(".")[0]
    if top.startswith(PLUGIN_MODULE_PREFIX):
        plugin_file = getattr(sys.modules.get(top), "__file__", None)
        if plugin_file is None:
            raise IsolationFailed(f"{projection.reference()}: the file of {top} is unknown")
    return ("load", module_name, qualname, plugin_file, projection.reference(), dump_options)


class _Child:
    """One child process: its pipes, its slot, and the thread reading its messages."""

    def __init__(self) -> None:
        descriptor, path = tempfile.mkstemp(prefix="eventscope-slot-")
        try:
            os.ftruncate(descriptor, SLOT.size)
            self._slot = mmap.mmap(descriptor, SLOT.size)
        finally:
            os.close(descriptor)
        # The parent's sys.path, so the child imports the same core, plugins and tests.
        bootstrap = (
            f"import sys; sys.path[:] = {sys.path!r}; "
            "from core.projections.handler_process import main; main(sys.argv[1:])"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", bootstrap, path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        except BaseException:
            self._slot.close()
            os.unlink(path)
            raise
        self._path = path
        self._inbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._suspect: tuple[int, int, float] | None = None
        # Kills the child when this object goes, or at interpreter exit: never leaked.
        self._finalizer = weakref.finalize(self, _stop_process, self.process, self._slot, path)
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(
            target=_read_messages,
            args=(stdout, self._inbox),
            name=f"eventscope-handlers-{self.process.pid}",
            daemon=True,
        ).start()

    def send(self, message: tuple[Any, ...]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            write_message(stdin, message)
        except (BrokenPipeError, OSError, ValueError):
            raise _ChildGone from None

    def receive(self, timeout: float) -> tuple[Any, ...] | None:
        """The next message, or None when there is none within ``timeout`` seconds.

        Raises:
            _ChildGone: the child's output ended.
        """
        try:
            message = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if message is None:
            self._inbox.put(None)  # every later receive sees the end too
            raise _ChildGone
        return message

    def overdue(self, limit: float, now: float) -> int:
        """The position whose handler call has run past ``limit``, else 0.

        A call is acted on only when two looks in a row read the same slot: a look that
        raced the child's write of a new call (a torn read) is never trusted.
        """
        seen: tuple[int, int, float] = self._read_slot()
        if seen[1] and now - seen[2] > limit:
            if seen == self._suspect:
                return seen[1]
            self._suspect = seen
        else:
            self._suspect = None
        return 0

    def running_position(self) -> int:
        """The position whose handler call is in progress (0: none)."""
        position: int = self._read_slot()[1]
        return position

    def _read_slot(self) -> tuple[int, int, float]:
        try:
            seen: tuple[int, int, float] = SLOT.unpack_from(self._slot)
        except ValueError:  # unmapped: the child was stopped by another thread
            raise _ChildGone from None
        return seen

    def unlink_slot_file(self) -> None:
        """Remove the slot's file once both processes have mapped it (where the system
        allows it), so a parent killed outright leaves nothing behind."""
        try:
            os.unlink(self._path)
        except OSError:
            pass  # Windows: removed when the child is stopped

    def stop(self) -> int | None:
        """Kill the child and free its slot; returns its exit code."""
        self._finalizer()
        return self.process.returncode


def _stop_process(process: subprocess.Popen[bytes], slot: mmap.mmap, path: str) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    if process.stdin is not None:
        try:
            process.stdin.close()
        except OSError:
            pass  # the child is gone: what it did not read does not matter
    slot.close()
    try:
        os.unlink(path)
    except OSError:
        pass


def _read_messages(stream: IO[bytes], inbox: queue.SimpleQueue[tuple[Any, ...] | None]) -> None:
    """Move the child's messages to ``inbox``, then None when its output ends."""
    try:
        while (message := read_message(stream)) is not None:
            inbox.put(message)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError):
        pass
    finally:
        inbox.put(None)
        stream.close()
