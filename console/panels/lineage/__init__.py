"""The lineage view: every event that changed one read-model document (``view``), as a
table (``model``)."""

from console.panels.lineage.view import LineageView

__all__ = ["LineageView"]
