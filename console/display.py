"""Whether the console can open a window here, asked before Qt is: one clear line instead
of Qt's wall of text when there is no display, or when the system lacks the libraries
Qt's X11 (xcb) platform plugin needs (a fresh Debian or Ubuntu lacks several)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

__all__ = ["XCB_PACKAGES", "debian_package", "display_problem", "missing_libraries"]

#: The system packages Qt's xcb platform plugin needs beyond a desktop's usual ones (Qt's
#: own list for Qt 6.5+), named as Debian and Ubuntu name them: what the README lists.
XCB_PACKAGES: Final = (
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-image0",
    "libxcb-render-util0",
    "libxcb-randr0",
    "libxcb-shape0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
)
_NOT_FOUND: Final = re.compile(r"^\s*(\S+\.so\S*)\s+=>\s+not found", re.MULTILINE)


def debian_package(soname: str) -> str:
    """The Debian package of a shared library: ``libxcb-icccm.so.4`` → ``libxcb-icccm4``,
    ``libxkbcommon-x11.so.0`` → ``libxkbcommon-x11-0``, ``libX11-xcb.so.1`` → ``libx11-xcb1``."""
    stem, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    if not version:
        return stem.lower()
    return f"{stem.lower()}{'-' if stem[-1].isdigit() else ''}{version}"


def _xcb_binaries() -> list[Path]:
    """Qt's xcb platform plugin and its library, as the installed PySide6 ships them."""
    try:
        import PySide6  # the package's folder only: Qt itself is not loaded
    except ImportError:
        return []
    qt = Path(PySide6.__file__).parent / "Qt"
    found = [
        qt / "plugins" / "platforms" / "libqxcb.so",
        *sorted((qt / "lib").glob("libQt6XcbQpa.so*")),
    ]
    return [path for path in found if path.exists()]


def missing_libraries(
    binaries: Sequence[Path] | None = None,
    run: Callable[[list[str]], str] | None = None,
) -> list[str]:
    """The shared libraries Qt's xcb plugin needs and the system lacks (``ldd``'s "not
    found"), sorted; empty when nothing is missing or it cannot be told."""
    paths = _xcb_binaries() if binaries is None else list(binaries)
    ldd = shutil.which("ldd")
    if not paths or (run is None and ldd is None):
        return []

    def run_ldd(arguments: list[str]) -> str:
        done = subprocess.run(arguments, capture_output=True, text=True, timeout=10, check=False)
        return done.stdout

    runner = run if run is not None else run_ldd
    missing: set[str] = set()
    for path in paths:
        missing.update(_NOT_FOUND.findall(runner([ldd or "ldd", str(path)])))
    return sorted(missing)


def display_problem(
    environ: Mapping[str, str] = os.environ,
    *,
    platform: str = sys.platform,
    missing: Callable[[], list[str]] = missing_libraries,
) -> str | None:
    """Why no window can be opened here, in one line, or None when Qt should manage.

    Only Linux's X11 path is checked: another platform, a ``QT_QPA_PLATFORM`` other than
    xcb (offscreen, wayland, …) or a Wayland session is left to Qt.
    """
    if platform != "linux":
        return None
    requested = environ.get("QT_QPA_PLATFORM", "")
    if requested and not requested.startswith("xcb"):
        return None
    if not requested and environ.get("WAYLAND_DISPLAY"):
        return None
    if not environ.get("DISPLAY"):
        return (
            "there is no display to open the console on (DISPLAY is not set): run it on a "
            "desktop, or save its panels as PNGs with `eventscope gui --screenshot DIR`"
        )
    lacking = missing()
    if lacking:
        packages = " ".join(sorted({debian_package(name) for name in lacking}))
        return (
            f"Qt cannot open a window: the system lacks {', '.join(lacking)}; install "
            f"them with `sudo apt install {packages}` (Debian, Ubuntu)"
        )
    return None
