"""Colours the panels share, chosen against the palette so they read in both themes."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

__all__ = ["error_colour"]


def error_colour(palette: QPalette) -> QColor:
    """A red for errors and failures that reads on the palette's window colour, light or
    dark."""
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return QColor("#ff7b72") if dark else QColor("#c62828")
