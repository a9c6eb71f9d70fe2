"""The application icon and the desktop entry in resources/."""

from __future__ import annotations

import configparser
from typing import Any

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from console.app import run_gui
from console.resources import DESKTOP_ENTRY, ICON_SIZES, RESOURCES, application_icon


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
