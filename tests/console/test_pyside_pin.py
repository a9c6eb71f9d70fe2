"""Guard against PySide6 6.12.0 on CPython 3.11, which over-releases ``None`` and aborts.

Every void binding call there drops a reference to ``None``; after a few thousand calls
the interpreter dies with "Fatal Python error: none_dealloc". pyproject.toml pins
PySide6 below 6.12 on Python < 3.12; these tests fail if that pin is lost or a build
with the same fault slips in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import PySide6
import pytest

VOID_CALL_ROUNDS = 50_000

_HAMMER = textwrap.dedent(
    f"""
    import sys
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication([])
    widget = QWidget()
    before = sys.getrefcount(None)
    for _ in range({VOID_CALL_ROUNDS}):
        # Each of these returns None from a C++ void function.
        widget.setToolTip("x")
        widget.setObjectName("x")
        widget.setEnabled(True)
        widget.update()
    after = sys.getrefcount(None)
    # Python 3.12+ has an immortal None whose count never moves; on 3.11 a leak shows.
    lost = before - after
    if lost > 1000:
        print(f"None lost {{lost}} references")
        sys.exit(3)
    print("ok")
    """
)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the fault is on CPython < 3.12")
def test_pyside_6_12_0_is_not_installed_on_python_3_11() -> None:
    assert PySide6.__version__ != "6.12.0", (
        "PySide6 6.12.0 aborts CPython 3.11 (none_dealloc); keep the pin <6.12 in pyproject.toml"
    )


def test_many_void_binding_calls_keep_the_interpreter_alive() -> None:
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", _HAMMER],
        capture_output=True,
        text=True,
        env=environment,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    assert result.stdout.strip().splitlines()[-1] == "ok"
