"""The compare panel: two read models side by side, their diff streamed in, changes tinted.

``panel`` holds the widget, ``entries_model`` the table model and its filter,
``document_text`` one side of a document, ``reference_picker`` a reference's pickers,
``streaming`` the diff consumed off the GUI thread.
"""

from console.panels.compare.panel import ComparePanel

__all__ = ["ComparePanel"]
