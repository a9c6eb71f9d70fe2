"""resources/: the application icon, the desktop entry, the themes and the icon set."""

from __future__ import annotations

import configparser
import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from console.app import run_gui
from console.main_window import MainWindow
from console.resources import (
    DESKTOP_ENTRY,
    ICON_SIZES,
    ICONS,
    RESOURCES,
    THEMES,
    ThemeError,
    application_icon,
    icon,
    load_theme,
)
from core.workspace import Workspace


def test_the_icon_comes_in_every_size(qapp: Any) -> None:
    icon = application_icon()
    assert not icon.isNull()
    assert {size.width() for size in icon.availableSizes()} == set(ICON_SIZES)
    assert (RESOURCES / "icons" / "eventscope.svg").exists()  # what the PNGs are drawn from
    assert not icon.pixmap(QSize(32, 32)).isNull()


def test_the_desktop_entry_starts_the_console(qapp: Any) -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(DESKTOP_ENTRY, encoding="utf-8")
    fields = entry["Desktop Entry"]
    assert fields["Type"] == "Application" and fields["Name"] == "Eventscope"
    assert fields["Exec"].split()[:2] == ["eventscope", "gui"]
    assert fields["Icon"] == "eventscope" and fields["Terminal"] == "false"


def test_the_console_shows_its_icon(qapp: Any, tmp_path: Any) -> None:
    qapp.setWindowIcon(QIcon())  # whatever an earlier test set
    assert run_gui(str(tmp_path / "demo.db"), demo=True, writable=False,
                   screenshot_dir=str(tmp_path / "shots")) == 0  # fmt: skip
    app = QApplication.instance()
    assert isinstance(app, QApplication) and not app.windowIcon().isNull()


# -- themes and icons ------------------------------------------------------------------------


def _ink(icon: QIcon, size: int = 32, mode: QIcon.Mode = QIcon.Mode.Normal) -> set[str]:
    """The opaque colours an icon is drawn in, as #rrggbb."""
    image = icon.pixmap(QSize(size, size), mode).toImage()
    colours = set()
    for x in range(image.width()):
        for y in range(image.height()):
            pixel = image.pixelColor(x, y)
            if pixel.alpha() == 255:
                colours.add(pixel.name())
    return colours


def test_both_themes_load_from_their_files(qapp: Any) -> None:
    for name in THEMES:
        spec = json.loads((RESOURCES / "themes" / f"{name}.json").read_text())
        theme = load_theme(name)
        for role, colour in spec["palette"].items():
            wanted = QColor(colour)
            assert theme.palette.color(getattr(QPalette.ColorRole, role)) == wanted, role
        for role, colour in spec["disabled"].items():
            got = theme.palette.color(
                QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, role)
            )
            assert got == QColor(colour), role
        assert theme.icon_colour == QColor(spec["icon_colour"])
    dark, light = load_theme("dark"), load_theme("light")
    assert dark.palette.color(QPalette.ColorRole.Base).lightness() < 60
    assert light.palette.color(QPalette.ColorRole.Base).lightness() > 240


def test_a_broken_theme_file_is_a_clear_error(qapp: Any, tmp_path: Path) -> None:
    (tmp_path / "odd.json").write_text('{"palette": {"Window": "not a colour"}}')
    (tmp_path / "bare.json").write_text("[]")
    with pytest.raises(ThemeError, match="Window: 'not a colour' is not a role and colour"):
        load_theme("odd", tmp_path)
    with pytest.raises(ThemeError, match='holds no "palette" object'):
        load_theme("bare", tmp_path)
    with pytest.raises(ThemeError, match="cannot read"):
        load_theme("missing", tmp_path)


def test_every_icon_is_in_the_set_with_its_licence(qapp: Any) -> None:
    tabler = RESOURCES / "icons" / "tabler"
    licence = (tabler / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Paweł Kuna" in licence
    for purpose, name in ICONS.items():
        assert (tabler / f"{name}.svg").exists(), purpose
        drawn = icon(purpose, "#ff0000")
        assert _ink(drawn) == {"#ff0000"}, purpose  # every stroke in the colour asked
        disabled = _ink(drawn, mode=QIcon.Mode.Disabled)
        assert "#ff0000" not in disabled  # faded, not opaque red


def test_the_window_draws_its_icons_in_the_theme_colour(
    qapp: Any, tmp_path: Path, runner: Any, workspaces: list[Workspace], windows: list[MainWindow]
) -> None:
    workspace = Workspace.open(str(tmp_path / "a.db"), read_only=False)
    workspaces.append(workspace)
    window = MainWindow(workspace, runner)
    windows.append(window)
    light = load_theme("light").icon_colour.name()
    dark = load_theme("dark").icon_colour.name()
    iconed = [window.open_action, window.reload_action, window.find_action,
              window.writable_action, window.plugins_dock.toggleViewAction()]  # fmt: skip
    for action in iconed:
        assert light in _ink(action.icon()), action.text()
    assert light in _ink(window.time_travel_dock.windowIcon())
    window.set_theme("dark")
    for action in iconed:
        assert dark in _ink(action.icon()) and light not in _ink(action.icon()), action.text()
    assert dark in _ink(window.compare_dock.windowIcon())
