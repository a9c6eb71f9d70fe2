"""The child process of an isolated projection: applies its handlers and holds no connection.

Started by :class:`core.projections.isolation.IsolatedHandlers` with the path of its
slot file as the only argument; the protocol is described in
:mod:`core.projections.isolation`. The parent decides when this process ends: it kills
it past the time limit, and closing its input ends it at once.
"""

from __future__ import annotations

import importlib
import mmap
import os
import queue
import resource
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final

import orjson

from core.events import RecordedEvent
from core.projections.definition import JsonDoc, Projection
from core.projections.isolation import SLOT, Change, read_message, write_message
from core.projections.limits import HandlerTimedOut

__all__ = ["main"]

#: The slot's position field alone (its offset is 8), cleared when a handler call ends.
_POSITION: Final = struct.Struct("<q")
_Inbox = queue.SimpleQueue[tuple[Any, ...]]


class _ChildView:
    """The view handlers see in the child: reads through this message's own changes,
    then the parent (each key asked once per message); writes are recorded at the
    current event's position, as :class:`core.projections.runner._RecordingView` does.
    """

    def __init__(self, session: _Session) -> None:
        self._session = session
        self._asked: dict[str, bytes] = {}
        self.pending: dict[str, bytes] = {}
        self.changes: list[Change] = []
        self.position = 0
        self.deadline = 0.0

    def _current(self, key: str) -> bytes:
        stored = self.pending.get(key)
        if stored is None:
            stored = self._asked.get(key)
            if stored is None:
                stored = self._asked[key] = self._session.ask(key)
        return stored

    def _check(self, call: str) -> None:
        if time.monotonic() > self.deadline:
            raise HandlerTimedOut(self._session.limit, f"stopped at its {call} call")

    def get(self, key: str) -> JsonDoc | None:
        self._check("view.get")
        stored = self._current(key)
        if not stored:
            return None
        doc: JsonDoc = orjson.loads(stored)
        return doc

    def put(self, key: str, doc: JsonDoc) -> None:
        self._check("view.put")
        if not isinstance(key, str):
            raise TypeError(f"read-model keys are text, not {type(key).__name__}")
        if not isinstance(doc, dict):
            raise TypeError(f"read-model documents are JSON objects, not {type(doc).__name__}")
        stored = orjson.dumps(doc, option=self._session.dump_options)
        if self._current(key) == stored:
            return  # no change, no new version
        self.pending[key] = stored
        self.changes.append((key, self.position, stored))

    def delete(self, key: str) -> None:
        self._check("view.delete")
        if not self._current(key):
            return
        self.pending[key] = b""
        self.changes.append((key, self.position, None))


class _Session:
    """The projection this process applies, and its conversation with the parent."""

    def __init__(self, inbox: _Inbox, output: IO[bytes], slot: mmap.mmap) -> None:
        self._inbox = inbox
        self._output = output
        self._slot = slot
        self._calls = 0
        self.limit = 0.0
        self.dump_options = 0

    def serve(self) -> None:
        """Load the projection, then apply every "apply" message until input ends."""
        _, module, qualname, plugin_file, reference, self.dump_options = self._inbox.get()
        try:
            projection = _import_projection(module, qualname, plugin_file, reference)()
            _limit_memory(type(projection).memory_limit)
        except BaseException as failure:
            self._send(("failed", "".join(traceback.format_exception(failure)).rstrip()))
            return
        self._send(("ready",))
        while True:
            _, self.limit, events = self._inbox.get()
            self._apply(projection, events)

    def ask(self, key: str) -> bytes:
        """A document as the parent has it (b"" for none)."""
        self._send(("get", key))
        _, stored = self._inbox.get()
        answer: bytes = stored
        return answer

    def _apply(self, projection: Projection, events: Sequence[RecordedEvent]) -> None:
        view = _ChildView(self)
        changes = view.changes
        limit = self.limit
        applied = 0
        failure: tuple[int, str] | None = None
        for event in events:
            view.position = event.position
            kept = len(changes)
            self._calls += 1
            started = time.monotonic()
            SLOT.pack_into(self._slot, 0, self._calls, event.position, started)
            view.deadline = started + limit
            try:
                projection.apply(view, event)
                if time.monotonic() > view.deadline:
                    raise HandlerTimedOut(limit, "faulted when it returned")
            except HandlerTimedOut as timed_out:
                failure = (event.position, str(timed_out))
            except BaseException as raised:  # SystemExit too: a fault, not a crash
                failure = (event.position, "".join(traceback.format_exception(raised)).rstrip())
            finally:
                _POSITION.pack_into(self._slot, 8, 0)
            if failure is not None:
                del changes[kept:]
                break
            applied += 1
        self._send(("done", changes, applied, failure))

    def _send(self, message: tuple[Any, ...]) -> None:
        write_message(self._output, message)


def _import_projection(
    module_name: str, qualname: str, plugin_file: str | None, reference: str
) -> type[Projection]:
    """The projection class, imported the way the parent's registry imported it."""
    if plugin_file is not None:
        from core.registry import import_plugin_file  # plugins from a folder only

        import_plugin_file(module_name.partition(".")[0], Path(plugin_file))
    found: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, Projection)):
        raise TypeError(f"{module_name}.{qualname} is not a projection class")
    if found.reference() != reference:
        raise ValueError(f"{module_name}.{qualname} is now {found.reference()}, not {reference}")
    return found


def _limit_memory(mebibytes: int) -> None:
    """Cap this process's address space at what it has now plus ``mebibytes`` (Linux:
    from /proc/self/statm; elsewhere no cap), so a handler that allocates without bound
    gets a MemoryError, which faults its projection."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return
    cap = pages * resource.getpagesize() + mebibytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _read_input(stream: IO[bytes], inbox: _Inbox) -> None:
    """Move the parent's messages to ``inbox``; exit when the input ends (the parent
    closed it, or is gone), even while a handler runs."""
    try:
        while (message := read_message(stream)) is not None:
            inbox.put(message)
    finally:
        os._exit(0)


def main(argv: Sequence[str]) -> None:
    """Serve the parent on stdin/stdout; ``argv`` is [the slot file's path]."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    output = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # A handler's print() goes to stderr: on stdout it would break the protocol.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    with open(argv[0], "r+b") as file:
        slot = mmap.mmap(file.fileno(), SLOT.size)
    inbox: _Inbox = queue.SimpleQueue()
    threading.Thread(
        target=_read_input, args=(sys.stdin.buffer, inbox), name="parent-input", daemon=True
    ).start()
    _Session(inbox, output, slot).serve()
