"""A command's form: one editor per field, checked as the operator types.

The checks are the bus's own (:meth:`CommandDefinition.checked_data`, pure, so it runs
on the GUI thread): what the form says is wrong is exactly what the bus would refuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson
from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from console.colours import error_colour, hint_colour
from core.commands.definition import CommandDefinition, Field, Rejected

__all__ = ["INT64_MAX", "INT64_MIN", "CommandForm", "FieldEditor", "check_form"]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_NO_CHOICE: Final = "(none)"


def _stand_in(spec: Field) -> Any:
    """A value the field check accepts, put in place of a wrong one so that the next
    check reaches the other fields (each field then gets its own message)."""
    if spec.default is not None:
        return spec.default
    if spec.choices:
        return spec.choices[0]
    return spec.type()


def check_form(
    definition: CommandDefinition, data: Mapping[str, Any], parse_errors: Mapping[str, str]
) -> tuple[dict[str, str], str]:
    """Every field's error, in the bus's words, and an error that names no field.

    Args:
        definition: the command.
        data: the values typed, None for the empty ones.
        parse_errors: fields whose text could not be read at all (bad JSON), by name.

    Returns:
        The error per field name, and the error of the whole (the stream), or "".
    """
    errors = dict(parse_errors)
    trial = {
        name: _stand_in(definition.fields[name]) if name in errors else value
        for name, value in data.items()
    }
    for _ in range(len(definition.fields) + 1):
        try:
            definition.stream_for(definition.checked_data(trial))
        except Rejected as rejected:
            name = rejected.reason.split(":", 1)[0]
            if name not in definition.fields or name in errors:
                return errors, rejected.reason
            errors[name] = rejected.reason
            trial[name] = _stand_in(definition.fields[name])
            continue
        return errors, ""
    return errors, ""


class FieldEditor:
    """The editor of one field: the widget, its help line and its error line.

    Args:
        name: the field's name.
        spec: its type, default, help and choices.
        parent: the form's widget.
    """

    def __init__(self, name: str, spec: Field, parent: QWidget) -> None:
        self.name = name
        self.spec = spec
        self.widget = self._make_widget(parent)
        self.widget.setObjectName(f"field_{name}")
        self.widget.setToolTip(spec.help)
        self.help_label = QLabel(spec.help, parent)
        self.help_label.setObjectName(f"help_{name}")
        self.help_label.setWordWrap(True)
        self.help_label.setVisible(bool(spec.help))
        small = QFont(self.help_label.font())
        small.setPointSizeF(max(small.pointSizeF() * 0.9, 7.0))
        self.help_label.setFont(small)
        self.error_label = QLabel(parent)
        self.error_label.setObjectName(f"error_{name}")
        self.error_label.setWordWrap(True)
        self.error_label.hide()

    def _make_widget(self, parent: QWidget) -> QWidget:
        spec = self.spec
        if spec.choices:
            combo = QComboBox(parent)
            if not spec.required and spec.default is None:
                combo.addItem(_NO_CHOICE, None)
            for choice in spec.choices:
                combo.addItem(str(choice), choice)
            if spec.default is not None and spec.default in spec.choices:
                combo.setCurrentIndex(combo.findData(spec.default))
            return combo
        if spec.type is bool:
            check = QCheckBox(parent)
            check.setChecked(bool(spec.default))
            return check
        if spec.type in (list, dict):
            text = QPlainTextEdit(parent)
            text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
            text.setTabChangesFocus(True)
            text.setFixedHeight(text.fontMetrics().lineSpacing() * 4 + 12)
            text.setPlaceholderText("[]" if spec.type is list else "{}")
            if spec.default is not None:
                text.setPlainText(orjson.dumps(spec.default).decode())
            return text
        line = QLineEdit(parent)
        if spec.type is int:
            line.setPlaceholderText("a whole number")
        elif spec.type is float:
            line.setPlaceholderText("a number")
        if spec.default is not None:
            line.setText(str(spec.default))
        return line

    def read(self) -> tuple[Any, str]:
        """The value typed (None when empty) and, if the text cannot be read at all,
        why. Text that is no number stays text: the field check then says so."""
        widget = self.widget
        if isinstance(widget, QComboBox):
            return widget.currentData(), ""
        if isinstance(widget, QCheckBox):
            return widget.isChecked(), ""
        if isinstance(widget, QPlainTextEdit):
            text = widget.toPlainText().strip()
            if not text:
                return None, ""
            try:
                return orjson.loads(text), ""
            except orjson.JSONDecodeError as error:
                return None, f"{self.name}: not valid JSON ({str(error).split(':')[0]})"
        text = widget.text().strip() if isinstance(widget, QLineEdit) else ""
        if not text:
            return None, ""
        if self.spec.type is int:
            try:
                number = int(text)
            except ValueError:
                return text, ""
            if not INT64_MIN <= number <= INT64_MAX:
                return None, f"{self.name}: must fit in 64 bits"
            return number, ""
        if self.spec.type is float:
            try:
                real = float(text)
            except ValueError:
                return text, ""
            if not math.isfinite(real):
                return None, f"{self.name}: must be a finite number"
            return real, ""
        return text, ""

    def show_error(self, message: str) -> None:
        """Show ``message`` under the field (hide the line when it is empty)."""
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))


class CommandForm(QWidget):
    """The fields of one command, checked on every change.

    Args:
        definition: the command.
        parent: the usual QWidget parent.
    """

    validity_changed = Signal(bool)  # whether the data passes the field check now
    submit_requested = Signal()  # Return pressed in a one-line field

    def __init__(self, definition: CommandDefinition, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("commandForm")
        self._definition = definition
        self._editors: dict[str, FieldEditor] = {}
        self._valid = False
        self._data: dict[str, Any] = {}
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        for name, spec in definition.fields.items():
            editor = FieldEditor(name, spec, self)
            self._editors[name] = editor
            required = spec.required and spec.default is None
            label = QLabel(f"{name} *" if required else name, self)
            label.setToolTip(spec.help + ("\n(required)" if required else ""))
            column = QVBoxLayout()
            column.setSpacing(1)
            column.addWidget(editor.widget)
            column.addWidget(editor.help_label)
            column.addWidget(editor.error_label)
            layout.addRow(label, column)
            self._connect(editor.widget)
        self._general = QLabel(self)
        self._general.setObjectName("formError")
        self._general.setWordWrap(True)
        self._general.hide()
        layout.addRow(self._general)
        self._apply_palette()
        self.check()

    def _connect(self, widget: QWidget) -> None:
        if isinstance(widget, QComboBox):
            widget.currentIndexChanged.connect(self._on_editor_changed)
        elif isinstance(widget, QCheckBox):
            widget.toggled.connect(self._on_editor_changed)
        elif isinstance(widget, QPlainTextEdit):
            widget.textChanged.connect(self._on_editor_changed)
        elif isinstance(widget, QLineEdit):
            widget.textChanged.connect(self._on_editor_changed)
            widget.returnPressed.connect(self.submit_requested)

    @property
    def definition(self) -> CommandDefinition:
        """The command the form is for."""
        return self._definition

    def set_definition(self, definition: CommandDefinition) -> None:
        """Use ``definition`` from now on: the same command with the same fields, loaded
        again (a plugin reload), so what was typed stays."""
        if definition.fields != self._definition.fields:
            raise ValueError(f"{definition.name}: other fields need another form")
        self._definition = definition
        self.check()

    @property
    def valid(self) -> bool:
        """Whether the data passes the field check."""
        return self._valid

    @property
    def data(self) -> dict[str, Any]:
        """The data typed, empty fields left out (the bus fills the defaults)."""
        return dict(self._data)

    @property
    def general_error(self) -> str:
        """The error that names no field (the stream), or ""."""
        return self._general.text() if self._general.isVisible() else ""

    def editor(self, name: str) -> FieldEditor:
        """The editor of field ``name``."""
        return self._editors[name]

    def editors(self) -> list[FieldEditor]:
        """Every field's editor, in the command's order."""
        return list(self._editors.values())

    def check(self) -> bool:
        """Read every field, show each one's error, and say whether the data is valid."""
        data: dict[str, Any] = {}
        unreadable: dict[str, str] = {}
        for name, editor in self._editors.items():
            value, problem = editor.read()
            if problem:
                unreadable[name] = problem
            data[name] = value
        errors, general = check_form(self._definition, data, unreadable)
        for name, editor in self._editors.items():
            editor.show_error(errors.get(name, ""))
        self._general.setText(general)
        self._general.setVisible(bool(general))
        self._data = {name: value for name, value in data.items() if value is not None}
        valid = not errors and not general
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)
        return valid

    def changeEvent(self, event: QEvent) -> None:
        """Recolour the errors and help lines when the palette changes (a theme switch)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        red = error_colour(self.palette())
        grey = hint_colour(self.palette())
        for label in [self._general, *(e.error_label for e in self._editors.values())]:
            palette = label.palette()
            palette.setColor(QPalette.ColorRole.WindowText, red)
            label.setPalette(palette)
        for editor in self._editors.values():
            palette = editor.help_label.palette()
            palette.setColor(QPalette.ColorRole.WindowText, grey)
            editor.help_label.setPalette(palette)

    @Slot()
    def _on_editor_changed(self) -> None:
        self.check()
