"""The commands panel: the plugins' commands as forms checked as they are typed, a dry
run and an audited execution (``panel``), the form (``form``) and what a run did
(``results``)."""

from console.panels.commands.panel import CommandsPanel

__all__ = ["CommandsPanel"]
