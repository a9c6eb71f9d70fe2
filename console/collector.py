"""Garbage collection on the GUI thread only.

Closed windows and panels can linger in reference cycles. Left to CPython's automatic
collector, a collection runs in whichever thread allocates when a threshold is
crossed; if that is a pool thread loading rows, it deletes the widgets there, off the
GUI thread, and Qt crashes (a console test segfaulted so). The collector here turns
automatic collection off and collects on a GUI-thread timer instead, by the same
thresholds (pyqtgraph's ``GarbageCollector`` does the same; this one can be stopped).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

__all__ = ["GuiThreadCollector"]


class GuiThreadCollector(QObject):
    """While started, garbage is collected by a timer on the thread that created it.

    Args:
        interval_ms: how often the counts are checked.
        parent: the owning QObject (the application).
    """

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._was_enabled = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)

    def start(self) -> None:
        """Turn automatic collection off; collect on the timer from now on."""
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Collect once more and give collection back to CPython as it was."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds (on this thread)."""
        young, middle, old = gc.get_count()
        first, second, third = self._thresholds
        if young > first:
            gc.collect(0)
            if middle > second:
                gc.collect(1)
                if old > third:
                    gc.collect(2)
