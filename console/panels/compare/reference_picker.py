"""One read-model reference, picked (projection version and point) or typed whole."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QWidget

from console.colours import error_colour
from core.timetravel.reference import InvalidReference, Point, ReadModelRef

__all__ = ["ReferencePicker"]


class ReferencePicker(QWidget):
    """``NAME[:VERSION][@POINT]`` in a line edit, with pickers that write it: a combo of
    projection versions and a point (``head``, a position or an ISO time).

    The line edit is what counts; typing a reference that parses moves the pickers to it.
    A reference that does not parse shows a one-line error (see :meth:`validate`).

    Args:
        label: the side's name, shown first (``A``, ``B``).
        references: every projection version, ``name:version``.
        parent: the usual QWidget parent.
    """

    edited = Signal(str)  # the reference text, after any change by the user

    def __init__(
        self, label: str, references: Sequence[str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._references = list(references)

        self._label = QLabel(label, self)
        self._label.setMinimumWidth(self.fontMetrics().horizontalAdvance("W") + 4)
        self._projection = QComboBox(self)
        self._projection.addItems(self._references)
        self._projection.setToolTip("The projection version")
        self._projection.activated.connect(self._on_projection_activated)
        self._point = QLineEdit(self)
        self._point.setPlaceholderText("head")
        self._point.setToolTip("head, a position (1500) or an ISO time (2026-03-01T10:00:00Z)")
        self._point.setMaximumWidth(self.fontMetrics().horizontalAdvance("2026-03-01T10:00:00Z__"))
        self._point.textEdited.connect(self._on_point_text_edited)
        self._edit = QLineEdit(self)
        self._edit.setPlaceholderText("NAME[:VERSION][@POINT]")
        self._edit.setToolTip("The reference, typed whole: order_summary:2@1500")
        self._edit.textEdited.connect(self._on_edit_text_edited)
        self._error = QLabel(self)
        self._error.setObjectName("referenceError")
        self._error.hide()

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self._label)
        layout.addWidget(self._projection)
        layout.addWidget(QLabel("@", self))
        layout.addWidget(self._point)
        layout.addWidget(self._edit, 1)
        layout.addWidget(self._error, 1)
        if self._references:
            self._compose()

    @property
    def edit(self) -> QLineEdit:
        """The whole reference, as typed or picked."""
        return self._edit

    @property
    def projection_box(self) -> QComboBox:
        """The projection version picker."""
        return self._projection

    @property
    def point_edit(self) -> QLineEdit:
        """The point picker."""
        return self._point

    @property
    def error_label(self) -> QLabel:
        """The one-line error (hidden while the reference parses)."""
        return self._error

    def text(self) -> str:
        """The reference as written."""
        return self._edit.text().strip()

    def set_text(self, text: str) -> None:
        """Write a whole reference; the pickers follow when it parses."""
        self._edit.setText(text)
        self._follow(text)

    def set_references(self, references: Sequence[str]) -> None:
        """Offer another list of projection versions (the plugins were reloaded); the
        reference as written stays, and the picker follows it if it is still offered."""
        self._references = list(references)
        self._projection.blockSignals(True)
        self._projection.clear()
        self._projection.addItems(self._references)
        self._projection.blockSignals(False)
        if self.text():
            self._follow(self.text())
        elif self._references:
            self._compose()

    def set_point(self, point: str) -> None:
        """Keep the projection, change the point."""
        self._point.setText(point)
        self._compose()

    def validate(self) -> ReadModelRef | None:
        """The reference, or None with its error shown."""
        try:
            reference = ReadModelRef.parse(self.text())
        except InvalidReference as error:
            self.show_error(str(error))
            return None
        self.clear_error()
        return reference

    def show_error(self, message: str) -> None:
        """Show a one-line error next to the reference."""
        line = message.strip().splitlines()[0] if message.strip() else "invalid reference"
        palette = self._error.palette()
        palette.setColor(QPalette.ColorRole.WindowText, error_colour(self.palette()))
        self._error.setPalette(palette)
        self._error.setText(line)
        self._error.setToolTip(message)
        self._error.show()

    def clear_error(self) -> None:
        """Hide the error."""
        self._error.hide()
        self._error.clear()

    def _compose(self) -> None:
        """Write the line edit from the pickers."""
        point = self._point.text().strip()
        text = self._projection.currentText()
        if point and point != "head":
            text = f"{text}@{point}"
        self._edit.setText(text)
        try:
            Point.parse(point)
        except InvalidReference as error:
            self.show_error(str(error))
        else:
            self.clear_error()
        self.edited.emit(text)

    def _follow(self, text: str) -> None:
        """Move the pickers to a typed reference, if it parses."""
        try:
            reference = ReadModelRef.parse(text)
        except InvalidReference as error:
            self.show_error(str(error))
            return
        self.clear_error()
        versions = [r for r in self._references if r.split(":")[0] == reference.name]
        wanted = f"{reference.name}:{reference.version}" if reference.version is not None else None
        if wanted is None and versions:
            wanted = max(versions, key=lambda r: int(r.split(":")[1]))
        if wanted in self._references:
            self._projection.setCurrentIndex(self._references.index(wanted))
        self._point.setText("" if reference.point.kind == "head" else str(reference.point))

    @Slot(int)
    def _on_projection_activated(self, _index: int) -> None:
        self._compose()

    @Slot(str)
    def _on_point_text_edited(self, _text: str) -> None:
        self._compose()

    @Slot(str)
    def _on_edit_text_edited(self, text: str) -> None:
        self._follow(text)
        self.edited.emit(text)
