"""The event inspector: one event's header, data and metadata (tree and JSON), raw vs upcast."""

from __future__ import annotations

import json
from typing import Any, cast

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from console.workers import TaskRunner
from core.events import RecordedEvent, format_time
from core.services.events import EventQueries, UpcastView

__all__ = ["EXPAND_ALL_BELOW", "InspectorPanel", "JsonTreeModel"]

EXPAND_ALL_BELOW = 200  # nodes: smaller payloads open fully expanded

_ModelIndex = QModelIndex | QPersistentModelIndex
_HEADERS = ("key", "value", "type")
_COLUMN_KEY, _COLUMN_VALUE, _COLUMN_TYPE = range(len(_HEADERS))


class _Node:
    """One key (or array index) of a JSON document."""

    __slots__ = ("children", "key", "kind", "parent", "row", "value")

    def __init__(self, key: str, value: Any, parent: _Node | None, row: int) -> None:
        self.key = key
        self.parent = parent
        self.row = row
        self.children: list[_Node] = []
        if isinstance(value, dict):
            self.kind = "object"
            self.value = f"{{{len(value)}}}"
            self.children = [_Node(str(k), v, self, n) for n, (k, v) in enumerate(value.items())]
        elif isinstance(value, list):
            self.kind = "array"
            self.value = f"[{len(value)}]"
            self.children = [_Node(f"[{n}]", v, self, n) for n, v in enumerate(value)]
        else:
            self.kind = _kind_of(value)
            self.value = json.dumps(value, ensure_ascii=False)

    def count(self) -> int:
        return 1 + sum(child.count() for child in self.children)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


