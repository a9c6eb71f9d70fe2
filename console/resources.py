"""The application's resources (``resources/`` at the top of the project): its icon in
several sizes, its desktop entry, the panels' and actions' icons (Tabler Icons, MIT
licence, in ``resources/icons/tabler/`` with the licence beside them) and the light and
dark themes (``resources/themes/NAME.json``: a palette and the colour icons are drawn in).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QByteArray, QSize
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from core.errors import EventscopeError

__all__ = [
    "DESKTOP_ENTRY",
    "ICONS",
    "ICON_SIZES",
    "RESOURCES",
    "THEMES",
    "Theme",
    "ThemeError",
    "application_icon",
    "icon",
    "load_theme",
]

#: The project's resources folder (beside ``console/`` in a checkout or editable install).
RESOURCES: Final = Path(__file__).resolve().parents[1] / "resources"
#: The sizes the icon is drawn at (``resources/icons/eventscope-N.png``), from the SVG.
ICON_SIZES: Final = (16, 24, 32, 48, 64, 128, 256)
#: The freedesktop.org entry that puts Eventscope in a desktop's application menu.
DESKTOP_ENTRY: Final = RESOURCES / "eventscope.desktop"
#: The themes, in the order View → Theme lists them (the first is the default).
THEMES: Final = ("light", "dark")

#: What each icon is for, and the Tabler icon (``resources/icons/tabler/NAME.svg``) drawn.
ICONS: Final = {
    # File, Edit, Store and View menus
    "open": "folder-open",
    "recent": "history",
    "reload": "refresh",
    "quit": "logout",
    "find": "search",
    "writable": "lock-open",
    "read-only": "lock",
    "run-projections": "player-play",
    "theme-light": "sun",
    "theme-dark": "moon",
    # docks
    "streams": "list-details",
    "inspector": "file-search",
    "timeline": "chart-histogram",
    "time-travel": "clock-play",
    "compare": "arrows-diff",
    "lineage": "hierarchy-2",
    "plugins": "plug",
    "projections": "stack-2",
    "commands": "terminal-2",
    # panels' actions
    "run": "player-play",
    "pause": "player-pause",
    "resume": "player-play",
    "rebuild": "hammer",
    "reset": "restore",
    "retire": "archive",
    "retain": "scissors",
    "retry": "reload",
    "skip": "player-skip-forward",
    "cancel": "x",
    "dry-run": "eye",
    "execute": "send",
    "new-key": "key",
    "show-event": "external-link",
}
#: The sizes an action's or dock's icon is drawn at (menus, tool buttons, tabs; HiDPI).
_DRAWN_SIZES: Final = (16, 24, 32, 48)


class ThemeError(EventscopeError):
    """A theme file is missing or does not hold a palette."""


def application_icon() -> QIcon:
    """Eventscope's icon, every size drawn (an empty icon where resources are missing,
    as in a wheel installed without them)."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = RESOURCES / "icons" / f"eventscope-{size}.png"
        if path.exists():
            icon.addFile(str(path))
    return icon


def icon(purpose: str, colour: QColor | str) -> QIcon:
    """The icon for ``purpose`` (a key of :data:`ICONS`), its strokes drawn in ``colour``
    (a theme's ``icon_colour``: Tabler icons draw in ``currentColor``, which Qt would
    render black on a dark theme too). An empty icon where resources are missing.

    Raises:
        KeyError: ``purpose`` is not a key of :data:`ICONS`.
    """
    name = ICONS[purpose]
    return _drawn(name, QColor(colour).name())


def _drawn(name: str, colour: str) -> QIcon:
    path = RESOURCES / "icons" / "tabler" / f"{name}.svg"
    drawn = QIcon()
    if not path.exists():
        return drawn
    svg = path.read_text(encoding="utf-8").replace("currentColor", colour)
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    for size in _DRAWN_SIZES:
        for mode, alpha in ((QIcon.Mode.Normal, 1.0), (QIcon.Mode.Disabled, 0.35)):
            pixmap = QPixmap(QSize(size, size))
            pixmap.fill(QColor(0, 0, 0, 0))
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setOpacity(alpha)
            renderer.render(painter)
            painter.end()
            drawn.addPixmap(pixmap, mode)
    return drawn


class Theme:
    """A theme read from ``resources/themes/NAME.json``: its palette and icon colour.

    Args:
        name: the theme's name (one of :data:`THEMES`).
        palette: the window's palette.
        icon_colour: what the actions' and docks' icons are drawn in.
    """

    def __init__(self, name: str, palette: QPalette, icon_colour: QColor) -> None:
        self.name = name
        self.palette = palette
        self.icon_colour = icon_colour

    def icon(self, purpose: str) -> QIcon:
        """The icon for ``purpose`` in this theme's colour (see :func:`icon`)."""
        return icon(purpose, self.icon_colour)


def load_theme(name: str, folder: Path | None = None) -> Theme:
    """Read a theme: every palette role it names (``Window``, ``Text``, ...) set in the
    active and inactive groups, and its ``disabled`` roles in the disabled group.

    Raises:
        ThemeError: no such theme file, or it is not a theme (says which and why).
    """
    path = (folder or RESOURCES / "themes") / f"{name}.json"
    try:
        spec: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ThemeError(f"theme {name!r}: cannot read {path}: {error}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("palette"), dict):
        raise ThemeError(f'theme {name!r}: {path} holds no "palette" object')
    palette = QPalette()
    groups = (
        (spec["palette"], (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive)),
        (spec.get("disabled", {}), (QPalette.ColorGroup.Disabled,)),
    )
    for roles, colour_groups in groups:
        for role_name, value in roles.items():
            role = getattr(QPalette.ColorRole, role_name, None)
            colour = QColor(str(value))
            if not isinstance(role, QPalette.ColorRole) or not colour.isValid():
                raise ThemeError(f"theme {name!r}: {role_name}: {value!r} is not a role and colour")
            for group in colour_groups:
                palette.setColor(group, role, colour)
    # Roles the disabled group does not name look as they do when enabled.
    for role_name in spec["palette"]:
        if role_name not in spec.get("disabled", {}):
            role = getattr(QPalette.ColorRole, role_name)
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(spec["palette"][role_name]))
    icon_colour = QColor(str(spec.get("icon_colour", spec["palette"].get("WindowText", "#000"))))
    return Theme(name, palette, icon_colour)
