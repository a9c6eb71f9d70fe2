"""Hostile payloads and names (issue 15, point 5), through every door that writes: the
CLI's ``append``, the CLI's ``import`` and the Python API (``Workspace.writing``).

Each case must be refused with a one-line error naming what is wrong, leaving the store
exactly as it was (same head, same file hash), or accepted as documented (a payload at
the size limit). Filters given text that is not UTF-8 must be refused in one line too.
The CLI runs in-process through its ``main`` (the code the ``eventscope`` command runs),
so a traceback would show on the captured stderr.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import orjson

from console.cli import main
from core.errors import EventscopeError
from core.store.validation import DEFAULT_MAX_PAYLOAD_BYTES
from core.workspace import Workspace

TITLE: Final = "Hostile payloads and names"


def _deep(levels: int) -> str:
    return '{"a":' + "[" * levels + "]" * levels + "}"


def _sized(total: int) -> str:
    """A data object whose compact JSON is exactly ``total`` bytes."""
    return '{"x":"' + "a" * (total - 8) + '"}'


#: (case, data JSON text or None, stream id, event type, accepted?)
PAYLOADS: Final[list[tuple[str, str, bool]]] = [
    ("NaN", '{"a":NaN}', False),
    ("Infinity", '{"a":Infinity}', False),
    ("-Infinity", '{"a":-Infinity}', False),
    ("a number too big for a float (1e400)", '{"a":1e400}', False),
    ("duplicate keys", '{"a":1,"a":2}', False),
    ("duplicate keys, nested", '{"b":{"x":1,"x":1}}', False),
    ("10,000-deep nesting", _deep(10_000), False),
    ("integer beyond 64 bits", '{"a":123456789012345678901234567890}', False),
    ("integer 2**64 (one over)", '{"a":18446744073709551616}', False),
    ("integer 2**64 - 1 (the largest)", '{"a":18446744073709551615}', True),
    ("lone surrogate escape", '{"a":"\\ud800"}', False),
    ("invalid UTF-8 bytes", '{"a":"\udcff"}', False),  # byte ff, as argv or a file holds it
    ("not an object", "[1,2]", False),
    ("payload at the size limit", _sized(DEFAULT_MAX_PAYLOAD_BYTES), True),
    ("payload one byte over", _sized(DEFAULT_MAX_PAYLOAD_BYTES + 1), False),
]  # fmt: skip

#: (case, stream id, event type): each refused.
NAMES: Final[list[tuple[str, str, str]]] = [
    ("empty stream id", "", "T"),
    ("empty type", "s-1", ""),
    ("NUL in the stream id", "s\x00-1", "T"),
    ("NUL in the type", "s-1", "T\x00"),
    ("control character (ESC) in the stream id", "s\x1b-1", "T"),
    ("newline in the type", "s-1", "T\nU"),
    ("system stream $audit (a forged audit record)", "$audit", "WritableModeEntered"),
    ("another system stream", "$config", "T"),
    ("stream id not in NFC (e + combining acute)", "cafe\u0301-1", "T"),
    ("type not in NFC", "s-1", "Cafe\u0301Opened"),
    ("stream id over 256 characters", "s" * 257, "T"),
]

#: CLI read options given bytes that are not UTF-8 (as the shell passes them).
FILTERS: Final = [
    ["read", "--stream"],
    ["read", "--type"],
    ["read", "--category"],
    ["read", "--text"],
    ["read", "--correlation-id"],
    ["streams", "--prefix"],
    ["export", "--stream"],
]
_NOT_UTF8: Final = b"\xff\xfe".decode("utf-8", "surrogateescape")  # how argv holds them


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one door did with one case."""

    case: str
    door: str
    accepted: bool
    message: str  # the one line shown (empty when accepted)
    traceback: bool
    store_unchanged: bool  # head and file hash as before (for a refusal)

    @property
    def as_documented(self) -> bool:
        return not self.traceback and (self.accepted or self.store_unchanged)


