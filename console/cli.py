"""The ``eventscope`` command (DESIGN §6); Qt is imported only when the GUI is asked for."""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import orjson

from console.cli_output import json_line, run_line, write_lines
from core.commands.definition import Rejected
from core.errors import (
    Cancelled,
    EventscopeError,
    ImportFailed,
    StoreUnusable,
    WrongExpectedVersion,
    last_line,
)
from core.events import ExpectedVersion, parse_time
from core.jobs import Job, ProgressMeter
from core.paths import user_data_folder
from core.projections.runner import ProjectionInactive, RunResult
from core.rebuilds import CANCELLED, FAILED, INACTIVE, LEASED, default_jobs, rebuild_in_processes
from core.registry import Registry
from core.services.projections import ProjectionLeased
from core.sources import is_foreign, open_source
from core.store import EventFilter, SqlEventStore
from core.store.validation import decode_json
from core.timetravel.diff import collect_diff, summarize_diff
from core.timetravel.reference import ReadModelRef
from core.workspace import Workspace

__all__ = ["EXIT_CHECK_FAILED", "default_store_location", "main"]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_REJECTED = 4
EXIT_STORE_UNUSABLE = 5
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


#: ``eventscope projections ACTION``; those after "reset" need a projection named.
PROJECTION_ACTIONS = (
    "list",
    "run",
    "rebuild",
    "runs",
    "reset",
    "pause",
    "resume",
    "retry",
    "skip",
    "retire",
    "retain",
)


class UsageError(Exception):
    """A bad argument value that argparse cannot see (bad JSON, bad time)."""


