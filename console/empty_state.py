"""A panel's content, or one centred line saying what to do while there is nothing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

__all__ = ["EmptyOr"]


class EmptyOr(QStackedWidget):
    """``content``, or a label with ``text`` (an empty state: "no plugins loaded: add a
    plugin folder with --plugins, see docs/plugins.md").

    Args:
        content: what the panel shows when it has something.
        text: the empty state's words.
        object_name: the label's object name (for tests and style sheets).
        parent: the usual QWidget parent.
    """

    def __init__(self, content: QWidget, text: str, object_name: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.label = QLabel(text, self)
        self.label.setObjectName(object_name)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self._content = content
        self.addWidget(content)
        self.addWidget(self.label)

    def show_content(self, shown: bool) -> None:
        """Show the content (True) or the empty state (False)."""
        self.setCurrentWidget(self._content if shown else self.label)
