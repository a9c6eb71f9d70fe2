"""Start the console: open the store, build the window, then run it or take screenshots."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from console.main_window import MainWindow
from console.workers import TaskRunner
from core.errors import NotAnEventStore, StoreNotFound, StoreUnusable
from core.workspace import Workspace

__all__ = ["EXIT_STORE_UNUSABLE", "SCREENSHOT_TIMEOUT_MS", "run_gui"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STORE_UNUSABLE = 5
SCREENSHOT_TIMEOUT_MS = 10_000
DEMO_ORDERS = 1000
DEMO_SEED = 7


def run_gui(
    location: str,
    *,
    demo: bool,
    writable: bool,
    screenshot_dir: str | None,
    plugin_dirs: Sequence[str] = (),
) -> int:
    """Open the console on a store and return the process exit code (DESIGN §6).

    Args:
        location: a SQLite file path or a database URL.
        demo: seed the store with the demo history first if it is missing or empty.
        writable: open the store writable (it opens read-only otherwise).
        screenshot_dir: save ``streams.png`` and ``window.png`` there once the data
            is shown, and return instead of running the event loop.
        plugin_dirs: folders of plugin files (``--plugins``).

    Returns:
        0 on success, 1 when screenshots fail, 5 when the store is unusable.
    """
    try:
        if demo:
            _seed_demo_if_empty(location)
        workspace = Workspace.open(location, read_only=not writable, plugin_dirs=plugin_dirs)
    except StoreUnusable as error:
        print(f"eventscope: {error}", file=sys.stderr)
        return EXIT_STORE_UNUSABLE

    app = QApplication.instance() or QApplication(sys.argv[:1])
    QCoreApplication.setOrganizationName("Eventscope")
    QCoreApplication.setApplicationName("Eventscope")
    runner = TaskRunner()
    window: MainWindow | None = None
    try:
        if screenshot_dir is not None:
            window = MainWindow(workspace, runner)
            return _save_screenshots(window, Path(screenshot_dir))
        window = MainWindow(workspace, runner, settings=QSettings())
        window.show()
        return app.exec()
    finally:
        if window is not None:
            if window.isVisible():
                window.close()
            window.deleteLater()
        runner.shutdown()
        runner.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        workspace.close()


def _seed_demo_if_empty(location: str) -> None:
    """Seed the demo history into a store that is missing or holds no events."""
    try:
        with Workspace.open(location, read_only=True) as probe:
            if probe.head_position() > 0:
                return
    except (StoreNotFound, NotAnEventStore):
        pass  # missing, an empty file or no schema yet: the writable open creates it
    with Workspace.open(location, read_only=False) as workspace:
        workspace.write_demo("orders", orders=DEMO_ORDERS, seed=DEMO_SEED)


def _save_screenshots(window: MainWindow, folder: Path) -> int:
    """Show the window, wait for its data, and save ``streams.png`` and ``window.png``."""
    loop = QEventLoop()
    waiting = {"streams", "head"}
    failures: list[str] = []

    def arrived(what: str) -> None:
        waiting.discard(what)
        if not waiting:
            loop.exit(EXIT_OK)

    def failed(message: str) -> None:
        failures.append(message)
        loop.exit(EXIT_FAILED)

    panel = window.streams_panel
    panel.first_page_loaded.connect(lambda: arrived("streams"))
    panel.load_failed.connect(failed)
    window.head_position_loaded.connect(lambda _position: arrived("head"))
    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(SCREENSHOT_TIMEOUT_MS)
    timer.timeout.connect(lambda: failed("timed out waiting for the streams to load"))

    window.show()
    timer.start()
    code = loop.exec()
    timer.stop()
    if code != EXIT_OK:
        print(f"eventscope: no screenshots: {'; '.join(failures)}", file=sys.stderr)
        return EXIT_FAILED
    # Let the views lay out the rows that just arrived before grabbing them.
    QCoreApplication.processEvents()

    folder.mkdir(parents=True, exist_ok=True)
    shots = {"streams.png": panel.grab(), "window.png": window.grab()}
    for name, pixmap in shots.items():
        if pixmap.isNull() or not pixmap.save(str(folder / name), "PNG"):
            print(f"eventscope: could not save {folder / name}", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK
