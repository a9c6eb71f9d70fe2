"""Without a display, or without the libraries Qt's xcb plugin needs, the console says so
in one line instead of Qt's wall of text; screenshots need no display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from console.display import debian_package, display_problem, missing_libraries

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
"""


def test_shared_libraries_map_to_their_debian_packages() -> None:
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libX11-xcb.so.1") == "libx11-xcb1"
    assert debian_package("libdbus-1.so.3") == "libdbus-1-3"


def test_the_libraries_lacking_are_what_ldd_cannot_find(tmp_path: Path) -> None:
    binary = tmp_path / "libqxcb.so"
    binary.write_bytes(b"")
    asked: list[list[str]] = []

    def ldd(arguments: list[str]) -> str:
        asked.append(arguments)
        return LDD_OUTPUT

    assert missing_libraries([binary], run=ldd) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert asked and asked[0][-1] == str(binary)


def test_what_stands_in_the_way_of_a_window() -> None:
    lacking = ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    problem = display_problem({"DISPLAY": ":0"}, platform="linux", missing=lambda: lacking)
    assert problem is not None and "\n" not in problem
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in problem
    no_display = display_problem({}, platform="linux", missing=lambda: lacking)
    assert no_display is not None and "DISPLAY is not set" in no_display
    assert "--screenshot" in no_display
    # Qt decides alone: nothing lacking, offscreen or Wayland asked for, or not Linux.
    assert display_problem({"DISPLAY": ":0"}, platform="linux", missing=list) is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, platform="linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, platform="linux") is None
    assert display_problem({}, platform="darwin") is None


def without_a_display() -> dict[str, str]:
    hidden = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    return {name: value for name, value in os.environ.items() if name not in hidden}


def test_the_console_without_a_display_says_so_in_one_line_and_changes_nothing(
    tmp_path: Path,
) -> None:
    store = tmp_path / "demo.db"
    done = subprocess.run(
        [sys.executable, "-m", "console.cli", "--store", str(store), "gui", "--demo"],
        env=without_a_display(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "--screenshot" in lines[0]
    assert not store.exists()  # nothing was seeded for a window that cannot open


def test_screenshots_need_no_display(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    command = [sys.executable, "-m", "console.cli", "--store", str(tmp_path / "demo.db")]
    done = subprocess.run(
        [*command, "gui", "--demo", "--screenshot", str(shots)],
        env=without_a_display(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (shots / "window.png").stat().st_size > 0
