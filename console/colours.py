"""Colours the panels share, chosen against the palette so they read in both themes."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

__all__ = ["error_colour", "hint_colour"]


def error_colour(palette: QPalette) -> QColor:
    """A red for errors and failures that reads on the palette's window colour, light or
    dark."""
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return QColor("#ff7b72") if dark else QColor("#c62828")


def hint_colour(palette: QPalette) -> QColor:
    """A grey for help lines and other hints: the text colour two thirds of the way to
    the window colour's, so it stays readable in both themes."""
    text = palette.color(QPalette.ColorRole.WindowText)
    window = palette.color(QPalette.ColorRole.Window)
    return QColor(
        (text.red() * 2 + window.red()) // 3,
        (text.green() * 2 + window.green()) // 3,
        (text.blue() * 2 + window.blue()) // 3,
    )
