"""Time limits of projection handlers: what a handler that runs too long is faulted with.

Nothing here interrupts a thread. A runner times each handler call and its view
checks the deadline at every ``get``/``put``/``delete`` (and the runner when the
handler returns), raising :class:`HandlerTimedOut` from its own code, where no
connection or lock is half used. A handler blocked in C code is only caught when
it returns; projections that need a hard stop set ``isolated = True`` and have their
handlers applied in a child process that is killed instead
(:mod:`core.projections.isolation`).
"""

from __future__ import annotations

__all__ = ["HandlerTimedOut", "timed_out_text"]


class HandlerTimedOut(BaseException):
    """A handler call ran past its projection's ``time_limit``.

    A BaseException, so a handler's own ``except Exception`` cannot swallow it.

    Args:
        limit: the projection's time limit, in seconds.
        how: where the call was stopped, e.g. ``"stopped at its view.get call"``.
    """

    def __init__(self, limit: float, how: str) -> None:
        super().__init__(limit, how)
        self.limit = limit
        self.how = how

    def __str__(self) -> str:
        return timed_out_text(self.limit, self.how)


def timed_out_text(limit: float, how: str) -> str:
    """The fault text of a handler call that ran past ``limit`` seconds (one line)."""
    return (
        f"HandlerTimedOut: the handler ran past the projection's time limit of {limit:g} s ({how})"
    )
