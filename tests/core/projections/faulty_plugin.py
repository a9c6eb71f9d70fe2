"""Projections for the fault, time-limit, scheduler and worker tests (loaded as a plugin
file from disk).

All of them sum amounts per account as ``ledger`` does, unless an event's data says
otherwise. ``fragile`` raises on an event whose data says ``poison``. The others have a
time limit of half a second: ``sluggish`` (isolated) loops forever on ``hang``;
``stuck`` (isolated) sleeps, spins, raises or exits as ``stuck`` says; ``gated`` and
``gated_isolated`` take 50 ms an event, and much longer on one whose ``gate`` file
exists; ``dawdling`` (in process) takes 20 ms an event, and sleeps past its limit
before a view call or before returning as ``dawdle`` says.
"""

import os
import time
from pathlib import Path

from core.api import Projection, handles


def _add(view, event):
    account = event.data["account"]
    doc = view.get(account) or {"total": 0, "events": 0}
    doc["total"] += event.data["amount"]
    doc["events"] += 1
    view.put(account, doc)


class Ledger(Projection):
    name = "ledger"
    version = 1
    interval = 0.1

    @handles("Booked")
    def booked(self, view, event):
        _add(view, event)


class Fragile(Projection):
    name = "fragile"
    version = 1
    interval = 0.1

    @handles("Booked")
    def booked(self, view, event):
        if event.data.get("poison"):
            raise ValueError(f"cannot book {event.data['account']}: poisoned")
        _add(view, event)


class Sluggish(Projection):
    name = "sluggish"
    version = 1
    interval = 0.1
    time_limit = 0.5
    isolated = True  # its loop never calls the view: only a kill stops it

    @handles("Booked")
    def booked(self, view, event):
        while event.data.get("hang"):
            pass
        _add(view, event)


class Stuck(Projection):
    name = "stuck"
    version = 1
    interval = 0.1
    time_limit = 0.5
    isolated = True
    memory_limit = 64  # MiB its process may allocate beyond its start

    @handles("Booked")
    def booked(self, view, event):
        how = event.data.get("stuck")
        if how == "hoard":  # allocates without bound (capped at 2 GiB should the cap fail)
            hoard = [bytearray(8 * 1024 * 1024) for _ in range(256)]
            raise RuntimeError(f"hoarded {len(hoard) * 8} MiB unchecked")
        if how == "sleep":
            time.sleep(60)  # blocked in C code
        elif how == "spin":
            while True:
                pass
        elif how == "raise":
            raise ValueError(f"cannot book {event.data['account']}: stuck")
        elif how == "exit":
            os._exit(3)
        _add(view, event)


class Gated(Projection):
    name = "gated"
    version = 1
    time_limit = 0.5

    @handles("Booked")
    def booked(self, view, event):
        time.sleep(0.05)
        gate = event.data.get("gate")
        if gate and os.path.exists(gate):
            time.sleep(0.75)  # then its view.get faults it
        _add(view, event)


class GatedIsolated(Projection):
    name = "gated_isolated"
    version = 1
    time_limit = 0.5
    isolated = True

    @handles("Booked")
    def booked(self, view, event):
        time.sleep(0.05)
        gate = event.data.get("gate")
        while gate and os.path.exists(gate):
            time.sleep(0.01)
        _add(view, event)


class Dawdling(Projection):
    name = "dawdling"
    version = 1
    time_limit = 0.5

    @handles("Booked")
    def booked(self, view, event):
        how = event.data.get("dawdle")
        if how == "then_get":
            time.sleep(0.6)
            try:
                view.get(event.data["account"])
            except Exception:
                pass  # a handler cannot swallow the time limit...
            Path(event.data["marker"]).touch()  # ...so this line is never reached
        elif how == "then_return":
            _add(view, event)
            time.sleep(0.6)
            return
        else:
            time.sleep(0.02)
        _add(view, event)
