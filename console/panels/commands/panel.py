"""The commands panel: every plugin command, a form for it, a dry run, and an audited
execution while the store is writable."""

from __future__ import annotations

import uuid
from typing import Final, cast

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from console.colours import hint_colour
from console.empty_state import EmptyOr
from console.panels.commands.form import CommandForm
from console.panels.commands.results import CommandResults
from console.resources import icon
from console.workers import TaskGroup, TaskRunner
from core.commands.bus import CommandResult
from core.commands.definition import CommandDefinition, Rejected
from core.errors import StoreReadOnly, WrongExpectedVersion, last_line
from core.registry import UnknownCommand
from core.services.commands import Commands

__all__ = ["EMPTY_TEXT", "READ_ONLY_TIP", "CommandsPanel", "failure_text"]

EMPTY_TEXT: Final = "no commands yet: add a plugin with @command, see docs/plugins.md"
READ_ONLY_TIP: Final = (
    "The store is read-only: make it writable (Store → Writable) to execute commands. "
    "A dry run works either way."
)
_EXECUTE_TIP: Final = "Append the events the command decides, with its $audit record"
_INVALID_TIP: Final = "Fix the fields marked in red first"
_MARGIN: Final = 4


def failure_text(error: object) -> str:
    """Why a command did not run, in one line of plain words (never a traceback)."""
    if isinstance(error, Rejected):
        return f"rejected: {error.reason}"
    if isinstance(error, WrongExpectedVersion):
        return f"other writers kept changing {error.stream_id}; nothing was appended: try again"
    if isinstance(error, StoreReadOnly):
        return "the store is read-only: nothing was appended"
    if isinstance(error, UnknownCommand):
        known = str(error).split(" (loaded:", 1)[0]
        return f"{known}: no loaded plugin defines it any more (the plugins changed)"
    return last_line(str(error)) or type(error).__name__


