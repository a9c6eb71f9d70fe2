"""Start the console: open the store, build the window, then run it or take screenshots."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, cast

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QEventLoop,
    QObject,
    QSettings,
    Qt,
    QTimer,
    Signal,
    SignalInstance,
    Slot,
)
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QApplication, QLineEdit, QPlainTextEdit

from console.collector import GuiThreadCollector
from console.display import display_problem
from console.main_window import INDEX_INTERVAL_MS, RATE_INTERVAL_MS, MainWindow
from console.resources import application_icon
from console.workers import TaskRunner
from core.errors import EventscopeError, NotAnEventStore, StoreNotFound, StoreUnusable
from core.services.events import EventQueries
from core.store import EventFilter
from core.workspace import Workspace

__all__ = ["EXIT_STORE_UNUSABLE", "SCREENSHOT_TIMEOUT_MS", "ConsoleSession", "run_gui"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STORE_UNUSABLE = 5
SCREENSHOT_TIMEOUT_MS = 10_000
DEMO_ORDERS = 1000
DEMO_SEED = 7
DEMO_RUNS = 8


def run_gui(
    location: str,
    *,
    demo: bool,
    writable: bool,
    screenshot_dir: str | None,
    plugin_dirs: Sequence[str] = (),
    models: str | None = None,
) -> int:
    """Open the console on a store and return the process exit code (DESIGN §6).

    Args:
        location: a SQLite file path or a database URL.
        demo: seed the store with the demo history first if it is missing or empty.
        writable: open the store writable (it opens read-only otherwise).
        screenshot_dir: save ``streams.png``, ``event-log.png``, ``inspector.png``,
            ``timeline.png``, ``time-travel.png``, ``compare.png``, ``plugins.png``,
            ``projections.png`` and ``window.png``
            there once the data is shown, and return instead of running the event loop
            (with no display to open a window on, Qt draws offscreen).
        plugin_dirs: folders of plugin files (``--plugins``).
        models: the sidecar store of another tool's store (``--models``).

    Returns:
        0 on success, 1 when screenshots fail or no window can be opened here (said in
        one line), 5 when the store is unusable.
    """
    problem = display_problem()
    if problem is not None and screenshot_dir is None:
        print(f"eventscope: {problem}", file=sys.stderr)
        return EXIT_FAILED
    if problem is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # screenshots need no display
    try:
        if demo:
            _seed_demo_if_empty(location)
        workspace = Workspace.open(
            location, read_only=not writable, plugin_dirs=plugin_dirs, models=models
        )
    except StoreUnusable as error:
        print(f"eventscope: {error}", file=sys.stderr)
        return EXIT_STORE_UNUSABLE
    if writable:
        try:
            workspace.writing.record_writable_start()
        except EventscopeError as error:
            workspace.close()
            print(f"eventscope: {error}", file=sys.stderr)
            return EXIT_STORE_UNUSABLE

    app = QApplication.instance() or QApplication(sys.argv[:1])
    QCoreApplication.setOrganizationName("Eventscope")
    QCoreApplication.setApplicationName("Eventscope")
    if isinstance(app, QApplication):
        app.setWindowIcon(application_icon())
        app.setDesktopFileName("eventscope")  # Wayland matches the window to its entry
    collector = GuiThreadCollector(parent=app)  # widgets are never freed off the GUI thread
    collector.start()
    try:
        return _show(app, workspace, plugin_dirs, screenshot_dir)
    finally:
        collector.stop()
        collector.deleteLater()


def _show(
    app: QCoreApplication,
    workspace: Workspace,
    plugin_dirs: Sequence[str | os.PathLike[str]],
    screenshot_dir: str | os.PathLike[str] | None,
) -> int:
    """Screenshots, or the console session until the user quits."""
    if screenshot_dir is not None:
        runner = TaskRunner()
        window: MainWindow | None = None
        try:
            window = MainWindow(workspace, runner)
            return _save_screenshots(window, runner, Path(screenshot_dir))
        finally:
            _dispose(window, runner, workspace)
    session = ConsoleSession(
        workspace,
        settings=QSettings(),
        open_workspace=functools.partial(Workspace.open, plugin_dirs=plugin_dirs),
    )
    try:
        session.window.show()
        return app.exec()
    finally:
        session.close()


class ConsoleSession(QObject):
    """Owns the console window and what it stands on: one workspace, its runner.

    File → Open store hands a freshly opened workspace over; the session then puts a
    new window over it where the old one was (same geometry and docks), and closes the
    old window, its runner and only then its workspace.

    Args:
        workspace: the store to show first; the session closes it.
        settings: where windows persist layout, recent stores and the theme.
        open_workspace: how File → Open store opens a location (read-only).
        rate_interval_ms: passed on to every window (tests sample faster).
        index_interval_ms: passed on to every window (tests index sooner).
    """

    window_replaced = Signal(object)  # the new MainWindow

    def __init__(
        self,
        workspace: Workspace,
        *,
        settings: QSettings | None,
        open_workspace: Callable[[str], Workspace] = Workspace.open,
        rate_interval_ms: int = RATE_INTERVAL_MS,
        index_interval_ms: int = INDEX_INTERVAL_MS,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._open_workspace = open_workspace
        self._rate_interval_ms = rate_interval_ms
        self._index_interval_ms = index_interval_ms
        self._workspace = workspace
        self._closed = False
        self._runner = TaskRunner()
        self._window = self._build_window(workspace, self._runner)

    @property
    def window(self) -> MainWindow:
        """The window shown now."""
        return self._window

    @property
    def workspace(self) -> Workspace:
        """The store shown now."""
        return self._workspace

    def close(self) -> None:
        """Close the window, then its runner, then its workspace (once; again does nothing)."""
        if self._closed:
            return
        self._closed = True
        _dispose(self._window, self._runner, self._workspace)

    def _build_window(self, workspace: Workspace, runner: TaskRunner) -> MainWindow:
        window = MainWindow(
            workspace,
            runner,
            settings=self._settings,
            open_workspace=self._open_workspace,
            rate_interval_ms=self._rate_interval_ms,
            index_interval_ms=self._index_interval_ms,
        )
        # Queued: the old window goes away only after the dialog's signal has returned.
        window.store_opened.connect(
            self._on_window_store_opened, Qt.ConnectionType.QueuedConnection
        )
        return window

    @Slot(object)
    def _on_window_store_opened(self, opened: object) -> None:
        workspace = cast(Workspace, opened)
        old_window, old_runner, old_workspace = self._window, self._runner, self._workspace
        runner = TaskRunner()
        window = self._build_window(workspace, runner)
        window.restoreGeometry(old_window.saveGeometry())
        window.restoreState(old_window.saveState())
        self._window, self._runner, self._workspace = window, runner, workspace
        if old_window.isVisible():
            window.show()
        _dispose(old_window, old_runner, old_workspace)
        self.window_replaced.emit(window)


def _dispose(window: MainWindow | None, runner: TaskRunner, workspace: Workspace) -> None:
    """Close a window, shut its runner down and close its workspace, in that order."""
    if window is not None:
        if window.isVisible():
            window.close()
        window.in_app_projections.shut_down()  # also when it was never shown
        window.deleteLater()
    runner.shutdown()
    runner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    workspace.close()


def _seed_demo_if_empty(location: str) -> None:
    """Seed the demo history into a store that is missing or holds no events, and run
    its projections, so time travel and compare answer from history at once.

    The newest version of a projection that has older ones (``order_summary:2``) is left
    part of the way, as a new version being rolled out: the projections panel shows it
    behind, and once the console is writable its scheduler catches it up.
    """
    try:
        with Workspace.open(location, read_only=True) as probe:
            if probe.events.head_position() > 0:
                return
    except (StoreNotFound, NotAnEventStore):
        pass  # missing, an empty file or no schema yet: the writable open creates it
    with Workspace.open(location, read_only=False) as workspace:
        workspace.writing.write_demo("orders", orders=DEMO_ORDERS, seed=DEMO_SEED)
        head = workspace.events.head_position()
        # In a few runs, as a worker following the log would: the projections panel
        # then has a run history to chart.
        references = workspace.projections.references()
        names = [reference.split(":")[0] for reference in references]
        for reference in references:
            name, version = reference.split(":")
            rolling_out = names.count(name) > 1 and f"{name}:{int(version) + 1}" not in references
            runs = DEMO_RUNS - 2 if rolling_out else DEMO_RUNS
            for step in range(1, runs + 1):
                until = head * step // DEMO_RUNS
                workspace.projections.run(reference, until=until, worker="demo")


def _save_screenshots(window: MainWindow, runner: TaskRunner, folder: Path) -> int:
    """Show the window, wait for its data, select an event worth inspecting, save PNGs.

    Saves ``streams.png``, ``event-log.png``, ``inspector.png``, ``timeline.png``,
    ``window.png``, then the docks' ``time-travel.png``, ``compare.png``,
    ``plugins.png``, ``projections.png`` and ``commands.png``.
    """
    panel = window.streams_panel
    log = window.event_log
    inspector = window.inspector
    failures: list[str] = []

    shown = _wait_for(
        {
            "the streams": (panel.first_page_loaded, panel.load_failed),
            "the head position": (window.head_position_loaded, None),
            "the event log": (log.first_page_loaded, log.load_failed),
            "the timeline": (window.timeline.timeline_loaded, window.timeline.load_failed),
        },
        failures,
        window.show,
    )
    if shown:
        events = window.workspace.events
        finder = runner.submit(lambda: _position_to_inspect(events))
        position: list[int] = []
        finder.succeeded.connect(lambda _tag, found: position.append(found))
        found = _wait_for({"an event to inspect": (finder.succeeded, finder.failed)}, failures)
        if found and position[0] > 0:
            shown = _wait_for(
                {"the inspector": (inspector.causation_resolved, None)},
                failures,
                lambda: log.jump_to_position(position[0]),
            )
        shown = shown and found
    if not shown:
        print(f"eventscope: no screenshots: {'; '.join(failures)}", file=sys.stderr)
        return EXIT_FAILED
    # Let the views lay out the rows that just arrived before grabbing them.
    QCoreApplication.processEvents()

    folder.mkdir(parents=True, exist_ok=True)
    shots = {
        "streams.png": panel.grab(),
        "event-log.png": log.grab(),
        "inspector.png": inspector.grab(),
        "timeline.png": window.timeline.grab(),
        "window.png": window.grab(),
    }
    time_travel = _time_travel_shot(window, failures)
    compare = _compare_shot(window, failures) if time_travel is not None else None
    if time_travel is None or compare is None:
        print(f"eventscope: no screenshots: {'; '.join(failures)}", file=sys.stderr)
        return EXIT_FAILED
    shots |= {
        "time-travel.png": time_travel,
        "compare.png": compare,
        "plugins.png": _plugins_shot(window),
    }
    projections = _projections_shot(window, failures)
    if projections is None:
        print(f"eventscope: no screenshots: {'; '.join(failures)}", file=sys.stderr)
        return EXIT_FAILED
    shots["projections.png"] = projections
    commands = _commands_shot(window, failures)
    if commands is None:
        print(f"eventscope: no screenshots: {'; '.join(failures)}", file=sys.stderr)
        return EXIT_FAILED
    shots["commands.png"] = commands
    for name, pixmap in shots.items():
        if pixmap.isNull() or not pixmap.save(str(folder / name), "PNG"):
            print(f"eventscope: could not save {folder / name}", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


#: Read models the two panels' screenshots show (the orders demo's), and their size.
_SHOWN_MODEL = "order_summary:1"
_OTHER_MODEL = "order_summary:2"
_PANEL_SHOT_SIZE = (1180, 660)


def _time_travel_shot(window: MainWindow, failures: list[str]) -> QPixmap | None:
    """The time-travel panel with ``order_summary`` (or, on a store the orders demo did
    not write, the first read model that has run there) mid-history, one event stepped."""
    panel = window.time_travel
    dock = window.time_travel_dock
    dock.setFloating(True)  # a floating dock takes the size a screenshot wants
    dock.resize(*_PANEL_SHOT_SIZE)
    model = _model_to_show(window)
    if panel.model_combo.findText(model) < 0:
        failures.append(f"time travel: no {model} loaded")
        return None
    before = _point_before_a_change(window.workspace.events)

    def start() -> None:
        panel.model_combo.setCurrentText(model)
        window.show_time_travel(before)

    shown = _wait_for(
        {"the time-travel panel": (panel.step_shown, panel.load_failed)}, failures, start
    )
    stepped = shown and _wait_for(
        {"a step in time travel": (panel.step_shown, panel.load_failed)},
        failures,
        panel.step_forward_button.click,
    )
    if not stepped:
        return None
    QCoreApplication.processEvents()
    return panel.grab()


def _model_to_show(window: MainWindow) -> str:
    """``order_summary:1`` if it has run or nothing has, else the first read model that
    has run (another tool's store, with read models of its own plugins)."""
    statuses = window.workspace.projections.statuses()
    ran = [status.reference for status in statuses if status.checkpoint > 0]
    return _SHOWN_MODEL if _SHOWN_MODEL in ran or not ran else ran[0]


def _plugins_shot(window: MainWindow) -> QPixmap:
    """The plugins panel, the shipped orders plugin selected."""
    dock = window.plugins_dock
    dock.show()
    dock.setFloating(True)
    dock.resize(1000, 560)
    view = window.plugins_panel.view
    if view.model().rowCount() > 0:
        view.setCurrentIndex(view.model().index(0, 0))
    QCoreApplication.processEvents()
    return window.plugins_panel.grab()


def _projections_shot(window: MainWindow, failures: list[str]) -> QPixmap | None:
    """The projections panel, ``order_summary:2`` selected with its runs charted, and the
    relays below (on a store no relay ran on, the line saying how to start one)."""
    dock = window.projections_dock
    panel = window.projections_panel
    awaited = {"the projections": (panel.statuses_shown, panel.load_failed)}
    if panel.relays is not None:
        awaited["the relays"] = (panel.relays.relays_shown, panel.relays.load_failed)
    shown = _wait_for(awaited, failures, dock.show)
    if not shown:
        return None
    dock.setFloating(True)
    dock.resize(*_PANEL_SHOT_SIZE)
    if panel.model.row_of(_OTHER_MODEL) is None:
        failures.append(f"projections: no {_OTHER_MODEL} loaded")
        return None
    if panel.selected_reference != _OTHER_MODEL and not _wait_for(
        {"the projection's runs": (panel.history_shown, panel.load_failed)},
        failures,
        lambda: panel.select(_OTHER_MODEL),
    ):
        return None
    QCoreApplication.processEvents()
    return panel.grab()


#: What the commands screenshot types into the PlaceOrder form before its dry run.
_SHOWN_ORDER: Final = {
    "order_id": "90001",
    "customer_id": "C0042",
    "items": (
        '[{"sku": "MUG-CLASSIC", "quantity": 2, "unit_price_cents": 1299},\n'
        ' {"sku": "FRENCH-PRESS", "quantity": 1, "unit_price_cents": 3490}]'
    ),
}


def _commands_shot(window: MainWindow, failures: list[str]) -> QPixmap | None:
    """The commands panel: the PlaceOrder form filled in, after a dry run."""
    panel = window.commands_panel
    dock = window.commands_dock
    dock.show()
    dock.setFloating(True)
    dock.resize(*_PANEL_SHOT_SIZE)
    if not panel.select_command("PlaceOrder") or panel.form is None:
        failures.append("the commands panel: no PlaceOrder command (orders plugin not loaded)")
        return None
    form = panel.form
    for name, text in _SHOWN_ORDER.items():
        widget = form.editor(name).widget
        if isinstance(widget, QPlainTextEdit):
            widget.setPlainText(text)
        elif isinstance(widget, QLineEdit):
            widget.setText(text)
    panel.key_edit.setText("place-90001")
    if not _wait_for(
        {"the dry run": (panel.dry_run_shown, panel.run_failed)},
        failures,
        panel.dry_run_button.click,
    ):
        return None
    QCoreApplication.processEvents()
    return panel.grab()


def _point_before_a_change(events: EventQueries) -> int:
    """A position whose next event changes an order among the first documents shown
    (so the step's highlighted row is in view), a sixth of the way into the log or later."""
    head = events.head_position()
    kinds = ("OrderPaid", "OrderShipped", "OrderDelivered")
    changes = events.read(EventFilter(types=kinds, from_position=max(1, head // 6)), limit=2_000)
    for event in changes:
        if str(event.data.get("order_id", "99999")) <= "00150":
            return event.position - 1
    return head // 2


def _compare_shot(window: MainWindow, failures: list[str]) -> QPixmap | None:
    """The compare panel: ``order_summary:1`` against ``:2``, a changed document open."""
    panel = window.compare
    dock = window.compare_dock
    dock.show()
    dock.setFloating(True)
    dock.resize(*_PANEL_SHOT_SIZE)
    panel.set_references(_SHOWN_MODEL, _OTHER_MODEL)
    if not _wait_for(
        {"the comparison": (panel.compared, panel.compare_failed)}, failures, panel.compare
    ):
        return None
    view = panel.entries_view
    if view.model().rowCount() > 0:
        view.setCurrentIndex(view.model().index(0, 0))
    QCoreApplication.processEvents()
    return panel.grab()


def _wait_for(
    signals: dict[str, tuple[SignalInstance, SignalInstance | None]],
    failures: list[str],
    start: Callable[[], object] | None = None,
) -> bool:
    """Run an event loop until every named signal has fired (once), one failed, or a timeout.

    Args:
        signals: per thing awaited, the signal saying it arrived and one saying it failed.
        failures: where a failure's description is added.
        start: called once the connections are made (so nothing fires unheard).

    Returns:
        Whether everything arrived.
    """
    loop = QEventLoop()
    waiting = set(signals)

    def arrived(what: str) -> None:
        waiting.discard(what)
        if not waiting:
            loop.exit(EXIT_OK)

    def failed(what: str, message: object) -> None:
        failures.append(f"{what}: {message}")
        loop.exit(EXIT_FAILED)

    for what, (done, failure) in signals.items():
        done.connect(lambda *_args, what=what: arrived(what))
        if failure is not None:
            failure.connect(lambda *args, what=what: failed(what, args[-1]))
    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(SCREENSHOT_TIMEOUT_MS)
    timer.timeout.connect(lambda: failed(", ".join(sorted(waiting)), "timed out"))
    if start is not None:
        start()  # may make everything arrive at once: exit() before exec() is lost
    code = EXIT_OK if not waiting else EXIT_FAILED if failures else None
    if code is None:
        timer.start()
        code = loop.exec()
        timer.stop()
    for done, failure in signals.values():
        for signal in (done, failure):
            if signal is None:
                continue
            try:
                signal.disconnect()
            except RuntimeError:
                pass  # its sender (a finished task) is already deleted
    return code == EXIT_OK


def _position_to_inspect(events: EventQueries) -> int:
    """An event that shows the inspector off: an OrderPlaced stored in schema 1, else the last."""
    placed = events.read(EventFilter(types=("OrderPlaced",)), limit=2_000)
    for event in placed:
        if event.metadata.get("schema_version") == 1 and "causation_id" not in event.metadata:
            return event.position
    return events.head_position()
