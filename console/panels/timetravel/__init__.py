"""The time-travel panel: a read model or a stream at any point of the log (issue 13)."""

from console.panels.timetravel.panel import TimeTravelPanel

__all__ = ["TimeTravelPanel"]
