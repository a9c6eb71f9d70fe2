"""One side of a compared document: pretty JSON whose changed fields' lines are tinted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPalette, QTextCursor, QTextFormat
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

from core.timetravel.diff import join_path

__all__ = ["AFTER_TINT", "BEFORE_TINT", "DocumentText", "render_json"]

#: Accents mixed into the view's base colour, so the tint reads on light and dark themes.
BEFORE_TINT = QColor(220, 60, 50)
AFTER_TINT = QColor(40, 170, 80)
_MIX = 0.28
_INDENT = "  "


def render_json(doc: Any) -> tuple[list[str], list[str | None]]:
    """Pretty JSON (sorted keys, two-space indent) and, for each line, the path of the field
    it shows (joined as the diff joins them; None for the braces of the root).

    A nested object's own lines (its key and closing brace) carry its path; arrays and
    scalars are one field each, whatever their number of lines.
    """
    lines: list[str] = []
    paths: list[str | None] = []

    def emit(text: str, path: str | None) -> None:
        lines.append(text)
        paths.append(path)

    def value(item: Any, keys: list[str], depth: int, prefix: str, suffix: str) -> None:
        path = join_path(keys) if keys else None
        pad = _INDENT * depth
        if isinstance(item, dict) and item:
            emit(f"{pad}{prefix}{{", path)
            names = sorted(item)
            for n, name in enumerate(names):
                comma = "," if n < len(names) - 1 else ""
                label = orjson.dumps(name).decode() + ": "
                value(item[name], [*keys, name], depth + 1, label, comma)
            emit(f"{pad}}}{suffix}", path)
            return
        text = orjson.dumps(item, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        first, *rest = text.split("\n")
        if not rest:
            emit(f"{pad}{prefix}{first}{suffix}", path)
            return
        emit(f"{pad}{prefix}{first}", path)
        for n, line in enumerate(rest):
            emit(f"{pad}{line}{suffix if n == len(rest) - 1 else ''}", path)

    value(doc, [], 0, "", "")
    return lines, paths


def _covers(changed: str, path: str | None) -> bool:
    """Whether a line showing ``path`` belongs to the changed field ``changed``."""
    return path is not None and (path == changed or path.startswith(changed + "."))


class DocumentText(QPlainTextEdit):
    """A read-only view of one document, its changed fields' lines tinted.

    Args:
        tint: the accent of this side (mixed into the palette's base colour).
        parent: the usual QWidget parent.
    """

    def __init__(self, tint: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tint = tint
        self._highlighted: list[int] = []
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font: QFont = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)

    def show_document(
        self, doc: Any | None, changed: Iterable[str] = (), *, whole: bool = False
    ) -> None:
        """Show ``doc`` (None: absent on this side) with the lines of ``changed`` paths
        tinted, or every line with ``whole`` (a document only this side has)."""
        if doc is None:
            self.setPlainText("")
            self.setPlaceholderText("(not in this read model)")
            self._set_highlighted([])
            return
        lines, paths = render_json(doc)
        self.setPlainText("\n".join(lines))
        wanted = list(changed)
        self._set_highlighted(
            [n for n, path in enumerate(paths) if whole or any(_covers(c, path) for c in wanted)]
        )

    def clear_document(self) -> None:
        """Show nothing."""
        self.setPlainText("")
        self.setPlaceholderText("")
        self._set_highlighted([])

    def highlighted_lines(self) -> list[str]:
        """The text of each tinted line, top to bottom."""
        document = self.document()
        return [document.findBlockByNumber(n).text() for n in self._highlighted]

    def tint_color(self) -> QColor:
        """The background of a tinted line: the accent mixed into the base colour."""
        base = self.palette().color(QPalette.ColorRole.Base)
        return QColor(
            round(base.red() + (self._tint.red() - base.red()) * _MIX),
            round(base.green() + (self._tint.green() - base.green()) * _MIX),
            round(base.blue() + (self._tint.blue() - base.blue()) * _MIX),
        )

    def changeEvent(self, event: QEvent) -> None:
        """Tint again when the palette changes (a theme switch)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._set_highlighted(self._highlighted)

    def _set_highlighted(self, lines: list[int]) -> None:
        self._highlighted = lines
        colour = self.tint_color()
        selections = []
        document = self.document()
        for n in lines:
            selection = QTextEdit.ExtraSelection()
            selection.format.setBackground(colour)
            selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            cursor = QTextCursor(document.findBlockByNumber(n))
            selection.cursor = cursor
            selections.append(selection)
        self.setExtraSelections(selections)
