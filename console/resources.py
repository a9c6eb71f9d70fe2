"""The application's resources (``resources/`` at the top of the project): its icon in
several sizes and its desktop entry."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PySide6.QtGui import QIcon

__all__ = ["DESKTOP_ENTRY", "ICON_SIZES", "RESOURCES", "application_icon"]

#: The project's resources folder (beside ``console/`` in a checkout or editable install).
RESOURCES: Final = Path(__file__).resolve().parents[1] / "resources"
#: The sizes the icon is drawn at (``resources/icons/eventscope-N.png``), from the SVG.
ICON_SIZES: Final = (16, 24, 32, 48, 64, 128, 256)
#: The freedesktop.org entry that puts Eventscope in a desktop's application menu.
DESKTOP_ENTRY: Final = RESOURCES / "eventscope.desktop"


def application_icon() -> QIcon:
    """Eventscope's icon, every size drawn (an empty icon where resources are missing,
    as in a wheel installed without them)."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = RESOURCES / "icons" / f"eventscope-{size}.png"
        if path.exists():
            icon.addFile(str(path))
    return icon
