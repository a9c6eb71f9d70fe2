"""The table view every record panel uses: whole-row selection, fixed row height, no edits."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

__all__ = ["record_table"]


def record_table(
    parent: QWidget,
    name: str,
    model: QAbstractItemModel,
    column_samples: Iterable[tuple[int, str]],
    *,
    padding: int = 16,
) -> QTableView:
    """A read-only table of records, one per row, selected a whole row at a time.

    Column widths come from sample texts measured with the font, not ResizeToContents,
    which would measure every row of a windowed model.

    Args:
        parent: the owning widget (its font sizes rows and columns).
        name: the view's objectName.
        model: the model shown.
        column_samples: (column, the widest text it usually shows).
        padding: pixels added to each sample's width.
    """
    view = QTableView(parent)
    view.setObjectName(name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    metrics = parent.fontMetrics()
    rows = view.verticalHeader()
    rows.hide()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(metrics.height() + 8)
    view.horizontalHeader().setHighlightSections(False)
    for column, sample in column_samples:
        view.setColumnWidth(column, metrics.horizontalAdvance(sample) + padding)
    return view
