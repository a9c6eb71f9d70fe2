"""File → Open store…: a SQLite file or a database URL, opened off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from console.workers import TaskRunner
from core.workspace import Workspace

__all__ = ["OpenStoreDialog"]

_SQLITE_FILTER = "SQLite stores (*.db *.sqlite *.sqlite3);;All files (*)"


class OpenStoreDialog(QDialog):
    """Asks for a store location and opens it; a failure stays in the dialog as one line.

    On success it emits ``workspace_opened`` with the open workspace (the receiver owns
    it from then on) and accepts.

    Args:
        runner: where the open runs.
        open_workspace: opens a location read-only (``Workspace.open`` with the plugins).
        location: what the field starts with.
        parent: the usual QWidget parent.
    """

    workspace_opened = Signal(object)  # Workspace
    open_failed = Signal(str)

    def __init__(
        self,
        runner: TaskRunner,
        open_workspace: Callable[[str], Workspace],
        *,
        location: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("openStoreDialog")
        self.setWindowTitle("Open store")
        self._runner = runner
        self._open_workspace = open_workspace
        self._generation = 0

        self._edit = QLineEdit(location, self)
        self._edit.setObjectName("openStoreLocation")
        self._edit.setPlaceholderText("store.db or postgresql://user@host/db")
        self._edit.setClearButtonEnabled(True)
        self._edit.setMinimumWidth(self.fontMetrics().horizontalAdvance("x" * 60))
        self._edit.textChanged.connect(self._on_edit_text_changed)
        self._browse = QPushButton("Browse…", self)
        self._browse.setObjectName("openStoreBrowse")
        self._browse.clicked.connect(self._on_browse_clicked)
        self._error = QLabel(self)
        self._error.setObjectName("openStoreError")
        self._error.setStyleSheet("QLabel { color: #c62828; }")
        self._error.hide()
        self._buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel, self
        )
        self._buttons.accepted.connect(self._on_buttons_accepted)
        self._buttons.rejected.connect(self.reject)

        row = QHBoxLayout()
        row.addWidget(self._edit, 1)
        row.addWidget(self._browse)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("A SQLite file or a database URL (opens read-only):", self))
        layout.addLayout(row)
        layout.addWidget(self._error)
        layout.addWidget(self._buttons)
        self._update_open_button()

    @property
    def location_edit(self) -> QLineEdit:
        """The location field."""
        return self._edit

    @property
    def open_button(self) -> QPushButton:
        """The Open button."""
        return self._buttons.button(QDialogButtonBox.StandardButton.Open)

    @property
    def error_label(self) -> QLabel:
        """Where a failed open is explained."""
        return self._error

    def open_location(self) -> None:
        """Open what the field holds, off the GUI thread."""
        location = self._edit.text().strip()
        if not location:
            return
        self._generation += 1
        self._error.hide()
        self._set_busy(True)
        opener = self._open_workspace
        task = self._runner.submit(lambda: opener(location), tag=self._generation)
        task.succeeded.connect(self._on_open_task_succeeded)
        task.failed.connect(self._on_open_task_failed)

    def show_error(self, message: str) -> None:
        """Show one line under the field."""
        first_line = message.strip().splitlines()[0] if message.strip() else "could not open"
        self._error.setText(first_line)
        self._error.setToolTip(message)
        self._error.show()

    def _set_busy(self, busy: bool) -> None:
        self._edit.setEnabled(not busy)
        self._browse.setEnabled(not busy)
        self.open_button.setEnabled(not busy)
        self.open_button.setText("Opening…" if busy else "Open")

    def _update_open_button(self) -> None:
        self.open_button.setEnabled(bool(self._edit.text().strip()))

    @Slot(str)
    def _on_edit_text_changed(self, _text: str) -> None:
        self._error.hide()
        self._update_open_button()

    @Slot()
    def _on_browse_clicked(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "Open a SQLite store", self._edit.text(), _SQLITE_FILTER
        )
        if path:
            self._edit.setText(path)

    @Slot()
    def _on_buttons_accepted(self) -> None:
        self.open_location()

    @Slot(object, object)
    def _on_open_task_succeeded(self, generation: object, workspace: object) -> None:
        if generation != self._generation:
            if isinstance(workspace, Workspace):
                workspace.close()  # cancelled meanwhile: nobody else will
            return
        self._set_busy(False)
        self.workspace_opened.emit(workspace)
        self.accept()

    @Slot(object, object)
    def _on_open_task_failed(self, generation: object, error: object) -> None:
        if generation != self._generation:
            return
        self._set_busy(False)
        self.show_error(str(error))
        self.open_failed.emit(str(error))

    def reject(self) -> None:
        """Cancel: a late open result is dropped (its workspace closed)."""
        self._generation += 1
        super().reject()