def default_store_location() -> str:
    """``$EVENTSCOPE_STORE``, else ``store.db`` in the user data folder."""
    configured = os.environ.get("EVENTSCOPE_STORE")
    if configured:
        return configured
    return str(user_data_folder() / "store.db")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventscope",
        description="An operations console for event-sourced systems.",
    )
    parser.add_argument(
        "--store",
        help="a SQLite file path or a SQLAlchemy URL (default: $EVENTSCOPE_STORE, "
        "else a file in the user data folder)",
    )
    parser.add_argument(
        "--plugins",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of plugin files (repeatable)",
    )
    parser.add_argument(
        "--models",
        metavar="STORE",
        help="where the read models of another tool's store live (an Eventscope store; "
        "default: a file in the user data folder named after the source)",
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = commands.add_parser("gui", help="open the console (the default)")
    gui.add_argument("--demo", action="store_true", help="seed an empty store with a demo")
    gui.add_argument("--writable", action="store_true", help="open the store writable")
    gui.add_argument("--screenshot", metavar="DIR", help="save a PNG per panel and exit")

    append = commands.add_parser("append", help="append one event")
    append.add_argument("stream")
    append.add_argument("type")
    append.add_argument("--data", default="{}", help="a JSON object")
    append.add_argument("--metadata", default="{}", help="a JSON object")
    append.add_argument(
        "--expected-version",
        default="any",
        help="any, no_stream, stream_exists or the version of the stream's last event",
    )
    append.add_argument("--event-id", help="a UUID, to make a retry idempotent")

    read = commands.add_parser("read", help="read events as JSON lines")
    _add_read_filters(read)
    export = commands.add_parser("export", help="export events as JSON lines")
    _add_read_filters(export)

    streams = commands.add_parser("streams", help="list streams as JSON lines")
    streams.add_argument("--prefix")
    streams.add_argument("--category")
    streams.add_argument("--limit", type=_positive_int)

    importer = commands.add_parser("import", help="append JSON lines, all or nothing")
    importer.add_argument("file", help="a JSON-lines file, or - for standard input")

    import_from = commands.add_parser(
        "import-from",
        help="copy another tool's store (eventsourcing+…, messagedb+… URL) into --store",
    )
    import_from.add_argument("source", help="the source's URL, e.g. eventsourcing+sqlite:///app.db")

    commands.add_parser("check", help="check the store's integrity")

    commands.add_parser("index", help="bring the search index up to the head")

    commands.add_parser(
        "migrate",
        help="upgrade the store's schema (a shared PostgreSQL store is only upgraded so)",
    )

    commands.add_parser("plugins", help="list plugins, their origin, contributions and status")

    run = commands.add_parser("command", help="run a plugin command")
    run.add_argument("name")
    run.add_argument("--data", default="{}", help="a JSON object")
    run.add_argument("--dry-run", action="store_true", help="decide, but append nothing")
    run.add_argument("--idempotency-key", metavar="K", help="a retry with K appends once")
    run.add_argument("--correlation-id", metavar="ID")
    run.add_argument("--causation-id", metavar="ID")

    demo = commands.add_parser("demo", help="write a deterministic demo history")
    demo.add_argument("--orders", type=_positive_int, default=1000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--name", default="orders", help="which plugin's demo (default orders)")

    projections = commands.add_parser(
        "projections",
        help="projections: list, run, rebuild, reset, pause, resume, retry, skip, retire, "
        "retain, runs [NAME[:VERSION]]",
    )
    projections.add_argument("action", choices=PROJECTION_ACTIONS)
    projections.add_argument(
        "refs",
        nargs="*",
        metavar="REF",
        help="NAME[:VERSION] (run and rebuild take several; default: every one)",
    )
    projections.add_argument(
        "--all", action="store_true", help="run/rebuild: every projection version"
    )
    projections.add_argument(
        "--jobs",
        type=_positive_int,
        help="rebuild: versions rebuilt at once, a process each (default: the cores, at "
        "most one per version)",
    )
    projections.add_argument(
        "--since", metavar="POINT", help="retain: keep history from this position or time on"
    )
    projections.add_argument("--limit", type=_positive_int, default=100, help="runs: how many")
    projections.add_argument(
        "--progress", action="store_true", help="run/rebuild: report progress on stderr"
    )
    projections.add_argument(
        "--batch-size", type=_positive_int, help="run/rebuild: positions per transaction"
    )

    worker = commands.add_parser(
        "worker", help="keep projections current until SIGTERM/SIGINT (headless)"
    )
    worker.add_argument("refs", nargs="*", metavar="REF", help="NAME[:VERSION] (default: all)")
    worker.add_argument("--name", help="this worker's name in leases and run history")
    worker.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="how long a worker that died keeps its projections (default %(default)s)",
    )
    worker.add_argument("--threads", type=_positive_int, default=4, help="projections at once")
    worker.add_argument(
        "--batch-size", type=_positive_int, default=5_000, help="positions per transaction"
    )
    worker.add_argument("--metrics-port", type=int, metavar="P", help="serve Prometheus metrics")

    relay = commands.add_parser(
        "relay", help="publish stored events to a broker until SIGTERM/SIGINT (nats://, amqp://)"
    )
    relay.add_argument("url", help="nats://host:port or amqp://user:pass@host:port/vhost")
    relay.add_argument("--name", default="default", help="the relay's name: its checkpoint")
    relay.add_argument(
        "--from-position", type=_positive_int, metavar="P", help="a new relay starts here"
    )
    relay.add_argument(
        "--subject",
        default="eventscope.{category}.{type}",
        metavar="TEMPLATE",
        help="NATS subject ({category}, {type}, {stream_id}; default %(default)s)",
    )
    relay.add_argument("--jetstream-stream", default="EVENTSCOPE", metavar="NAME")
    relay.add_argument("--exchange", default="eventscope", metavar="NAME", help="AMQP exchange")
    relay.add_argument("--batch-size", type=_positive_int, default=1_000, help="events a batch")
    relay.add_argument("--lease-seconds", type=float, default=30.0)
    relay.add_argument("--metrics-port", type=int, metavar="P", help="serve Prometheus metrics")
    relay.add_argument(
        "--skip-fault",
        action="store_true",
        help="go on past the event a faulted relay stopped at (it is never published)",
    )
    relay.add_argument(
        "--status-seconds", type=float, default=5.0, help="how often a status line is printed"
    )

    commands.add_parser("relays", help="every relay of the store: checkpoint, lag, worker")

    replay = commands.add_parser("replay", help="a read model at a point: NAME[:VERSION][@POINT]")
    replay.add_argument("ref")
    replay.add_argument("--key", help="only this document")
    replay.add_argument("--limit", type=_positive_int, help="only the first N documents")

    lineage = commands.add_parser(
        "lineage", help="every event that changed one document, up to REF's point"
    )
    lineage.add_argument("ref", metavar="REF", help="NAME[:VERSION][@POINT]")
    lineage.add_argument("key", help="the document's key")

    stream = commands.add_parser(
        "stream-state", help="a stream folded by its plugin's evolver, at a version"
    )
    stream.add_argument("stream")
    stream.add_argument("--version", type=_positive_int, help="fold up to this version")

    step = commands.add_parser("step", help="what the event at REF's point changed")
    step.add_argument("ref", metavar="REF", help="NAME[:VERSION]@POSITION (or a time)")

    what_if = commands.add_parser(
        "what-if",
        help="replay a projection into a scratch database and diff it against a live one",
    )
    what_if.add_argument("candidate", metavar="REF", help="NAME[:VERSION][@POINT] to replay")
    what_if.add_argument("--against", required=True, metavar="REF", help="the live read model")
    what_if.add_argument(
        "--plugin-file", metavar="FILE", help="a plugin file not installed yet that defines REF"
    )
    what_if.add_argument("--summary", action="store_true", help="counts only")

    diff = commands.add_parser(
        "diff", help="compare two read models: NAME[:VERSION][@POINT] NAME[:VERSION][@POINT]"
    )
    diff.add_argument("before", metavar="REF_A")
    diff.add_argument("after", metavar="REF_B")
    diff.add_argument(
        "--summary", action="store_true", help="counts by kind and by field path only"
    )
    return parser


def _add_read_filters(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stream")
    where.add_argument("--category")
    parser.add_argument("--type", action="append", default=[], dest="types", metavar="T")
    parser.add_argument("--from-position", type=_positive_int, metavar="P")
    parser.add_argument("--until", metavar="T", help="an ISO-8601 time with a zone")
    parser.add_argument("--text", metavar="WORDS", help="payload search: words (w* for a prefix)")
    parser.add_argument("--correlation-id", metavar="ID")
    parser.add_argument("--limit", type=_positive_int, metavar="N")
    parser.add_argument("--backwards", action="store_true")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _json_object(option: str, text: str) -> dict[str, Any]:
    try:
        value = decode_json(text)
    except ValueError as error:
        raise UsageError(f"{option}: invalid JSON ({error})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option}: must be a JSON object")
    return value


def _filter(args: argparse.Namespace) -> EventFilter:
    until = None
    if args.until is not None:
        try:
            until = parse_time(args.until)
        except ValueError as error:
            raise UsageError(f"--until: {error}") from None
    return EventFilter(
        stream_id=args.stream,
        category=args.category,
        types=tuple(args.types),
        from_position=args.from_position,
        until=until,
        text=args.text,
        correlation_id=args.correlation_id,
    )


def _input_lines(name: str) -> Iterator[bytes]:
    if name == "-":
        yield from sys.stdin.buffer
        return
    try:
        handle = open(name, "rb")
    except OSError as error:
        raise UsageError(f"{name}: {error.strerror}") from None
    with handle:
        yield from handle


def _ensure_default_folder(args: argparse.Namespace) -> None:
    """Create the user data folder when a write goes to the default store."""
    if not args.store and not os.environ.get("EVENTSCOPE_STORE"):
        Path(default_store_location()).parent.mkdir(parents=True, exist_ok=True)


def _open(args: argparse.Namespace, *, read_only: bool, plugins: bool = False) -> Workspace:
    """The workspace of ``--store``; plugins are loaded only for the commands that use them."""
    if not read_only:
        _ensure_default_folder(args)
    return Workspace.open(
        args.store or default_store_location(),
        read_only=read_only,
        plugin_dirs=args.plugins,
        load_plugins=plugins,
        models=args.models,
    )


def _run(args: argparse.Namespace) -> int:
    command = args.command or "gui"
    if command == "gui":
        from console.app import run_gui  # Qt is imported here and only here

        if getattr(args, "demo", False) or getattr(args, "writable", False):
            _ensure_default_folder(args)
        return run_gui(
            args.store or default_store_location(),
            demo=getattr(args, "demo", False),
            writable=getattr(args, "writable", False),
            screenshot_dir=getattr(args, "screenshot", None),
            plugin_dirs=args.plugins,
            models=args.models,
        )
    if command == "append":
        data = _json_object("--data", args.data)
        metadata = _json_object("--metadata", args.metadata)
        with _open(args, read_only=False) as workspace:
            try:
                expected = ExpectedVersion.parse(args.expected_version)
            except ValueError as error:
                raise UsageError(f"--expected-version: {error}") from None
            recorded = workspace.writing.append(
                args.stream,
                args.type,
                data,
                metadata,
                expected_version=expected,
                event_id=args.event_id,
            )
        write_lines([json_line(recorded.to_dict())])
        return EXIT_OK
    if command in ("read", "export"):
        where = _filter(args)
        with _open(args, read_only=True) as workspace:
            write_lines(
                workspace.events.export_lines(where, backwards=args.backwards, limit=args.limit)
            )
        return EXIT_OK
    if command == "streams":
        with _open(args, read_only=True) as workspace:
            infos = workspace.events.streams(
                prefix=args.prefix, category=args.category, limit=args.limit
            )
            write_lines(json_line(info.to_dict()) for info in infos)
        return EXIT_OK
    if command == "import":
        lines = _input_lines(args.file)
        with _open(args, read_only=False) as workspace:
            result = workspace.writing.import_lines(lines)
        write_lines([json_line(result.to_dict())])
        return EXIT_OK
    if command == "import-from":
        if not is_foreign(args.source):
            raise UsageError(
                f"{args.source!r} is not another tool's store URL (eventsourcing+sqlite:///…, "
                "eventsourcing+postgresql://…, messagedb+postgresql://…); for JSON lines "
                "use `eventscope import`"
            )
        with open_source(args.source) as source, _open(args, read_only=False) as workspace:
            result = workspace.writing.import_from(source)
        write_lines([json_line(result.to_dict())])
        return EXIT_OK
    if command == "index":
        with _open(args, read_only=False) as workspace:
            indexed = workspace.writing.update_index()
            summary = {
                "indexed": indexed,
                "indexed_position": workspace.events.indexed_position(),
                "head": workspace.events.head_position(),
            }
        write_lines([json_line(summary)])
        return EXIT_OK
    if command == "migrate":
        _ensure_default_folder(args)
        migration = SqlEventStore.migrate(args.store or default_store_location())
        write_lines([json_line(migration.to_dict())])
        return EXIT_OK
    if command == "check":
        with _open(args, read_only=True) as workspace:
            report = workspace.events.check()
        write_lines([json_line(report.to_dict())])
        return EXIT_OK if report.ok else EXIT_CHECK_FAILED
    if command == "plugins":
        registry = Registry.discover(args.plugins)  # listing plugins needs no store
        write_lines(json_line(info.describe()) for info in registry.plugins)
        return EXIT_OK
    if command == "command":
        data = _json_object("--data", args.data)
        with _open(args, read_only=args.dry_run, plugins=True) as workspace:
            result = workspace.commands.execute(
                args.name,
                data,
                idempotency_key=args.idempotency_key,
                dry_run=args.dry_run,
                correlation_id=args.correlation_id,
                causation_id=args.causation_id,
            )
        if result.dry_run:
            write_lines(
                json_line(
                    {
                        "stream_id": result.stream_id,
                        "expected_version": str(result.expected_version),
                        "type": event.type,
                        "data": event.data,
                        "metadata": event.metadata,
                        "event_id": event.event_id,
                        "dry_run": True,
                    }
                )
                for event in result.proposed
            )
        else:
            write_lines(json_line(event.to_dict()) for event in result.events)
        return EXIT_OK
    if command == "demo":
        with _open(args, read_only=False, plugins=True) as workspace:
            written = workspace.writing.write_demo(args.name, orders=args.orders, seed=args.seed)
            summary = {
                "demo": args.name,
                "orders": args.orders,
                "seed": args.seed,
                **written.to_dict(),
                "head": workspace.events.head_position(),
            }
        write_lines([json_line(summary)])
        return EXIT_OK
    if command == "projections":
        return _projections(args)
    if command in {"worker", "relay"}:
        from console import daemons

        with _open(args, read_only=False, plugins=command == "worker") as workspace:
            run = daemons.worker if command == "worker" else daemons.relay
            return run(args, workspace)
    if command == "relays":
        from core.relay.relay import relay_statuses

        with _open(args, read_only=True) as workspace:
            lines = [json_line(status.to_dict()) for status in relay_statuses(workspace)]
        write_lines(lines)
        return EXIT_OK
    if command == "replay":
        return _replay(args)
    if command == "lineage":
        with _open(args, read_only=True, plugins=True) as workspace:
            changes = workspace.timetravel.lineage(args.ref, args.key)
        write_lines(json_line(change.to_dict()) for change in changes)
        return EXIT_OK
    if command == "stream-state":
        with _open(args, read_only=True, plugins=True) as workspace:
            folded = workspace.timetravel.stream_state(args.stream, args.version)
        write_lines([json_line(folded.to_dict())])
        return EXIT_OK
    if command == "step":
        with _open(args, read_only=True, plugins=True) as workspace:
            effect = workspace.timetravel.step(args.ref)
        write_lines([json_line(effect.to_dict())])
        return EXIT_OK
    if command == "what-if":
        return _what_if(args)
    if command == "diff":
        with _open(args, read_only=True, plugins=True) as workspace:
            changes = workspace.timetravel.diff(args.before, args.after)
            result: Any = summarize_diff(changes).to_dict() if args.summary else None
            if result is None:
                result = collect_diff(changes)
        write_lines([orjson.dumps(result, option=orjson.OPT_SORT_KEYS) + b"\n"])
        return EXIT_OK
    raise UsageError(f"unknown command {command!r}")  # pragma: no cover - argparse stops it


def _replay(args: argparse.Namespace) -> int:
    """``replay REF [--key K] [--limit N]``: one JSON object; from history, only the
    documents asked for are read."""
    with _open(args, read_only=True, plugins=True) as workspace:
        at = workspace.timetravel.locate(args.ref)
        if at.from_history and args.key is not None:
            found = workspace.timetravel.document(at, args.key)
            documents = {} if found is None else {args.key: found}
        elif at.from_history:
            documents = dict(itertools.islice(workspace.timetravel.iter_documents(at), args.limit))
        else:
            replayed = workspace.timetravel.replay(at.reference)
            for failure in replayed.upcast_failures:
                print(f"eventscope: warning: {failure}", file=sys.stderr)
            documents = replayed.documents
            if args.key is not None:
                documents = {args.key: documents[args.key]} if args.key in documents else {}
            documents = dict(itertools.islice(documents.items(), args.limit))
    write_lines([orjson.dumps(documents, option=orjson.OPT_SORT_KEYS) + b"\n"])
    return EXIT_OK


def _what_if(args: argparse.Namespace) -> int:
    """``what-if REF --against REF [--plugin-file FILE]``: nothing in the store changes."""
    with tempfile.TemporaryDirectory(prefix="eventscope-plugin-") as folder:
        if args.plugin_file is not None:
            source = Path(args.plugin_file)
            if not source.is_file():
                raise UsageError(f"--plugin-file: {source} is not a file")
            shutil.copyfile(source, Path(folder) / source.name)
            args.plugins = [*args.plugins, folder]
        with _open(args, read_only=True, plugins=True) as workspace:
            for plugin in workspace.plugins.catalog():
                if plugin.location.startswith(folder) and plugin.error is not None:
                    raise UsageError(f"--plugin-file: {last_line(plugin.error)}")
            result = workspace.timetravel.what_if(
                args.candidate, args.against, summary=args.summary
            )
    write_lines([orjson.dumps(result.to_dict(), option=orjson.OPT_SORT_KEYS) + b"\n"])
    return EXIT_OK


def _projections(args: argparse.Namespace) -> int:
    """``projections ACTION [REF]...``: one JSON line per projection version."""
    action = args.action
    several = action in ("run", "rebuild")
    if len(args.refs) > 1 and not several:
        raise UsageError(f"projections {action}: one projection at a time")
    if args.all and (not several or args.refs):
        raise UsageError(f"projections {action}: --all is for run and rebuild, without REF")
    args.ref = args.refs[0] if len(args.refs) == 1 else None
    if action == "list":
        with _open(args, read_only=True, plugins=True) as workspace:
            statuses = workspace.projections.statuses()
        if args.ref is not None:
            statuses = [s for s in statuses if _matches(args.ref, s.name, s.version)]
        write_lines(json_line(status.to_dict()) for status in statuses)
        return EXIT_OK
    if action == "runs":
        with _open(args, read_only=True, plugins=True) as workspace:
            runs = workspace.projections.runs(args.ref, limit=args.limit)
        write_lines(json_line(run.to_dict()) for run in runs)
        return EXIT_OK
    if args.ref is None and action not in ("run", "rebuild"):
        raise UsageError(f"projections {action}: name the projection (NAME[:VERSION])")
    if action == "retain" and args.since is None:
        raise UsageError("projections retain: say --since POINT (a position or a time)")
    with _open(args, read_only=False, plugins=True) as workspace:
        if args.refs:
            found = (workspace.projections.projection_of(ref) for ref in args.refs)
            references = list(dict.fromkeys(p.reference() for p in found))
        else:
            references = workspace.projections.references()
        if action == "rebuild" and len(references) > 1:
            jobs = args.jobs or default_jobs(len(references))
            if jobs > 1:
                workspace.close()  # each process opens the store itself
                return _rebuild_in_processes(args, references, jobs)
        began = time.perf_counter()
        lines, faulted, scanned = [], False, 0
        for reference in references:
            if action in ("run", "rebuild"):
                try:
                    result = _run_with_progress(
                        workspace, reference, args, rebuild=action == "rebuild"
                    )
                except ProjectionInactive as inactive:
                    if args.ref is not None:
                        raise
                    lines.append({"projection": reference, "state": inactive.status.state})
                    continue
                except ProjectionLeased as leased:
                    if args.ref is not None:
                        raise
                    lines.append({"projection": reference, "leased": str(leased)})
                    continue
                lines.append(run_line(result))
                scanned += result.scanned
                faulted = faulted or result.fault is not None
            elif action == "retain":
                since = workspace.timetravel.resolve_position(
                    ReadModelRef.parse(f"{reference}@{args.since}")
                )
                deleted = workspace.projections.retain(reference, since)
                lines.append({"projection": reference, "history_from": since, "deleted": deleted})
            elif action == "skip":
                skipped = workspace.projections.skip(reference)
                lines.append(
                    {
                        "projection": reference,
                        "skipped_position": skipped.fault_position,
                        "skipped_event_id": skipped.fault_event_id,
                    }
                )
            else:
                _change_projection(workspace, action, reference)
                lines.append(workspace.projections.status(reference).to_dict())
    write_lines(json_line(line) for line in lines)
    if action == "rebuild" and len(references) > 1:
        _print_rebuild_total(len(references), 1, scanned, time.perf_counter() - began)
    return EXIT_ERROR if faulted else EXIT_OK


def _rebuild_in_processes(args: argparse.Namespace, references: list[str], jobs: int) -> int:
    """``projections rebuild`` of several versions at once, a process each (``--jobs``):
    the same JSON lines as one at a time; a version that faulted or whose process died
    is named on stderr (exit code 1), and Ctrl-C or SIGTERM stops them all (130)."""
    stop = threading.Event()
    meters = {reference: ProgressMeter() for reference in references}
    shown = dict.fromkeys(references, 0.0)

    def progress(reference: str, done: int, total: int) -> None:
        now = time.monotonic()
        if args.progress and (now - shown[reference] >= 0.5 or done == total):
            shown[reference] = now
            described = meters[reference].measure(done, total).describe()
            print(f"{reference}: {described}", file=sys.stderr, flush=True)

    handlers = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        report = rebuild_in_processes(
            args.store or default_store_location(),
            references,
            plugin_dirs=args.plugins,
            models=args.models,
            jobs=jobs,
            batch_size=args.batch_size,
            on_progress=progress,
            stop=stop,
        )
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)
    lines: list[dict[str, Any]] = []
    for version in report.versions:
        reference, detail = version.reference, version.detail
        if version.result is not None:
            lines.append(run_line(version.result))
            fault = version.result.fault
            if fault is not None:
                print(
                    f"eventscope: {reference} faulted at position {fault.position}: "
                    f"{last_line(fault.error)}",
                    file=sys.stderr,
                )
        elif version.outcome == INACTIVE:
            lines.append({"projection": reference, "state": detail})
        elif version.outcome == LEASED:
            lines.append({"projection": reference, "leased": detail})
        elif version.outcome == FAILED:
            lines.append({"projection": reference, "error": detail})
            print(f"eventscope: {reference}: {detail}", file=sys.stderr)
        elif version.outcome == CANCELLED:
            print(f"eventscope: {reference}: {detail}", file=sys.stderr)
        else:
            print(f"eventscope: {reference}: not started", file=sys.stderr)
    write_lines(json_line(line) for line in lines)
    _print_rebuild_total(len(references), report.processes, report.positions, report.seconds)
    if report.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_ERROR if any(version.failed for version in report.versions) else EXIT_OK


def _print_rebuild_total(versions: int, processes: int, positions: int, seconds: float) -> None:
    """The closing line of a rebuild of several versions: their positions over the time."""
    rate = positions / seconds if seconds > 0 else 0.0
    print(
        f"eventscope: rebuilt {versions} versions in {seconds:,.1f} s with {processes} "
        f"process{'es' if processes > 1 else ''}: {positions:,} positions, {rate:,.0f} "
        "positions/s in all",
        file=sys.stderr,
    )


def _change_projection(workspace: Workspace, action: str, reference: str) -> None:
    projections = workspace.projections
    operations = {
        "reset": projections.reset,
        "pause": projections.pause,
        "resume": projections.resume,
        "retry": projections.retry,
        "retire": projections.retire,
    }
    operations[action](reference)


def _run_with_progress(
    workspace: Workspace, reference: str, args: argparse.Namespace, *, rebuild: bool
) -> RunResult:
    """Run (or rebuild) a projection under a lease, as a worker does: a worker running
    it meanwhile is refused, and it never runs it at the same time. Ctrl-C stops it
    between batches (what was committed stays)."""
    show = args.progress
    meter = ProgressMeter()
    shown = [0.0]

    def progress(done: int, total: int) -> None:
        if not show:
            return
        now = time.monotonic()
        if now - shown[0] >= 0.5 or done == total:
            shown[0] = now
            print(f"{reference}: {meter.measure(done, total).describe()}", file=sys.stderr)

    job = Job(progress)
    previous = signal.signal(signal.SIGINT, lambda *_: job.cancel())
    try:
        with job.running():
            return workspace.projections.run_leased(
                reference, rebuild=rebuild, batch_size=args.batch_size
            )
    except Cancelled:
        checkpoint = workspace.projections.status(reference).checkpoint
        raise Cancelled(
            f"{reference}: cancelled at checkpoint {checkpoint}; the batches done are kept"
        ) from None
    finally:
        signal.signal(signal.SIGINT, previous)


def _name_version(reference: str) -> tuple[str, int | None]:
    ref = ReadModelRef.parse(reference)
    return ref.name, ref.version


def _matches(reference: str, name: str, version: int) -> bool:
    wanted_name, wanted_version = _name_version(reference)
    return name == wanted_name and wanted_version in (None, version)


def _exit_code(error: BaseException) -> int:
    if isinstance(error, Cancelled):
        return EXIT_INTERRUPTED
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, Rejected):
        return EXIT_REJECTED
    if isinstance(error, WrongExpectedVersion):
        return EXIT_CONFLICT
    if isinstance(error, ImportFailed) and isinstance(error.cause, WrongExpectedVersion):
        return EXIT_CONFLICT
    if isinstance(error, StoreUnusable):
        return EXIT_STORE_UNUSABLE
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line and exit with its code (DESIGN §6)."""
    args = _parser().parse_args(argv)
    try:
        code = _run(args)
    except (EventscopeError, UsageError) as error:
        if args.debug:
            traceback.print_exc()
        print(f"eventscope: {error}", file=sys.stderr)
        code = _exit_code(error)
    except BrokenPipeError:
        # The reader went away (``eventscope read | head``): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    main()