class CommandsPanel(QWidget):
    """The plugins' commands: pick one, fill its form, try it or run it.

    The form is checked as it is typed, with the bus's own rules. "Dry run" (or Return
    in a one-line field) shows the events the command would append now and writes
    nothing; "Execute" (writable store only) appends them together with the command's
    ``$audit`` record, and each appended event links to the event log. Both run on the
    task runner.

    Args:
        commands: the catalog and the runs.
        runner: where the runs happen (they read and write the store).
        parent: the usual QWidget parent.
    """

    event_requested = Signal(str)  # an appended event's id, to show in the event log
    dry_run_shown = Signal(object)  # the CommandResult of a dry run
    executed = Signal(object)  # the CommandResult of an execution
    run_failed = Signal(str)  # the one-line reason shown
    catalog_shown = Signal(int)  # commands listed

    def __init__(
        self, commands: Commands, runner: TaskRunner, *, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("commandsPanel")
        self._commands = commands
        self._runner = runner
        self._tasks = TaskGroup(self)
        self._writable = False
        self._busy = False
        self._form: CommandForm | None = None

        self._list = QListWidget(self)
        self._list.setObjectName("commandsList")
        self._list.currentItemChanged.connect(self._on_list_current_item_changed)

        self._title = QLabel(self)
        self._title.setObjectName("commandTitle")
        bold = QFont(self._title.font())
        bold.setBold(True)
        self._title.setFont(bold)
        self._description = QLabel(self)
        self._description.setObjectName("commandDescription")
        self._description.setWordWrap(True)
        self._stream = QLabel(self)
        self._stream.setObjectName("commandStream")
        self._stream.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._stream.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._form_area = QScrollArea(self)
        self._form_area.setObjectName("commandFormArea")
        self._form_area.setWidgetResizable(True)
        self._form_area.setFrameShape(QScrollArea.Shape.NoFrame)

        self._key = QLineEdit(self)
        self._key.setObjectName("idempotencyKey")
        self._key.setPlaceholderText("optional: a retry with the same key appends once")
        self._key.setToolTip(
            "An idempotency key: running the command again with the same key appends "
            "nothing and shows the events of the first run"
        )
        self._new_key = QPushButton("New key", self)
        self._new_key.setObjectName("newIdempotencyKey")
        self._new_key.setToolTip("Fill in a fresh random key (a UUID)")
        self._new_key.clicked.connect(self._on_new_key_clicked)
        self._dry_run = QPushButton("Dry run", self)
        self._dry_run.setObjectName("commandDryRun")
        self._dry_run.setToolTip("Show the events the command would append now; writes nothing")
        self._dry_run.clicked.connect(self._on_dry_run_clicked)
        self._execute = QPushButton("Execute", self)
        self._execute.setObjectName("commandExecute")
        self._execute.clicked.connect(self._on_execute_clicked)

        self._results = CommandResults(self)
        self._results.event_requested.connect(self.event_requested)

        self._stack = EmptyOr(self._build_main(), EMPTY_TEXT, "commandsEmpty", self)
        self._empty = self._stack.label
        layout = QVBoxLayout(self)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.addWidget(self._stack)
        self._apply_palette()
        self.reload()

    def _build_main(self) -> QWidget:
        editor = QWidget(self)
        column = QVBoxLayout(editor)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self._title)
        column.addWidget(self._description)
        column.addWidget(self._stream)
        column.addWidget(self._form_area, 1)
        # The form, then the key right under it, spare height below (scrolled when the
        # pane is short); the buttons stay in view under the scroll area.
        holder = QWidget(self._form_area)
        self._holder = QVBoxLayout(holder)
        self._holder.setContentsMargins(0, 0, 4, 0)
        self._holder.setSpacing(6)
        key_row = QHBoxLayout()
        key_row.addWidget(QLabel("Idempotency key", holder))
        key_row.addWidget(self._key, 1)
        key_row.addWidget(self._new_key)
        self._holder.addLayout(key_row)
        self._holder.addStretch(1)
        self._form_area.setWidget(holder)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self._dry_run)
        buttons.addWidget(self._execute)
        column.addLayout(buttons)

        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(editor)
        right.addWidget(self._results)
        right.setChildrenCollapsible(False)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        main = QSplitter(Qt.Orientation.Horizontal, self)
        main.setObjectName("commandsSplitter")
        main.addWidget(self._list)
        main.addWidget(right)
        main.setChildrenCollapsible(False)
        main.setStretchFactor(0, 1)
        main.setStretchFactor(1, 4)
        main.setSizes([160, 900])
        return main

    # -- what tests and the window reach ------------------------------------------------------

    @property
    def command_list(self) -> QListWidget:
        """The commands, by name."""
        return self._list

    @property
    def form(self) -> CommandForm | None:
        """The selected command's form (None when none is selected)."""
        return self._form

    @property
    def results(self) -> CommandResults:
        """The outcome of the last dry run or execution."""
        return self._results

    @property
    def key_edit(self) -> QLineEdit:
        """The idempotency key."""
        return self._key

    @property
    def new_key_button(self) -> QPushButton:
        """Fills in a fresh idempotency key."""
        return self._new_key

    @property
    def dry_run_button(self) -> QPushButton:
        """Dry run."""
        return self._dry_run

    @property
    def execute_button(self) -> QPushButton:
        """Execute."""
        return self._execute

    @property
    def stream_label(self) -> QLabel:
        """The target stream template."""
        return self._stream

    @property
    def description_label(self) -> QLabel:
        """The command's description."""
        return self._description

    @property
    def empty_label(self) -> QLabel:
        """Shown instead of the form when no plugin contributes a command."""
        return self._empty

    @property
    def writable(self) -> bool:
        """Whether Execute may be used (the store is writable)."""
        return self._writable

    def select_command(self, name: str) -> bool:
        """Select command ``name``; False if it is not listed."""
        for row in range(self._list.count()):
            if self._list.item(row).text() == name:
                self._list.setCurrentRow(row)
                return True
        return False

    # -- slots --------------------------------------------------------------------------------

    @Slot(bool)
    def set_writable(self, writable: bool) -> None:
        """Allow Execute (a writable store) or not (read-only: its tooltip says why)."""
        self._writable = writable
        self._update_buttons()

    @Slot()
    def reload(self) -> None:
        """List the commands again (after the plugins were reloaded), keeping the
        selected one selected when it is still there, and what was typed into its form
        when its fields and stream did not change."""
        current = self._list.currentItem()
        kept = current.text() if current is not None else None
        catalog = self._commands.catalog()
        names = [definition.name for definition in catalog]
        self._list.blockSignals(True)
        self._list.clear()
        for definition in catalog:
            item = QListWidgetItem(definition.name)
            item.setData(Qt.ItemDataRole.UserRole, definition)
            item.setToolTip(definition.description)
            self._list.addItem(item)
        if kept in names:
            self._list.setCurrentRow(names.index(kept))
        elif catalog:
            self._list.setCurrentRow(0)
        self._list.blockSignals(False)
        self._stack.show_content(bool(catalog))
        selected = self._selected()
        form = self._form
        if (
            selected is not None
            and form is not None
            and form.definition.name == selected.name
            and form.definition.fields == selected.fields
            and form.definition.stream == selected.stream
        ):
            form.set_definition(selected)  # the same form: what was typed stays
            self._description.setText(selected.description or "(no description)")
        else:
            self._show_command(selected)
        self.catalog_shown.emit(len(catalog))

    # -- internals ----------------------------------------------------------------------------

    def _selected(self) -> CommandDefinition | None:
        item = self._list.currentItem()
        if item is None:
            return None
        return cast(CommandDefinition, item.data(Qt.ItemDataRole.UserRole))

    def _show_command(self, definition: CommandDefinition | None) -> None:
        if self._form is not None:
            self._holder.removeWidget(self._form)
            self._form.hide()
            self._form.deleteLater()
            self._form = None
        if definition is None:
            self._title.clear()
            self._description.clear()
            self._stream.clear()
        else:
            self._title.setText(definition.name)
            self._description.setText(definition.description or "(no description)")
            self._stream.setText(f"stream: {definition.stream}")
            self._form = CommandForm(definition, self._form_area.widget())
            self._form.validity_changed.connect(self._on_form_validity_changed)
            self._form.submit_requested.connect(self._on_dry_run_clicked)  # the safe default
            self._holder.insertWidget(0, self._form)
            self._form.show()  # a layout shows a widget added to a shown parent only later
        self._results.show_message(
            "Dry run shows the events a command would append; Execute appends them."
        )
        self._update_buttons()

    def _update_buttons(self) -> None:
        valid = self._form is not None and self._form.valid
        self._dry_run.setEnabled(valid and not self._busy)
        self._execute.setEnabled(valid and self._writable and not self._busy)
        if not self._writable:
            self._execute.setToolTip(READ_ONLY_TIP)
        elif not valid:
            self._execute.setToolTip(_INVALID_TIP)
        else:
            self._execute.setToolTip(_EXECUTE_TIP)

    def _run(self, *, dry_run: bool) -> None:
        form = self._form
        if form is None or not form.check() or self._busy:
            return
        name, data = form.definition.name, form.data
        key = self._key.text().strip() or None
        commands = self._commands
        self._busy = True
        self._update_buttons()
        self._results.show_message("dry run…" if dry_run else f"executing {name}…")
        task = self._tasks.add(
            self._runner.submit(
                lambda: commands.execute(name, data, dry_run=dry_run, idempotency_key=key)
            )
        )
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)
        task.cancelled.connect(self._on_task_cancelled)

    def changeEvent(self, event: QEvent) -> None:
        """Regrey the description when the palette changes (a theme switch)."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        grey = hint_colour(self.palette())
        palette = self._stream.palette()
        palette.setColor(QPalette.ColorRole.WindowText, grey)
        self._stream.setPalette(palette)
        # The buttons' icons (resources/icons), drawn in the theme's text colour.
        ink = self.palette().color(QPalette.ColorRole.WindowText)
        self._new_key.setIcon(icon("new-key", ink))
        self._dry_run.setIcon(icon("dry-run", ink))
        self._execute.setIcon(icon("execute", ink))

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_list_current_item_changed(
        self, _current: QListWidgetItem | None, _old: QListWidgetItem | None
    ) -> None:
        self._show_command(self._selected())

    @Slot(bool)
    def _on_form_validity_changed(self, _valid: bool) -> None:
        self._update_buttons()

    @Slot()
    def _on_new_key_clicked(self) -> None:
        self._key.setText(str(uuid.uuid4()))

    @Slot()
    def _on_dry_run_clicked(self) -> None:
        self._run(dry_run=True)

    @Slot()
    def _on_execute_clicked(self) -> None:
        if self._writable:
            self._run(dry_run=False)

    @Slot(object, object)
    def _on_task_succeeded(self, _tag: object, outcome: object) -> None:
        self._busy = False
        self._update_buttons()
        result = cast(CommandResult, outcome)
        self._results.show_result(result)
        (self.dry_run_shown if result.dry_run else self.executed).emit(result)

    @Slot(object, object)
    def _on_task_failed(self, _tag: object, error: object) -> None:
        self._busy = False
        self._update_buttons()
        message = failure_text(error)
        self._results.show_message(message, failed=True)
        self.run_failed.emit(message)

    @Slot(object)
    def _on_task_cancelled(self, _tag: object) -> None:
        self._busy = False
        self._update_buttons()
        self._results.show_message("cancelled: nothing was appended")
