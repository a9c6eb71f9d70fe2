"""Injection (issue 15, point 6): Hypothesis-generated hostile strings in every filter
and search field of the query service and the CLI, on SQLite and PostgreSQL.

Every value must be bound, never spliced into SQL: a canary table beside the store's
must be untouched, the events unchanged, and every answer exactly what the Python
reference filter (``EventFilter.matches``) gives over the same events, so a ``%``, a
``_``, a quote or a search operator matches itself and nothing more. The only error
allowed is the one-line refusal of text that is not UTF-8.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from core.errors import InvalidFilter
from core.events import NewEvent, RecordedEvent
from core.store import EventFilter, SqlEventStore
from core.workspace import Workspace

TITLE: Final = "Injection"

#: Strings that break naive SQL, LIKE, FTS5 and tsquery handling, mixed into the examples.
NASTY: Final = (
    "'",
    "''",
    '"',
    "\\",
    "%",
    "_",
    "%_%",
    "*",
    "' OR '1'='1",
    "'; DROP TABLE canary; --",
    '"; DROP TABLE canary; --',
    "1; DELETE FROM events",
    "x' UNION SELECT secret FROM canary --",
    "NEAR(a b)",
    "a OR b",
    "a AND NOT b",
    "^a",
    "data:x",
    "a & b | !c",
    "a:*",
    "$.x",
    "$[0]",
    "o'brien",
    "100%",
    "a_b",
    "\u00a0",
    "Ω",
    "\U0010ffff",
)
#: Stream ids the store holds: ones a naive LIKE or quoting would confuse.
STREAMS: Final = (
    "order-1",
    "order-10",
    "o'brien-1",
    "100%-1",
    "a_b-1",
    "aXb-1",
    "Ω-1",
    'quote"d-1',
    "back\\slash-1",
)
_TEXT: Final = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=24),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.sampled_from(STREAMS)),
)


@dataclass(slots=True)
class Tally:
    """How many generated values each field saw, and what went wrong."""

    examples: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, name: str) -> None:
        self.examples[name] = self.examples.get(name, 0) + 1


def _seed(store: SqlEventStore) -> list[RecordedEvent]:
    for index, stream in enumerate(STREAMS):
        data = {"note": f"{stream} {NASTY[index % len(NASTY)]}", "n": index, "sku": "SKU-42"}
        metadata = {"correlation_id": NASTY[index % len(NASTY)]}
        store.append_to_stream(stream, [NewEvent(f"Type{index % 3}", data, metadata)])
    store.update_index(batch=1_000)
    return list(store.read_all())


@contextmanager
def _stores(workdir: Path, postgres_url: str | None) -> Iterator[list[tuple[str, str]]]:
    """(backend, location) of a SQLite store and, when a server is given, a PostgreSQL
    one, each with a canary table beside its events."""
    found = [("sqlite", str(workdir / "injection.db"))]
    schema = f"injection_{os.getpid()}"
    admin = None
    if postgres_url:
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in postgres_url else "?"
        found.append(("postgresql", f"{postgres_url}{separator}options=-csearch_path%3D{schema}"))
    try:
        for _backend, location in found:
            store = SqlEventStore.open(location)
            _seed(store)
            store.close()
            _canary(location, create=True)
        yield found
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()


def _canary(location: str, *, create: bool = False) -> list[tuple[Any, ...]]:
    """The canary table's rows (created first when asked)."""
    if location.startswith("postgresql"):
        engine = create_engine(location, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if create:
                    conn.execute(text("CREATE TABLE canary (secret TEXT)"))
                    conn.execute(text("INSERT INTO canary VALUES ('still here')"))
                return [tuple(row) for row in conn.execute(text("SELECT secret FROM canary"))]
        finally:
            engine.dispose()
    with sqlite3.connect(location) as raw:
        if create:
            raw.execute("CREATE TABLE canary (secret TEXT)")
            raw.execute("INSERT INTO canary VALUES ('still here')")
        rows = [tuple(row) for row in raw.execute("SELECT secret FROM canary")]
    raw.close()
    return rows


def _filters() -> dict[str, Callable[[str], EventFilter]]:
    return {
        "stream_id": lambda value: EventFilter(stream_id=value),
        "category": lambda value: EventFilter(category=value),
        "types": lambda value: EventFilter(types=(value, "Type1")),
        "stream_prefix": lambda value: EventFilter(stream_prefix=value),
        "correlation_id": lambda value: EventFilter(correlation_id=value),
        "text (payload search)": lambda value: EventFilter(text=value),
    }


def _property(examples: int) -> Callable[[Callable[[str], None]], Callable[[], None]]:
    """Run a check over ``examples`` generated strings (the same ones every run)."""

    def decorate(check: Callable[[str], None]) -> Callable[[], None]:
        configured = settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        return configured(given(value=_TEXT)(check))  # type: ignore[no-any-return]

    return decorate


def _one_filter(
    workspace: Workspace,
    events: list[RecordedEvent],
    name: str,
    build: Callable[[str], EventFilter],
    tally: Tally,
) -> Callable[[str], None]:
    def one(value: str) -> None:
        tally.count(name)
        try:
            where = build(value)
        except InvalidFilter:
            if "\x00" not in value:
                tally.failures.append(f"{name}={value!r}: refused")
            return  # a NUL: refused in one line, on every backend alike
        wanted = [e.position for e in events if where.matches(e)]
        got = [e.position for e in workspace.events.read(where)]
        if got != wanted:
            tally.failures.append(f"{name}={value!r}: got {got}, wanted {wanted}")

    return one


def check(workspace: Workspace, events: list[RecordedEvent], examples: int, tally: Tally) -> None:
    """Every filter and stream listing with ``examples`` generated values each."""
    for name, build in _filters().items():
        _property(examples)(_one_filter(workspace, events, name, build, tally))()

    @_property(examples)
    def streams(value: str) -> None:
        tally.count("streams prefix / category / after")
        if "\x00" in value:
            return  # refused, as for the filters
        listed = [info.stream_id for info in workspace.events.streams(prefix=value)]
        wanted = sorted({e.stream_id for e in events if e.stream_id.startswith(value)})
        if listed != wanted:
            tally.failures.append(f"streams prefix={value!r}: got {listed}, wanted {wanted}")
        category = [info.stream_id for info in workspace.events.streams(category=value)]
        if category != sorted({e.stream_id for e in events if e.category == value}):
            tally.failures.append(f"streams category={value!r}: got {category}")
        after = [info.stream_id for info in workspace.events.streams(after=value)]
        if after != sorted({e.stream_id for e in events if e.stream_id > value}):
            tally.failures.append(f"streams after={value!r}: got {after}")
        recent = {info.stream_id for info in workspace.events.recent_streams(prefix=value)}
        if recent != set(wanted):
            tally.failures.append(f"recent_streams prefix={value!r}: got {sorted(recent)}")

    streams()
    try:  # text that is not UTF-8: one clear refusal
        list(workspace.events.read(EventFilter(stream_id="\udcff")))
        tally.failures.append("a filter with a lone surrogate was not refused")
    except InvalidFilter:
        pass


#: The CLI's filter options, and the EventFilter field each one fills.
CLI_OPTIONS: Final = {
    "--stream": "stream_id",
    "--category": "category",
    "--type": "types",
    "--text": "text",
    "--correlation-id": "correlation_id",
}


def check_cli(
    location: str, events: list[RecordedEvent], tally: Tally, values: tuple[str, ...]
) -> None:
    """Every hostile string in every filter option of ``eventscope read`` and ``streams
    --prefix``: the same answer as the reference filter, exit 0, no traceback."""
    from tests.reliability.hostile_input import eventscope_in_process

    for value in values:
        for option, field_name in CLI_OPTIONS.items():
            tally.count("CLI read options")
            code, out, err = eventscope_in_process("--store", location, "read", option, value)
            where = EventFilter(**{field_name: (value,) if field_name == "types" else value})
            wanted = [e.position for e in events if where.matches(e)]
            got = [orjson.loads(line)["position"] for line in out.splitlines() if line]
            if code != 0 or "Traceback" in err or got != wanted:
                tally.failures.append(f"read {option} {value!r}: exit {code}, got {got} {err}")
        tally.count("CLI streams --prefix")
        code, out, err = eventscope_in_process("--store", location, "streams", "--prefix", value)
        listed = [orjson.loads(line)["stream_id"] for line in out.splitlines() if line]
        wanted_streams = sorted({e.stream_id for e in events if e.stream_id.startswith(value)})
        if code != 0 or listed != wanted_streams:
            tally.failures.append(f"streams --prefix {value!r}: exit {code}, got {listed} {err}")


def study(
    workdir: Path, examples: int, postgres_url: str | None, cli_values: tuple[str, ...] = NASTY
) -> list[tuple[str, Tally, bool, bool]]:
    """(backend, tally, canary intact, events unchanged) per backend."""
    results = []
    with _stores(workdir, postgres_url) as stores:
        for backend, location in stores:
            with Workspace.open(location) as workspace:
                events = list(workspace.events.read(EventFilter()))
                tally = Tally()
                check(workspace, events, examples, tally)
            check_cli(location, events, tally, cli_values)
            with Workspace.open(location) as after:
                unchanged = list(after.events.read(EventFilter())) == events
            results.append((backend, tally, _canary(location) == [("still here",)], unchanged))
    return results


def run(full: bool, workdir: Path) -> str:
    examples = 500 if full else 40
    results = study(workdir, examples, os.environ.get("EVENTSCOPE_TEST_PG_URL"))
    fields = list(results[0][1].examples)
    rows = [
        f"| field | {' | '.join(backend for backend, *_ in results)} |",
        f"|---|{'---|' * len(results)}",
    ]
    for name in fields:
        rows.append(f"| {name} | {' | '.join(str(r[1].examples[name]) for r in results)} |")
    summary = []
    for backend, tally, canary, unchanged in results:
        summary.append(
            f"- {backend}: {sum(tally.examples.values()):,} generated values, "
            f"{len(tally.failures)} answers that differ from the reference filter, canary "
            f"{'intact' if canary else '**damaged**'}, events "
            f"{'unchanged' if unchanged else '**changed**'}"
        )
        summary += [f"  - {failure}" for failure in tally.failures[:5]]
    return "\n".join(
        [
            f"Hypothesis draws {examples} strings per field (derandomized: the same every run) "
            "from SQL, LIKE, FTS5 and tsquery metacharacters, injection payloads and arbitrary "
            "Unicode, and puts each in every filter of the query service (`read` with "
            "stream, category, types, stream prefix, correlation id and payload search; "
            "`streams` by prefix, category and after; recent streams), then every fixed "
            "hostile string in each filter option of `eventscope read` and in `eventscope "
            "streams --prefix`. The store holds "
            "streams such as `o'brien-1`, `100%-1` and `a_b-1`; every answer is compared "
            "with the Python reference filter over the same events, and a `canary` table "
            "beside the events must keep its one row.",
            "",
            *summary,
            "",
            "Values per field:",
            "",
            *rows,
            "",
            'Reproduce: `make reliability RELIABILITY_ARGS="--only injection"` (40 per field '
            "in `make test`: tests/reliability/test_injection.py).",
        ]
    )
