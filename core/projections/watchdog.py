"""Time limits for projection handlers: a handler that runs too long is stopped.

A runner marks which event its handler is applying (:meth:`HandlerWatch.enter`, one
attribute store per event, so the hot loop stays cheap). One daemon thread per process
looks at every watched runner a few times a second; when the same handler call has
gone on past its limit it raises :class:`HandlerTimedOut` inside the runner's thread
(CPython's asynchronous exceptions: delivered at the handler's next bytecode, so a
pure-Python endless loop stops; a call blocked inside C code stops when it returns).
The runner then treats it like any handler that raised: the projection is faulted at
that event.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Final

__all__ = ["HandlerTimedOut", "HandlerWatch"]

#: Seconds between two looks at the watched handlers (at most).
_POLL: Final = 0.1


class HandlerTimedOut(BaseException):
    """Raised inside a handler that ran past its projection's ``time_limit``.

    A BaseException, so a handler's own ``except Exception`` cannot swallow it.
    """


class HandlerWatch:
    """One runner's handler calls, as the watchdog sees them.

    Args:
        limit: seconds one handler call may take.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        #: The position whose handler is running, 0 between handler calls.
        self.position = 0
        self.timed_out = 0  # the position that was stopped, if any
        self._thread = 0
        self._seen = (0, 0.0)  # (position, when the watchdog first saw it)

    def __enter__(self) -> HandlerWatch:
        self._thread = threading.get_ident()
        self.position = self.timed_out = 0
        _watchdog().add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.position = 0
        _watchdog().remove(self)

    def _look(self, now: float) -> None:
        position = self.position
        if position == 0:
            self._seen = (0, now)
            return
        if self._seen[0] != position:
            self._seen = (position, now)
            return
        if now - self._seen[1] >= self.limit and self.timed_out != position:
            self.timed_out = position
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread), ctypes.py_object(HandlerTimedOut)
            )


class _Watchdog:
    def __init__(self) -> None:
        self._watches: set[HandlerWatch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, watch: HandlerWatch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="eventscope-handler-watchdog", daemon=True
                )
                self._thread.start()

    def remove(self, watch: HandlerWatch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _loop(self) -> None:
        while True:
            with self._lock:  # a removed watch is never looked at (or interrupted) again
                now = time.monotonic()
                for watch in self._watches:
                    watch._look(now)
                pause = min([_POLL, *[watch.limit / 4 for watch in self._watches]])
            time.sleep(pause)


_instance: _Watchdog | None = None
_instance_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = _Watchdog()
        return _instance
