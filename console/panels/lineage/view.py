"""The lineage view: every event that changed one document of a read model, oldest first."""

from __future__ import annotations

from typing import cast

from PySide6.QtCore import QModelIndex, Signal, Slot
from PySide6.QtWidgets import QLabel, QTableView, QVBoxLayout, QWidget

from console.panels.lineage.model import (
    COLUMN_POSITION,
    LineageModel,
)
from console.record_table import record_table
from console.workers import TaskGroup, TaskRunner
from core.errors import last_line
from core.services.timetravel import TimeTravel
from core.timetravel.lineage import DocumentChange

__all__ = ["LineageView"]

_MARGIN = 4


class LineageView(QWidget):
    """Where a document came from: position, time, stream@version, type, kind and changed
    fields of each event that changed it (a row's tooltip shows before → after).

    The lineage is looked up on the task runner; a new document replaces the one loading.
    Selecting a row emits ``event_selected`` with the event's position.

    Args:
        timetravel: where lineages come from.
        runner: where they are looked up.
        parent: the usual QWidget parent.
    """

    lineage_loaded = Signal(int)  # rows shown
    lineage_failed = Signal(str)
    event_selected = Signal(int)  # the log position of the event chosen

    def __init__(
        self, timetravel: TimeTravel, runner: TaskRunner, *, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("lineageView")
        self._timetravel = timetravel
        self._runner = runner
        self._tasks = TaskGroup(self)
        self._generation = 0
        self._reference = ""
        self._key = ""

        self._title = QLabel("Lineage: choose a document (double-click one in Compare).", self)
        self._title.setObjectName("lineageTitle")
        bold = self._title.font()
        bold.setBold(True)
        self._title.setFont(bold)
        self._model = LineageModel(self)
        self._view = record_table(
            self,
            "lineageTable",
            self._model,
            (
                (COLUMN_POSITION, "0,000,000"),
                (1, "2026-03-01 10:15:00"),
                (2, "order-00000@00"),
                (3, "OrderCancelled"),
                (4, "changed"),
            ),
        )
        self._view.horizontalHeader().setStretchLastSection(True)
        self._view.selectionModel().currentRowChanged.connect(
            self._on_selection_current_row_changed
        )
        self._status = QLabel(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.setSpacing(4)
        layout.addWidget(self._title)
        layout.addWidget(self._view, 1)
        layout.addWidget(self._status)

    @property
    def title_label(self) -> QLabel:
        """``lineage of KEY in REF``."""
        return self._title

    @property
    def status_label(self) -> QLabel:
        """Loading, how many changes, or what went wrong."""
        return self._status

    @property
    def model(self) -> LineageModel:
        """The changes shown."""
        return self._model

    @property
    def view(self) -> QTableView:
        """The table."""
        return self._view

    @Slot(str, str)
    def show_document(self, reference: str, key: str) -> None:
        """Look up and show the lineage of ``key`` in the read model ``reference``."""
        self._tasks.cancel_all()
        self._generation += 1
        self._reference, self._key = reference, key
        self._title.setText(f"lineage of {key} in {reference}")
        self._model.set_changes([])
        self._status.setText("loading…")
        timetravel = self._timetravel
        task = self._tasks.add(
            self._runner.submit(lambda: timetravel.lineage(reference, key), tag=self._generation)
        )
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)

    @Slot(object, object)
    def _on_task_succeeded(self, generation: object, outcome: object) -> None:
        if generation != self._generation:
            return
        changes = cast(list[DocumentChange], outcome)
        self._model.set_changes(changes)
        if changes:
            self._status.setText(f"{len(changes):,} change(s), oldest first")
        else:
            self._status.setText(f"no event changed {self._key} up to that point")
        self.lineage_loaded.emit(len(changes))

    @Slot(object, object)
    def _on_task_failed(self, generation: object, error: object) -> None:
        if generation != self._generation:
            return
        message = last_line(str(error)) or type(error).__name__
        self._status.setText(f"could not load the lineage: {message}")
        self.lineage_failed.emit(message)

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_row_changed(self, current: QModelIndex, _old: QModelIndex) -> None:
        if current.isValid():
            self.event_selected.emit(self._model.change_at(current.row()).position)
