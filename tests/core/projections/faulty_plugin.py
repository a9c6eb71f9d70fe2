"""Projections for the fault, scheduler and worker tests (loaded as a plugin file from disk).

``ledger`` sums amounts per account and never fails; ``fragile`` raises on an event
whose data says ``poison``; ``sluggish`` loops forever on one that says ``hang`` (its
time limit is half a second).
"""

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

    @handles("Booked")
    def booked(self, view, event):
        while event.data.get("hang"):
            pass
        _add(view, event)
