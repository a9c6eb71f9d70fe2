"""The event log: every event in position order, windowed, filtered, with a live tail.

``model`` holds the table model (keyset pages, the windows, the live tail's rows) and
``panel`` the widget (the filter bar, search progress, jumps).
"""

from __future__ import annotations

from console.panels.event_log.model import (
    EVENT_ROLE,
    MAX_PAGES,
    PAGE_SIZE,
    PLACEHOLDER,
    EventLogModel,
)
from console.panels.event_log.panel import (
    PROGRESS_DELAY_MS,
    EventLogPanel,
    FilterInput,
    parse_filter,
)

__all__ = [
    "EVENT_ROLE",
    "MAX_PAGES",
    "PAGE_SIZE",
    "PLACEHOLDER",
    "PROGRESS_DELAY_MS",
    "EventLogModel",
    "EventLogPanel",
    "FilterInput",
    "parse_filter",
]
