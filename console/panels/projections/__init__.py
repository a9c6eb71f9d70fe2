"""The projections panel: every projection version's status, one version's lag and
throughput charts, runs and fault, and the operator actions (``panel``), over a table of
statuses and one of runs (``model``), the charts (``chart``), the store calls run on the
task runner (``loads``) and what each action applies to and asks (``actions``)."""

from console.panels.projections.panel import ProjectionsPanel

__all__ = ["ProjectionsPanel"]
