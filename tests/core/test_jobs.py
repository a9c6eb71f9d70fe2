"""Job.cancel() never runs its hooks on the cancelling thread, never waits for them, and
never runs a hook whose block has exited (its connection may serve another query)."""

from __future__ import annotations

import threading

import pytest

from core.errors import Cancelled
from core.jobs import Job

#: How long a test waits for a hook to be reached (a deadline against hanging, never a
#: measurement).
DEADLINE = 30.0


def test_a_hook_runs_on_another_thread_than_the_cancelling_one() -> None:
    job = Job()
    ran_on: list[int] = []
    ran = threading.Event()

    def hook() -> None:
        ran_on.append(threading.get_ident())
        ran.set()

    with job.on_cancel(hook):
        job.cancel()
        assert ran.wait(DEADLINE)
    assert ran_on and ran_on[0] != threading.get_ident()
    with pytest.raises(Cancelled):
        job.check()


def test_cancel_returns_while_a_hook_is_still_blocked() -> None:
    job = Job()
    entered = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def blocked_hook() -> None:
        entered.set()
        release.wait(DEADLINE)
        finished.set()

    with job.on_cancel(blocked_hook):
        job.cancel()  # would block for DEADLINE seconds if it ran the hook itself
        assert job.cancelled
        assert entered.wait(DEADLINE)
        assert not finished.is_set()
        release.set()  # the block's exit waits for the running hook
    assert finished.is_set()


def test_a_hook_whose_block_has_exited_never_runs() -> None:
    # The hook runner is one thread taking hooks in order: hold it with a blocked hook,
    # queue a second job's hook behind it, leave that hook's block, then let both go.
    holding, queued, drained = Job(), Job(), Job()
    held = threading.Event()
    release = threading.Event()
    late: list[str] = []
    done = threading.Event()

    def hold() -> None:
        held.set()
        release.wait(DEADLINE)

    with holding.on_cancel(hold):
        holding.cancel()
        assert held.wait(DEADLINE)
        with queued.on_cancel(lambda: late.append("ran after its block exited")):
            queued.cancel()  # the hook waits in the queue, behind hold()
        release.set()
    with drained.on_cancel(done.set):
        drained.cancel()
        assert done.wait(DEADLINE)  # every hook queued before it has been taken
    assert late == []


def test_a_hook_that_fails_does_not_stop_the_others() -> None:
    job = Job()
    ran = threading.Event()

    def failing() -> None:
        raise RuntimeError("the server is gone")

    with job.on_cancel(failing), job.on_cancel(ran.set):
        job.cancel()
        assert ran.wait(DEADLINE)
