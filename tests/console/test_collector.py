"""The console collects garbage on the GUI thread only."""

from __future__ import annotations

import gc
import threading
from typing import Any

from console.collector import GuiThreadCollector


class _Cycle:
    """Garbage only the cycle collector frees."""

    def __init__(self) -> None:
        self.me = self


def test_garbage_made_on_a_pool_thread_is_collected_on_the_gui_thread(qtbot: Any) -> None:
    freed_on: list[str] = []

    class Tracked(_Cycle):
        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    was_enabled = gc.isenabled()
    gc.enable()
    collector = GuiThreadCollector(interval_ms=20)
    collector.start()
    try:
        assert not gc.isenabled()

        def churn() -> None:  # far past generation 0's threshold: no collection here
            Tracked()
            for _ in range(50_000):
                _Cycle()

        worker = threading.Thread(target=churn, name="pool-thread")
        worker.start()
        worker.join()
        assert freed_on == []
        qtbot.waitUntil(lambda: freed_on != [], timeout=5000)
        assert freed_on == [threading.current_thread().name]
    finally:
        collector.stop()
        if not was_enabled:
            gc.disable()


def test_stop_gives_automatic_collection_back(qtbot: Any) -> None:
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        collector = GuiThreadCollector()
        collector.start()
        assert not gc.isenabled()
        collector.stop()
        assert gc.isenabled()
    finally:
        if not was_enabled:
            gc.disable()