def eventscope_in_process(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the ``eventscope`` command in this process: exit code, stdout, stderr."""
    streams = {
        name: io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
        for name in ("stdout", "stderr")
    }
    given = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8", "surrogatepass")))
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = given, streams["stdout"], streams["stderr"]
    code = 0
    try:
        main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    texts = []
    for stream in streams.values():
        stream.flush()
        texts.append(cast(io.BytesIO, stream.buffer).getvalue().decode("utf-8", "replace"))
    return code, texts[0], texts[1]


def _state(store: Path) -> tuple[int, str]:
    with Workspace.open(str(store)) as probe:
        head = probe.events.head_position()
    return head, hashlib.sha256(store.read_bytes()).hexdigest()


def _try(
    case: str, door: str, store: Path, attempt: Callable[[], tuple[bool, str, bool]]
) -> Outcome:
    before = _state(store)
    accepted, message, traceback = attempt()
    after = _state(store)
    return Outcome(case, door, accepted, message, traceback, before == after)


def _by_cli_append(store: Path, stream: str, kind: str, data: str) -> tuple[bool, str, bool]:
    code, _out, err = eventscope_in_process(
        "--store", str(store), "append", stream, kind, "--data", data
    )
    return code == 0, err.strip(), "Traceback" in err


def _by_cli_import(store: Path, stream: str, kind: str, data: str) -> tuple[bool, str, bool]:
    line = '{"stream_id":' + orjson.dumps(stream).decode() + ',"type":'
    line += orjson.dumps(kind).decode() + ',"data":' + data + "}\n"
    code, _out, err = eventscope_in_process("--store", str(store), "import", "-", stdin=line)
    return code == 0, err.strip(), "Traceback" in err


def _by_api(store: Path, stream: str, kind: str, data: str) -> tuple[bool, str, bool]:
    payload = _python_object(data)
    try:
        with Workspace.open(str(store), read_only=False) as workspace:
            workspace.writing.append(stream, kind, payload)
    except EventscopeError as error:
        return False, str(error), False
    except Exception as error:  # untyped: what the API must never raise
        return False, f"{type(error).__name__}: {error}", True
    return True, "", False


def _python_object(data: str) -> Any:
    """What an API caller would hold for the JSON text: Python's own reading of it (NaN,
    Infinity, big integers and lone surrogates come through as Python values)."""
    try:
        return json.loads(data)
    except RecursionError:  # deeper than Python's parser goes: build it
        deep: list[Any] = []
        for _ in range(data.count("[") - 1):
            deep = [deep]
        return {"a": deep}


DOORS: Final = {"CLI append": _by_cli_append, "CLI import": _by_cli_import, "API": _by_api}


def study(workdir: Path) -> tuple[list[Outcome], list[tuple[str, int, str, bool]]]:
    """Every case through every door, and every filter given text that is not UTF-8."""
    store = workdir / "hostile.db"
    with Workspace.open(str(store), read_only=False) as workspace:
        workspace.writing.append("s-1", "Seeded", {"n": 1})
    outcomes = []
    for case, data, _accepted in PAYLOADS:
        for door, attempt in DOORS.items():
            if door == "API" and case.startswith("duplicate keys"):
                continue  # a Python dict cannot hold a key twice
            outcomes.append(
                _try(case, door, store, lambda a=attempt, d=data: a(store, "s-1", "T", d))
            )
    for case, stream, kind in NAMES:
        for door, attempt in DOORS.items():
            if door == "CLI append" and "\x00" in stream + kind:
                continue  # argv cannot hold NUL: the shell never passes one
            outcomes.append(
                _try(case, door, store, lambda a=attempt, s=stream, k=kind: a(store, s, k, "{}"))
            )
    filters = []
    for options in FILTERS:
        code, _out, err = eventscope_in_process("--store", str(store), *options, _NOT_UTF8)
        filters.append((" ".join(options), code, err.strip(), "Traceback" in err))
    return outcomes, filters


def expected_acceptance(case: str) -> bool:
    """Whether the case is meant to be accepted (only the in-range payloads are)."""
    return next((ok for name, _data, ok in PAYLOADS if name == case), False)


def run(full: bool, workdir: Path) -> str:
    outcomes, filters = study(workdir)
    doors = list(DOORS)
    cases = list(dict.fromkeys(outcome.case for outcome in outcomes))
    rows = [f"| case | {' | '.join(doors)} |", f"|---|{'---|' * len(doors)}"]
    for case in cases:
        cells = []
        for door in doors:
            found = [o for o in outcomes if o.case == case and o.door == door]
            if not found:
                cells.append("— (cannot be held there)")
                continue
            outcome = found[0]
            if outcome.traceback:
                cells.append("**traceback**")
            elif outcome.accepted:
                cells.append("accepted")
            else:
                unchanged = "" if outcome.store_unchanged else " **store changed**"
                cells.append(f"refused: {outcome.message.removeprefix('eventscope: ')}{unchanged}")
        rows.append(f"| {case} | {' | '.join(cell.replace('|', '/') for cell in cells)} |")
    wrong = [
        o for o in outcomes if not o.as_documented or o.accepted != expected_acceptance(o.case)
    ]
    filter_rows = ["| options | exit | message |", "|---|---|---|"]
    for options, code, message, traceback in filters:
        shown = "**traceback**" if traceback else message.removeprefix("eventscope: ")
        filter_rows.append(f"| `{options} <bytes ff fe>` | {code} | {shown} |")
    bad_filters = [f for f in filters if f[3] or f[1] == 0]
    return "\n".join(
        [
            f"{len(PAYLOADS)} payloads and {len(NAMES)} names, each through the CLI's `append`, "
            "the CLI's `import` and the Python API (`Workspace.writing.append`), on a SQLite "
            "store whose head and file hash are compared before and after every attempt; "
            f"then {len(FILTERS)} read filters given bytes that are not UTF-8.",
            "",
            f"**{len(outcomes)} attempts: {len(wrong)} not as documented, "
            f"{sum(o.traceback for o in outcomes)} tracebacks, "
            f"{sum(not o.accepted and not o.store_unchanged for o in outcomes)} refusals that "
            f"changed the store. Filters: {len(bad_filters)} tracebacks or silent passes.**",
            "",
            *rows,
            "",
            *filter_rows,
            "",
            'Reproduce: `make reliability RELIABILITY_ARGS="--only hostile_input"` '
            "(the same cases run in `make test`: tests/reliability/test_hostile_input.py).",
        ]
    )
