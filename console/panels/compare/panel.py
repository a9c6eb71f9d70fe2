"""The compare panel: two read-model references, their streaming diff, each document's sides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import orjson
from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.panels.compare.document_text import AFTER_TINT, BEFORE_TINT, DocumentText
from console.panels.compare.entries_model import (
    COLUMN_KEY,
    COLUMN_KIND,
    COLUMN_PATHS,
    KINDS,
    DiffEntriesFilter,
    DiffEntriesModel,
)
from console.panels.compare.reference_picker import ReferencePicker
from console.panels.compare.streaming import (
    CHUNK_ENTRIES,
    CHUNK_SECONDS,
    DiffChunk,
    DiffFeed,
    entries_of,
    stream_diff,
)
from console.record_table import record_table
from console.workers import Task, TaskRunner
from core.errors import last_line
from core.services.projections import ProjectionService
from core.services.timetravel import TimeTravel
from core.timetravel.diff import DiffEntry, ReadModelDiff, collect_diff
from core.timetravel.reference import Point, ReadModelRef

__all__ = [
    "MAX_ENTRIES",
    "NO_PROJECTIONS_TEXT",
    "ComparePanel",
    "ask_candidate",
    "choose_export_file",
    "choose_plugin_file",
]

MAX_ENTRIES = 10_000
#: What the panel says while no projection is loaded.
NO_PROJECTIONS_TEXT = "no projections yet: add a plugin, see docs/plugins.md"
FILTER_DELAY_MS = 150
_MARGIN = 4


def choose_export_file(parent: QWidget, suggested: str) -> str | None:
    """Ask where to write the diff (None: cancelled). Tests replace this function."""
    path, _ = QFileDialog.getSaveFileName(parent, "Export the diff", suggested, "JSON (*.json)")
    return path or None


def choose_plugin_file(parent: QWidget) -> str | None:
    """Ask for a plugin ``.py`` file (None: cancelled). Tests replace this function."""
    path, _ = QFileDialog.getOpenFileName(parent, "A plugin file", "", "Python (*.py)")
    return path or None


def ask_candidate(parent: QWidget, suggested: str) -> str | None:
    """Ask which projection version of the file to replay (None: cancelled). Tests
    replace this function."""
    text, ok = QInputDialog.getText(
        parent,
        "What would this plugin file change?",
        "Projection version to replay (NAME[:VERSION][@POINT]):",
        QLineEdit.EchoMode.Normal,
        suggested,
    )
    return text.strip() if ok and text.strip() else None


@dataclass(frozen=True, slots=True)
class _Compared:
    """What a finished run compared: the two sides as shown, and how to export it."""

    before: str  # the reference of side A, pinned to a version and position
    after: str  # side B, or the what-if candidate
    live_after: bool  # whether side B is a stored read model (not a what-if candidate)
    diff: ReadModelDiff | None = None  # a what-if's whole diff (a streamed one is re-run)


def _pinned(timetravel: TimeTravel, reference: ReadModelRef) -> ReadModelRef:
    """The reference at the version and position it stands for now (head moves on)."""
    at = timetravel.locate(reference)
    return replace(reference, version=at.projection.version, point=Point("position", at.position))


class ComparePanel(QWidget):
    """Compare two read models (two versions, two points, or both) as the diff streams in.

    A and B are picked (projection version, point) or typed whole. Compare runs the diff
    on the task runner: the summary and the table fill in chunk by chunk; Cancel, or a new
    Compare, stops it. The table keeps at most ``max_entries`` documents (the summary
    counts all). Selecting one shows its two sides, changed fields tinted.

    Args:
        timetravel: diffs, what-ifs, and where a reference points.
        projections: the projection versions to pick from.
        runner: where the diffs run.
        max_entries: documents kept for the table.
        chunk_entries: entries per chunk sent to the GUI (also sent every 100 ms).
        parent: the usual QWidget parent.
    """

    compared = Signal(object)  # the final summary dict (as summarize_diff(...).to_dict())
    summary_updated = Signal(object)  # a partial summary dict, while the diff runs
    compare_cancelled = Signal()
    compare_failed = Signal(str)
    document_selected = Signal(str, str)  # reference, key
    lineage_requested = Signal(str, str)  # reference with its point, key
    exported = Signal(str)  # the file written
    export_failed = Signal(str)

    def __init__(
        self,
        timetravel: TimeTravel,
        projections: ProjectionService,
        runner: TaskRunner,
        *,
        max_entries: int = MAX_ENTRIES,
        chunk_entries: int = CHUNK_ENTRIES,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self._timetravel = timetravel
        self._runner = runner
        self._max_entries = max_entries
        self._chunk_entries = chunk_entries
        self._generation = 0
        self._task: Task | None = None
        self._export_task: Task | None = None
        self._running_label = ""
        self._compared: _Compared | None = None
        self._summary: dict[str, Any] | None = None

        self._feed = DiffFeed(self)
        self._feed.chunk_produced.connect(self._on_feed_chunk_produced)

        self._projections = projections
        references = projections.references()
        self._a = ReferencePicker("A", references, self)
        self._b = ReferencePicker("B", references, self)
        first, second = _default_pair(references)
        if first:
            self._a.set_text(first)
            self._b.set_text(second)
        self._a.edit.returnPressed.connect(self.compare)
        self._b.edit.returnPressed.connect(self.compare)

        self._compare_button = QPushButton("Compare", self)
        self._compare_button.setDefault(True)
        self._compare_button.clicked.connect(self.compare)
        self._cancel_button = QPushButton("Cancel", self)
        self._cancel_button.setEnabled(False)
        self._cancel_button.clicked.connect(self.cancel)
        self._export_button = QPushButton("Export…", self)
        self._export_button.setToolTip("Write the whole diff (DESIGN §5 JSON) to a file")
        self._export_button.setEnabled(False)
        self._export_button.clicked.connect(self._on_export_button_clicked)
        self._what_if_button = QPushButton("What would a plugin file change?…", self)
        self._what_if_button.setToolTip(
            "Replay a projection from a plugin file not installed yet and compare it with A"
        )
        self._what_if_button.clicked.connect(self._on_what_if_button_clicked)

        self._summary_label = QLabel(_invitation(references), self)
        self._summary_label.setObjectName("compareSummary")
        self._summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bold = self._summary_label.font()
        bold.setBold(True)
        self._summary_label.setFont(bold)

        self._model = DiffEntriesModel(self)
        self._filter = DiffEntriesFilter(self)
        self._filter.setSourceModel(self._model)
        self._view = record_table(
            self,
            "compareEntries",
            self._filter,
            ((COLUMN_KEY, "order-00000"), (COLUMN_KIND, "removed"), (COLUMN_PATHS, "total")),
        )
        self._view.horizontalHeader().setStretchLastSection(True)
        self._view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self._view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._view.customContextMenuRequested.connect(self._on_view_custom_context_menu_requested)
        self._view.doubleClicked.connect(self._on_view_double_clicked)
        self._view.selectionModel().currentRowChanged.connect(
            self._on_selection_current_row_changed
        )

        self._kind_boxes: dict[str, QCheckBox] = {}
        for kind in KINDS:
            box = QCheckBox(kind, self)
            box.setChecked(True)
            box.toggled.connect(self._on_kind_box_toggled)
            self._kind_boxes[kind] = box
        self._path_filter = QLineEdit(self)
        self._path_filter.setPlaceholderText("field contains…")
        self._path_filter.setClearButtonEnabled(True)
        self._path_filter_timer = QTimer(self)
        self._path_filter_timer.setSingleShot(True)
        self._path_filter_timer.setInterval(FILTER_DELAY_MS)
        self._path_filter.textChanged.connect(self._on_path_filter_text_changed)
        self._path_filter.returnPressed.connect(self._apply_path_filter)
        self._path_filter_timer.timeout.connect(self._apply_path_filter)
        self._shown_label = QLabel(self)
        self._paths_list = QListWidget(self)
        self._paths_list.setObjectName("compareChangedFields")
        self._paths_list.setToolTip("Changed fields and how many documents differ at each;\n"
                                     "click one to filter the table by it")  # fmt: skip
        self._paths_list.itemClicked.connect(self._on_paths_list_item_clicked)

        self._before_title = QLabel("A", self)
        self._after_title = QLabel("B", self)
        self._before = DocumentText(BEFORE_TINT, self)
        self._before.setObjectName("compareBefore")
        self._after = DocumentText(AFTER_TINT, self)
        self._after.setObjectName("compareAfter")
        self._document_title = QLabel("Select a document to see both sides.", self)
        self._document_title.setFont(bold)

        self._build_layout()
        self.setFocusProxy(self._a.edit)

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self._compare_button)
        buttons.addWidget(self._cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self._export_button)
        buttons.addWidget(self._what_if_button)

        filters = QHBoxLayout()
        filters.setSpacing(6)
        for box in self._kind_boxes.values():
            filters.addWidget(box)
        filters.addWidget(self._path_filter, 1)

        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(filters)
        lists = QSplitter(Qt.Orientation.Vertical, left)
        lists.addWidget(self._view)
        fields = QWidget(lists)
        fields_layout = QVBoxLayout(fields)
        fields_layout.setContentsMargins(0, 0, 0, 0)
        fields_layout.setSpacing(2)
        fields_layout.addWidget(QLabel("changed fields (documents)", fields))
        fields_layout.addWidget(self._paths_list, 1)
        lists.addWidget(fields)
        lists.setStretchFactor(0, 3)
        lists.setStretchFactor(1, 1)
        left_layout.addWidget(lists, 1)
        left_layout.addWidget(self._shown_label)

        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self._document_title)
        sides = QHBoxLayout()
        for title, text in ((self._before_title, self._before), (self._after_title, self._after)):
            column = QVBoxLayout()
            column.addWidget(title)
            column.addWidget(text, 1)
            sides.addLayout(column, 1)
        right_layout.addLayout(sides, 1)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([380, 720])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.setSpacing(4)
        layout.addWidget(self._a)
        layout.addWidget(self._b)
        layout.addLayout(buttons)
        layout.addWidget(self._summary_label)
        layout.addWidget(split, 1)

    # -- what tests and the main window reach -------------------------------------------------

    @property
    def a_edit(self) -> QLineEdit:
        """Reference A, typed whole."""
        return self._a.edit

    @property
    def b_edit(self) -> QLineEdit:
        """Reference B, typed whole."""
        return self._b.edit

    @property
    def a_picker(self) -> ReferencePicker:
        """Reference A with its pickers and error."""
        return self._a

    @property
    def b_picker(self) -> ReferencePicker:
        """Reference B with its pickers and error."""
        return self._b

    @property
    def compare_button(self) -> QPushButton:
        """Runs the diff."""
        return self._compare_button

    @property
    def cancel_button(self) -> QPushButton:
        """Stops the diff running."""
        return self._cancel_button

    @property
    def export_button(self) -> QPushButton:
        """Writes the whole diff of the last comparison to a file."""
        return self._export_button

    @property
    def what_if_button(self) -> QPushButton:
        """Compares A with a projection from a plugin file."""
        return self._what_if_button

    @property
    def summary_label(self) -> QLabel:
        """Counts by kind, as they come in."""
        return self._summary_label

    @property
    def summary(self) -> dict[str, Any] | None:
        """The last summary shown (partial while running)."""
        return self._summary

    @property
    def paths_list(self) -> QListWidget:
        """Changed fields with their counts."""
        return self._paths_list

    @property
    def shown_label(self) -> QLabel:
        """How many of the differing documents the table holds."""
        return self._shown_label

    @property
    def entries_model(self) -> DiffEntriesModel:
        """The differing documents held (at most ``max_entries``)."""
        return self._model

    @property
    def entries_filter(self) -> DiffEntriesFilter:
        """The kind and path filter over :attr:`entries_model` (what the table shows)."""
        return self._filter

    @property
    def entries_view(self) -> QTableView:
        """The table."""
        return self._view

    @property
    def kind_boxes(self) -> dict[str, QCheckBox]:
        """The kind filter: one box per kind."""
        return dict(self._kind_boxes)

    @property
    def path_filter_edit(self) -> QLineEdit:
        """The path filter."""
        return self._path_filter

    @property
    def detail_before(self) -> DocumentText:
        """Side A of the selected document."""
        return self._before

    @property
    def detail_after(self) -> DocumentText:
        """Side B of the selected document."""
        return self._after

    @property
    def running(self) -> bool:
        """Whether a diff or what-if is running."""
        return self._task is not None

    # -- public slots -------------------------------------------------------------------------

    @Slot(str, str)
    def reload_references(self) -> None:
        """Offer the projection versions loaded now (after the plugins were reloaded);
        references already written stay, empty ones get the default pair."""
        references = self._projections.references()
        self._a.set_references(references)
        self._b.set_references(references)
        first, second = _default_pair(references)
        if self._compared is None:
            self._summary_label.setText(_invitation(references))
        if first and not self._a.text() and not self._b.text():
            self._a.set_text(first)
            self._b.set_text(second)

    def set_references(self, a: str, b: str) -> None:
        """Write both references (nothing runs until Compare)."""
        self._a.set_text(a)
        self._b.set_text(b)

    @Slot(int)
    def set_point_b(self, position: int) -> None:
        """Move B to a log position, keeping its projection (the time-travel cursor)."""
        try:
            reference = ReadModelRef.parse(self._b.text())
        except ValueError:
            self._b.set_point(str(position))
            return
        self._b.set_text(str(replace(reference, point=Point("position", position))))

    @Slot()
    def compare(self) -> None:
        """Diff A with B (a bad reference shows its error and nothing runs)."""
        first, second = self._a.validate(), self._b.validate()
        if first is None or second is None:
            return
        timetravel = self._timetravel

        def run(send: Any, generation: int, keep: int, chunk: int) -> tuple[_Compared, DiffChunk]:
            before, after = _pinned(timetravel, first), _pinned(timetravel, second)
            diff = timetravel.diff(before, after)
            final = stream_diff(diff, lambda: diff.unchanged_so_far, send,
                                generation=generation, keep=keep, chunk_entries=chunk,
                                chunk_seconds=CHUNK_SECONDS)  # fmt: skip
            return _Compared(str(before), str(after), live_after=True), final

        self._start(run, f"{first} → {second}", str(first), str(second))

    @Slot()
    def cancel(self) -> None:
        """Stop the diff or what-if running (the table keeps what arrived)."""
        if self._task is not None:
            self._task.cancel()
            self._summary_label.setText("cancelling…")

    # -- running ------------------------------------------------------------------------------

    def _start(self, run: Any, label: str, before_title: str, after_title: str) -> None:
        if self._task is not None:
            self._task.cancel()
        self._generation += 1
        generation = self._generation
        self._model.clear()
        self._paths_list.clear()
        self._show_document(None)
        self._summary = None
        self._compared = None
        self._running_label = label
        self._before_title.setText(f"A: {before_title}")
        self._after_title.setText(f"B: {after_title}")
        self._export_button.setEnabled(False)
        self._cancel_button.setEnabled(True)
        self._summary_label.setText(f"comparing {label}…")
        self._shown_label.clear()
        feed = self._feed

        def send(chunk: DiffChunk) -> None:
            try:
                feed.chunk_produced.emit(chunk)
            except RuntimeError:
                pass  # the panel was deleted meanwhile

        keep, chunk = self._max_entries, self._chunk_entries
        task = self._runner.submit(lambda: run(send, generation, keep, chunk), tag=generation)
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)
        task.cancelled.connect(self._on_task_cancelled)
        self._task = task

    def _take(self, chunk: DiffChunk) -> None:
        room = self._max_entries - self._model.rowCount()
        self._model.append(chunk.entries[: max(room, 0)])
        self._summary = chunk.summary
        self._show_summary(chunk.summary, final=chunk.final)

    @Slot(object)
    def _on_feed_chunk_produced(self, chunk: object) -> None:
        piece = cast(DiffChunk, chunk)
        if piece.generation != self._generation or self._task is None:
            return  # a run replaced or cancelled since
        self._take(piece)
        self.summary_updated.emit(piece.summary)

    @Slot(object, object)
    def _on_task_succeeded(self, generation: object, outcome: object) -> None:
        if generation != self._generation:
            return
        compared, final = cast(tuple[_Compared, DiffChunk], outcome)
        self._task = None
        self._cancel_button.setEnabled(False)
        self._compared = compared
        self._before_title.setText(f"A: {compared.before}")
        self._after_title.setText(f"B: {compared.after}")
        self._running_label = f"{compared.before} → {compared.after}"
        self._take(final)
        self._export_button.setEnabled(True)
        self.compared.emit(final.summary)

    @Slot(object, object)
    def _on_task_failed(self, generation: object, error: object) -> None:
        if generation != self._generation:
            return
        self._task = None
        self._cancel_button.setEnabled(False)
        message = last_line(str(error)) or type(error).__name__
        self._summary_label.setText(f"compare failed: {message}")
        self.compare_failed.emit(message)

    @Slot(object)
    def _on_task_cancelled(self, generation: object) -> None:
        if generation != self._generation:
            return
        self._task = None
        self._cancel_button.setEnabled(False)
        found = sum(self._summary[k] for k in KINDS) if self._summary else 0
        self._summary_label.setText(
            f"cancelled: {self._running_label}, after {found:,} differing documents"
        )
        self.compare_cancelled.emit()

    def _show_summary(self, summary: dict[str, Any], *, final: bool) -> None:
        counts = (
            f"{summary['added']:,} added · {summary['removed']:,} removed · "
            f"{summary['changed']:,} changed · {summary['unchanged']:,} unchanged"
        )
        if final:
            self._summary_label.setText(f"{self._running_label}: {counts}")
        else:
            self._summary_label.setText(f"comparing {self._running_label}… so far {counts}")
        differing = sum(summary[k] for k in KINDS)
        held = self._model.rowCount()
        if differing > held:
            tail = "" if final else " so far"
            self._shown_label.setText(f"first {held:,} of {differing:,} shown{tail}")
        else:
            self._shown_label.setText(f"{differing:,} differing document(s)")
        self._paths_list.clear()
        for path, count in summary["paths"].items():
            item = QListWidgetItem(f"{path}    {count:,}", self._paths_list)
            item.setData(Qt.ItemDataRole.UserRole, path)

    # -- filters ------------------------------------------------------------------------------

    @Slot(bool)
    def _on_kind_box_toggled(self, _checked: bool) -> None:
        self._filter.set_kinds(k for k, box in self._kind_boxes.items() if box.isChecked())

    @Slot(str)
    def _on_path_filter_text_changed(self, _text: str) -> None:
        self._path_filter_timer.start()

    @Slot()
    def _apply_path_filter(self) -> None:
        self._path_filter_timer.stop()
        self._filter.set_path_text(self._path_filter.text())

    @Slot(QListWidgetItem)
    def _on_paths_list_item_clicked(self, item: QListWidgetItem) -> None:
        self._path_filter.setText(str(item.data(Qt.ItemDataRole.UserRole)))
        self._apply_path_filter()

    # -- the selected document ----------------------------------------------------------------

    def _entry_at(self, index: QModelIndex) -> DiffEntry | None:
        if not index.isValid():
            return None
        return self._model.entry_at(self._filter.mapToSource(index).row())

    def _reference_of(self, entry: DiffEntry) -> str:
        """The read model the entry's document is in (B's, unless only A has it or B is a
        what-if candidate), pinned to the compared position when the run finished."""
        compared = self._compared
        if compared is None:
            before, after, live_after = self._a.text(), self._b.text(), True
        else:
            before, after, live_after = compared.before, compared.after, compared.live_after
        return after if live_after and entry.kind != "removed" else before

    def _show_document(self, entry: DiffEntry | None) -> None:
        if entry is None:
            self._document_title.setText("Select a document to see both sides.")
            self._before.clear_document()
            self._after.clear_document()
            return
        self._document_title.setText(f"{entry.key} ({entry.kind})")
        self._before.show_document(entry.before, entry.paths, whole=entry.kind == "removed")
        self._after.show_document(entry.after, entry.paths, whole=entry.kind == "added")

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_row_changed(self, current: QModelIndex, _old: QModelIndex) -> None:
        entry = self._entry_at(current)
        self._show_document(entry)
        if entry is not None:
            self.document_selected.emit(self._reference_of(entry), entry.key)

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        entry = self._entry_at(index)
        if entry is not None:
            self.lineage_requested.emit(self._lineage_reference(entry), entry.key)

    @Slot(QPoint)
    def _on_view_custom_context_menu_requested(self, where: QPoint) -> None:
        entry = self._entry_at(self._view.indexAt(where))
        if entry is None:
            return
        menu = QMenu(self)
        action = menu.addAction(f"Lineage of {entry.key}")
        reference, key = self._lineage_reference(entry), entry.key
        action.triggered.connect(lambda: self.lineage_requested.emit(reference, key))
        menu.popup(self._view.viewport().mapToGlobal(where))

    def _lineage_reference(self, entry: DiffEntry) -> str:
        reference = self._reference_of(entry)
        try:
            parsed = ReadModelRef.parse(reference)
        except ValueError:
            return reference
        return reference if parsed.point.kind != "head" else f"{reference}@head"

    # -- export -------------------------------------------------------------------------------

    @Slot()
    def _on_export_button_clicked(self) -> None:
        compared = self._compared
        if compared is None:
            return
        suggested = f"diff-{compared.before}-{compared.after}.json".replace(":", "_")
        path = choose_export_file(self, suggested.replace("@", "_").replace(" ", "_"))
        if path is None:
            return
        timetravel = self._timetravel

        def export() -> str:
            diff = compared.diff
            if diff is None:
                diff = collect_diff(timetravel.diff(compared.before, compared.after))
            Path(path).write_bytes(orjson.dumps(diff, option=orjson.OPT_SORT_KEYS))
            return path

        self._export_button.setEnabled(False)
        task = self._runner.submit(export)
        task.succeeded.connect(self._on_export_task_succeeded)
        task.failed.connect(self._on_export_task_failed)
        task.cancelled.connect(self._on_export_task_cancelled)
        self._export_task = task

    @Slot(object, object)
    def _on_export_task_succeeded(self, _tag: object, path: object) -> None:
        self._export_task = None
        self._export_button.setEnabled(self._compared is not None)
        self._shown_label.setText(f"{self._shown_label.text()} · exported to {path}")
        self.exported.emit(str(path))

    @Slot(object, object)
    def _on_export_task_failed(self, _tag: object, error: object) -> None:
        self._export_task = None
        self._export_button.setEnabled(self._compared is not None)
        message = last_line(str(error)) or type(error).__name__
        self._summary_label.setText(f"export failed: {message}")
        self.export_failed.emit(message)

    @Slot(object)
    def _on_export_task_cancelled(self, _tag: object) -> None:
        self._export_task = None
        self._export_button.setEnabled(self._compared is not None)

    # -- what-if ------------------------------------------------------------------------------

    @Slot()
    def _on_what_if_button_clicked(self) -> None:
        against = self._a.validate()
        if against is None:
            return
        path = choose_plugin_file(self)
        if path is None:
            return
        candidate_text = ask_candidate(self, against.name)
        if candidate_text is None:
            return
        try:
            candidate = ReadModelRef.parse(candidate_text)
        except ValueError as error:
            self._summary_label.setText(f"what-if: {error}")
            return
        timetravel = self._timetravel
        name = Path(path).name

        def run(send: Any, generation: int, keep: int, chunk: int) -> tuple[_Compared, DiffChunk]:
            result = timetravel.what_if_file(path, candidate, against)
            diff = cast(ReadModelDiff, result.diff)
            final = stream_diff(entries_of(diff), lambda: diff["unchanged"], send,
                                generation=generation, keep=keep, chunk_entries=chunk,
                                chunk_seconds=CHUNK_SECONDS)  # fmt: skip
            after = f"{result.candidate}@{result.position} from {name}"
            return _Compared(result.against, after, live_after=False, diff=diff), final

        self._start(run, f"{against} → {candidate} from {name}", str(against),
                    f"{candidate} from {name}")  # fmt: skip


def _invitation(references: Sequence[str]) -> str:
    """What the summary line says before a comparison: what to do."""
    if not references:
        return NO_PROJECTIONS_TEXT
    return "Pick two read models and press Compare."


def _default_pair(references: list[str]) -> tuple[str, str]:
    """The two newest versions of the first projection that has two, else the first twice."""
    by_name: dict[str, list[str]] = {}
    for reference in references:
        by_name.setdefault(reference.split(":")[0], []).append(reference)
    for versions in by_name.values():
        if len(versions) >= 2:
            ordered = sorted(versions, key=lambda r: int(r.split(":")[1]))
            return ordered[-2], ordered[-1]
    return (references[0], references[0]) if references else ("", "")
