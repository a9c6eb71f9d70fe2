"""Where Eventscope keeps its files by default: the user data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["user_data_folder"]


def user_data_folder() -> Path:
    """``eventscope`` in the platform's folder for user data (XDG on Linux)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "eventscope"