class JsonTreeModel(QAbstractItemModel):
    """A JSON object as a tree of key, value and type (objects and arrays have children).

    Args:
        parent: the usual QObject parent.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._roots: list[_Node] = []

    def set_document(self, document: dict[str, Any]) -> None:
        """Show a JSON object (its keys are the top-level rows)."""
        self.beginResetModel()
        self._roots = [_Node(str(k), v, None, n) for n, (k, v) in enumerate(document.items())]
        self.endResetModel()

    def node_count(self) -> int:
        """How many keys and elements the document has, at every depth."""
        return sum(root.count() for root in self._roots)

    def _node(self, index: _ModelIndex) -> _Node | None:
        return cast(_Node, index.internalPointer()) if index.isValid() else None

    def _children(self, node: _Node | None) -> list[_Node]:
        return self._roots if node is None else node.children

    def index(self, row: int, column: int, parent: _ModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        """The index of a child of ``parent``."""
        children = self._children(self._node(parent))
        if not 0 <= row < len(children) or not 0 <= column < len(_HEADERS):
            return QModelIndex()
        return self.createIndex(row, column, children[row])

    def parent(self, index: _ModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        """The index of the node holding ``index`` (invalid at the top)."""
        node = self._node(index)
        if node is None or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.parent.row, 0, node.parent)

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Children of a node (only column 0 has children)."""
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._children(self._node(parent)))

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Key, value, type."""
        return len(_HEADERS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A node's key, value (JSON text; ``{n}``/``[n]`` for containers) or type."""
        node = self._node(index)
        if node is None:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return (node.key, node.value, node.kind)[index.column()]
        return None

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> object:
        """Column titles."""
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(_HEADERS)
        ):
            return _HEADERS[section]
        return None

    def flags(self, index: _ModelIndex) -> Qt.ItemFlag:
        """Selectable, never editable."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


class _JsonSection(QTabWidget):
    """A JSON object as a tree and as pretty text, in two tabs."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"inspector_{name}")
        self.setDocumentMode(True)
        self.model = JsonTreeModel(self)
        self.tree = QTreeView(self)
        self.tree.setObjectName(f"inspector_{name}Tree")
        self.tree.setModel(self.model)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        # Keys and types as wide as what is shown (expanding a level widens the keys);
        # values get the rest.
        header.setSectionResizeMode(_COLUMN_KEY, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_COLUMN_VALUE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(_COLUMN_TYPE, QHeaderView.ResizeMode.ResizeToContents)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName(f"inspector_{name}Json")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.addTab(self.tree, f"{name} (tree)")
        self.addTab(self.text, f"{name} (JSON)")

    def show_document(self, document: dict[str, Any]) -> None:
        self.model.set_document(document)
        if self.model.node_count() <= EXPAND_ALL_BELOW:
            self.tree.expandAll()
        else:
            self.tree.expandToDepth(0)
        self.text.setPlainText(json.dumps(document, indent=2, ensure_ascii=False))


class InspectorPanel(QWidget):
    """One event in full: header, data, metadata, raw vs upcast, and links to related events.

    Links emit requests the window acts on: ``correlation_requested`` (the events with
    this event's correlation id), ``event_requested`` (the causing event's id, once it is
    found in the store) and ``stream_requested`` (the stream up to this event's position).

    Args:
        events: the store's events (upcasting and the causation lookup).
        runner: where the causation lookup runs.
        parent: the usual QWidget parent.
    """

    correlation_requested = Signal(str)
    event_requested = Signal(str)
    stream_requested = Signal(str, int)
    time_travel_requested = Signal(int)  # the position of the event shown
    event_shown = Signal(object)  # RecordedEvent, as stored
    causation_resolved = Signal(bool)  # whether the causing event was found
    copied = Signal(str)

    def __init__(
        self, events: EventQueries, runner: TaskRunner, *, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("inspectorPanel")
        self._events = events
        self._runner = runner
        self._event: RecordedEvent | None = None
        self._view: UpcastView | None = None
        self._causation_generation = 0

        self._header = QLabel("Select an event in the log.", self)
        self._header.setObjectName("inspectorHeader")
        self._header.setTextFormat(Qt.TextFormat.RichText)
        self._header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._header.setWordWrap(True)

        self._raw_button = QToolButton(self)
        self._raw_button.setObjectName("inspectorRaw")
        self._raw_button.setText("raw (as stored)")
        self._raw_button.setCheckable(True)
        self._upcast_button = QToolButton(self)
        self._upcast_button.setObjectName("inspectorUpcast")
        self._upcast_button.setText("upcast (as read)")
        self._upcast_button.setCheckable(True)
        self._upcast_button.setChecked(True)
        self._schema_group = QButtonGroup(self)
        self._schema_group.setExclusive(True)
        self._schema_group.addButton(self._raw_button)
        self._schema_group.addButton(self._upcast_button)
        self._upcast_button.toggled.connect(self._on_upcast_button_toggled)
        self._schema_note = QLabel(self)
        self._schema_note.setObjectName("inspectorSchemaNote")
        self._failure = QLabel(self)
        self._failure.setObjectName("inspectorUpcastFailure")
        self._failure.setStyleSheet("QLabel { color: #c62828; }")
        self._failure.setWordWrap(True)
        self._failure.hide()
        schema_row = QHBoxLayout()
        schema_row.setContentsMargins(0, 0, 0, 0)
        schema_row.addWidget(self._raw_button)
        schema_row.addWidget(self._upcast_button)
        schema_row.addWidget(self._schema_note, 1)
        self._schema_bar = QWidget(self)
        self._schema_bar.setLayout(schema_row)
        self._schema_bar.hide()

        self._correlation_button = QPushButton("Correlated", self)
        self._correlation_button.setObjectName("inspectorCorrelation")
        self._correlation_button.clicked.connect(self._on_correlation_button_clicked)
        self._causation_button = QPushButton("Cause", self)
        self._causation_button.setObjectName("inspectorCausation")
        self._causation_button.clicked.connect(self._on_causation_button_clicked)
        self._stream_button = QPushButton("Stream ≤ here", self)
        self._stream_button.setObjectName("inspectorStream")
        self._stream_button.clicked.connect(self._on_stream_button_clicked)
        self._time_travel_button = QPushButton("Time travel", self)
        self._time_travel_button.setObjectName("inspectorTimeTravel")
        self._time_travel_button.setToolTip("Open the store at this event in the time-travel panel")
        self._time_travel_button.clicked.connect(self._on_time_travel_button_clicked)
        self._copy_button = QPushButton("Copy as JSON", self)
        self._copy_button.setObjectName("inspectorCopy")
        self._copy_button.clicked.connect(self._on_copy_button_clicked)
        links = QHBoxLayout()
        links.setContentsMargins(0, 0, 0, 0)
        for button in (
            self._correlation_button,
            self._causation_button,
            self._stream_button,
        ):
            links.addWidget(button)
        links.addStretch(1)
        heading = QHBoxLayout()
        heading.setContentsMargins(0, 0, 0, 0)
        heading.addWidget(self._header, 1)
        actions = QVBoxLayout()
        actions.setContentsMargins(0, 0, 0, 0)
        actions.addWidget(self._copy_button)
        actions.addWidget(self._time_travel_button)
        actions.addStretch(1)
        heading.addLayout(actions)

        self._data = _JsonSection("data", self)
        self._metadata = _JsonSection("metadata", self)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._data)
        splitter.addWidget(self._metadata)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(heading)
        layout.addLayout(links)
        layout.addWidget(self._schema_bar)
        layout.addWidget(self._failure)
        layout.addWidget(splitter, 1)
        self._show_nothing()

    # -- public API -------------------------------------------------------------------------

    @property
    def event(self) -> RecordedEvent | None:
        """The event shown, as stored."""
        return self._event

    @property
    def shown_event(self) -> RecordedEvent | None:
        """The event as displayed (raw or upcast, per the toggle)."""
        if self._view is None:
            return None
        return self._view.current if self._upcast_button.isChecked() else self._view.raw

    @property
    def data_model(self) -> JsonTreeModel:
        """The data tree's model."""
        return self._data.model

    @property
    def metadata_model(self) -> JsonTreeModel:
        """The metadata tree's model."""
        return self._metadata.model

    @property
    def data_text(self) -> QPlainTextEdit:
        """The data as pretty JSON."""
        return self._data.text

    @property
    def data_tree(self) -> QTreeView:
        """The data as a tree."""
        return self._data.tree

    @property
    def raw_button(self) -> QToolButton:
        """Show the event as stored."""
        return self._raw_button

    @property
    def upcast_button(self) -> QToolButton:
        """Show the event as readers see it."""
        return self._upcast_button

    @property
    def schema_bar(self) -> QWidget:
        """The raw / upcast toggle (shown only when an upcaster changes the event)."""
        return self._schema_bar

    @property
    def failure_label(self) -> QLabel:
        """Why upcasting failed, if it did."""
        return self._failure

    @property
    def header_label(self) -> QLabel:
        """Position, stream@version, type, time and event id."""
        return self._header

    @property
    def correlation_button(self) -> QPushButton:
        """Show the events with the same correlation id."""
        return self._correlation_button

    @property
    def causation_button(self) -> QPushButton:
        """Show the event that caused this one."""
        return self._causation_button

    @property
    def time_travel_button(self) -> QPushButton:
        """Open the store at this event in the time-travel panel."""
        return self._time_travel_button

    @property
    def stream_button(self) -> QPushButton:
        """Show this event's stream up to it."""
        return self._stream_button

    @property
    def copy_button(self) -> QPushButton:
        """Copy the event as JSON."""
        return self._copy_button

    def show_event(self, event: RecordedEvent | None) -> None:
        """Show an event (None: show nothing)."""
        self._causation_generation += 1
        if event is None:
            self._show_nothing()
            return
        self._event = event
        self._view = self._events.upcast(event)
        view = self._view
        self._header.setText(
            f"<b>#{event.position:,}</b> &nbsp; <b>{_escape(event.stream_id)}</b>"
            f"@{event.version} &nbsp; <b>{_escape(event.type)}</b><br>"
            f"{format_time(event.recorded_at)}<br>"
            f"<span style='color:#6b7280'>id {_escape(event.event_id)}</span>"
        )
        self._schema_bar.setVisible(view.changed)
        if view.changed:
            raw_schema = event.metadata.get("schema_version", 1)
            current_schema = view.current.metadata.get("schema_version", "current")
            self._schema_note.setText(f"schema {raw_schema} → {current_schema}")
        self._failure.setVisible(view.failure is not None)
        self._failure.setText(f"upcast failed: {view.failure}" if view.failure else "")
        self._render()

        correlation = event.metadata.get("correlation_id")
        self._correlation_button.setEnabled(isinstance(correlation, str) and bool(correlation))
        self._correlation_button.setToolTip(
            f"Show the events with correlation id {correlation}"
            if correlation
            else "This event has no correlation id"
        )
        self._stream_button.setEnabled(True)
        self._time_travel_button.setEnabled(True)
        self._stream_button.setToolTip(
            f"Show {event.stream_id} up to this event (version {event.version})"
        )
        self._copy_button.setEnabled(True)
        self._resolve_causation(event)
        self.event_shown.emit(event)

    # -- rendering --------------------------------------------------------------------------

    def _show_nothing(self) -> None:
        self._event = None
        self._view = None
        self._header.setText("Select an event in the log.")
        self._schema_bar.hide()
        self._failure.hide()
        self._data.show_document({})
        self._metadata.show_document({})
        for button in (
            self._correlation_button,
            self._causation_button,
            self._stream_button,
            self._time_travel_button,
            self._copy_button,
        ):
            button.setEnabled(False)

    def _render(self) -> None:
        shown = self.shown_event
        if shown is None:
            return
        self._data.show_document(shown.data)
        self._metadata.show_document(shown.metadata)

    def _resolve_causation(self, event: RecordedEvent) -> None:
        self._causation_button.setEnabled(False)
        causation = event.metadata.get("causation_id")
        if not isinstance(causation, str) or not causation:
            self._causation_button.setToolTip("This event names no causing event")
            self.causation_resolved.emit(False)
            return
        self._causation_button.setToolTip(f"Looking up {causation}…")
        events = self._events
        task = self._runner.submit(
            lambda: events.event_by_id(causation), tag=self._causation_generation
        )
        task.succeeded.connect(self._on_causation_task_succeeded)
        task.failed.connect(self._on_causation_task_failed)
        task.cancelled.connect(self._on_causation_task_cancelled)

    @Slot(object, object)
    def _on_causation_task_succeeded(self, generation: object, found: object) -> None:
        if generation != self._causation_generation:
            return
        cause = cast(RecordedEvent | None, found)
        if cause is None:
            self._causation_button.setToolTip("The causing event is not in this store")
        else:
            self._causation_button.setToolTip(
                f"Select the causing event: #{cause.position:,} "
                f"{cause.stream_id}@{cause.version} {cause.type}"
            )
        self._causation_button.setEnabled(cause is not None)
        self.causation_resolved.emit(cause is not None)

    @Slot(object, object)
    def _on_causation_task_failed(self, generation: object, error: object) -> None:
        if generation != self._causation_generation:
            return
        self._causation_button.setToolTip(f"Could not look up the causing event: {error}")
        self.causation_resolved.emit(False)

    @Slot(object)
    def _on_causation_task_cancelled(self, generation: object) -> None:
        if generation != self._causation_generation:
            return
        self._causation_button.setToolTip("The lookup was interrupted; show the event again")
        self.causation_resolved.emit(False)

    # -- buttons ----------------------------------------------------------------------------

    @Slot(bool)
    def _on_upcast_button_toggled(self, _checked: bool) -> None:
        self._render()

    @Slot()
    def _on_correlation_button_clicked(self) -> None:
        if self._event is not None:
            self.correlation_requested.emit(str(self._event.metadata.get("correlation_id")))

    @Slot()
    def _on_causation_button_clicked(self) -> None:
        if self._event is not None:
            self.event_requested.emit(str(self._event.metadata.get("causation_id")))

    @Slot()
    def _on_stream_button_clicked(self) -> None:
        if self._event is not None:
            self.stream_requested.emit(self._event.stream_id, self._event.position)

    @Slot()
    def _on_time_travel_button_clicked(self) -> None:
        if self._event is not None:
            self.time_travel_requested.emit(self._event.position)

    @Slot()
    def _on_copy_button_clicked(self) -> None:
        if self._event is None:
            return
        text = json.dumps(self._event.to_dict(), indent=2, ensure_ascii=False)
        QGuiApplication.clipboard().setText(text)
        self.copied.emit(text)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
