"""The one module plugin authors import: projections, commands, upcasters, demo histories.

Everything here is a contract (DESIGN §4): it is extended, never broken.
"""

from __future__ import annotations

from core.commands.definition import Field, Rejected, command, evolver
from core.demo import DemoEvent, demo_history
from core.events import NewEvent, RecordedEvent, format_time
from core.projections.definition import DictView, Projection, View, handles
from core.upcasting import upcaster

__all__ = [
    "DemoEvent",
    "DictView",
    "Field",
    "NewEvent",
    "Projection",
    "RecordedEvent",
    "Rejected",
    "View",
    "command",
    "demo_history",
    "evolver",
    "format_time",
    "handles",
    "upcaster",
]
