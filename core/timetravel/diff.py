"""The difference between two read models (DESIGN §5, contract), as a streaming merge by key.

Both read models come in as iterables of ``(key, document)`` pairs sorted by key in Python
``str`` order, which is Unicode code-point order and so the byte order of UTF-8 (SQLite's
``BINARY`` collation; PostgreSQL needs ``COLLATE "C"``). The merge holds only the current
pair of documents, so two read models of a million documents each need not fit in memory.

Equality is JSON equality: two values are the same when they have the same JSON type and
the same value, recursively. ``1`` and ``1.0`` differ (JSON writes them differently, and a
projection that turns a count into a float has changed something), ``True`` and ``1`` differ,
``0.0`` and ``-0.0`` are the same number. Object key order never matters; array order does.

A path names a field by its keys from the document's root joined with ``.``; inside a key,
``\\`` is written ``\\\\`` and ``.`` is written ``\\.``, so ``{"a.b": {"c": 1}}`` gives the
path ``a\\.b.c`` and :func:`split_path` turns any path back into its keys.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

import orjson

from core.projections.definition import JsonDoc

__all__ = [
    "ChangedDocument",
    "DiffEntry",
    "DiffSummary",
    "DocumentDiff",
    "ReadModelDiff",
    "apply_diff",
    "changed_paths",
    "collect_diff",
    "diff_documents",
    "diff_read_models",
    "escape_key",
    "join_path",
    "split_path",
    "summarize_diff",
]

DiffKind = Literal["added", "removed", "changed"]


class ChangedDocument(TypedDict):
    """One changed document in the contract diff: both versions and the paths that differ."""

    before: JsonDoc
    after: JsonDoc
    paths: list[str]


class ReadModelDiff(TypedDict):
    """The contract diff (DESIGN §5): keys sorted, paths sorted, ready for ``orjson.dumps``."""

    added: dict[str, JsonDoc]
    removed: dict[str, JsonDoc]
    changed: dict[str, ChangedDocument]
    unchanged: int


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One key whose document differs between the two read models.

    ``before`` is None for an added key, ``after`` is None for a removed one; ``paths``
    (sorted) is empty unless the document changed.
    """

    kind: DiffKind
    key: str
    before: JsonDoc | None
    after: JsonDoc | None
    paths: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- paths


def escape_key(key: str) -> str:
    """One key as a path segment: ``\\`` becomes ``\\\\`` and ``.`` becomes ``\\.``."""
    if "\\" not in key and "." not in key:
        return key
    return key.replace("\\", "\\\\").replace(".", "\\.")


def join_path(keys: Iterable[str]) -> str:
    """The dotted path of a sequence of keys (the inverse of :func:`split_path`)."""
    return ".".join(escape_key(key) for key in keys)


def split_path(path: str) -> list[str]:
    """The keys of a dotted path, unescaped: ``split_path("a\\\\.b.c") == ["a.b", "c"]``.

    Raises:
        ValueError: if the path ends in a lone ``\\`` or escapes anything but ``\\`` or ``.``.
    """
    keys: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == ".":
            keys.append("".join(current))
            current = []
        elif char == "\\":
            escaped = next(chars, None)
            if escaped not in ("\\", "."):
                raise ValueError(f"path {path!r}: '\\' must be followed by '\\' or '.'")
            current.append(escaped)
        else:
            current.append(char)
    keys.append("".join(current))
    return keys


# ---------------------------------------------------------------------------- equality


def _same_json(a: object, b: object) -> bool:
    """JSON equality: same type (int, float and bool are three types) and same value."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same_json(value, b[key]) for key, value in a.items())
        )
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_same_json, a, b))
    return type(a) is type(b) and a == b


def _surely_same(a: JsonDoc, b: JsonDoc) -> bool:
    """A fast, one-sided test: True means the documents are the same; False means "look".

    Python's ``==`` (in C) rules out most changes; equal canonical JSON then rules out the
    ones ``==`` hides (``1`` against ``1.0`` or ``True``). Unequal bytes are left to
    :func:`changed_paths`, which has the last word (``-0.0`` against ``0.0``, huge ints).
    """
    if a is b:
        return True
    if a != b:
        return False
    try:
        return orjson.dumps(a, option=_CANONICAL) == orjson.dumps(b, option=_CANONICAL)
    except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a non-str key
        return False


_CANONICAL: Final = orjson.OPT_SORT_KEYS


def changed_paths(before: JsonDoc, after: JsonDoc) -> list[str]:
    """The sorted dotted paths at which two documents differ.

    Nested objects are compared key by key; anything else that differs (an array, a
    scalar, a change of type, an object against a non-object) is one path, and so is a
    key present on one side only. Equal documents give ``[]``.

    Raises:
        TypeError: if either document is not a JSON object (a dict).
    """
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise TypeError(
            f"documents are JSON objects, not {type(before).__name__} and {type(after).__name__}"
        )
    paths: list[str] = []
    _collect_paths(before, after, "", paths)
    paths.sort()
    return paths


def _collect_paths(
    before: dict[str, Any], after: dict[str, Any], prefix: str, paths: list[str]
) -> None:
    for key in before.keys() | after.keys():
        path = prefix + escape_key(key)
        if key not in before or key not in after:
            paths.append(path)
            continue
        old, new = before[key], after[key]
        if isinstance(old, dict) and isinstance(new, dict):
            _collect_paths(old, new, path + ".", paths)
        elif not _same_json(old, new):
            paths.append(path)


# ---------------------------------------------------------------------------- the merge


class DocumentDiff(Iterator[DiffEntry]):
    """The streaming merge of two key-sorted read models: an iterator of :class:`DiffEntry`.

    Entries come in key order, one per key that differs. Once the iterator is exhausted,
    :attr:`unchanged` is the number of keys whose documents are the same. Each input is
    pulled at most one pair ahead of the entry last yielded.
    """

    def __init__(
        self,
        before: Iterable[tuple[str, JsonDoc]],
        after: Iterable[tuple[str, JsonDoc]],
    ) -> None:
        self._entries = self._merge(iter(before), iter(after))
        self._unchanged = 0
        self._finished = False

    @property
    def unchanged(self) -> int:
        """How many keys hold the same document on both sides.

        Raises:
            RuntimeError: if the iterator has not been exhausted yet (the count would be
                partial).
        """
        if not self._finished:
            raise RuntimeError("the unchanged count is known once the diff has been consumed")
        return self._unchanged

    @property
    def unchanged_so_far(self) -> int:
        """How many keys have been found the same up to the entry last yielded (a running
        count, for progress; :attr:`unchanged` once finished)."""
        return self._unchanged

    @property
    def finished(self) -> bool:
        """Whether both inputs have been merged to their ends."""
        return self._finished

    def __iter__(self) -> DocumentDiff:
        return self

    def __next__(self) -> DiffEntry:
        return next(self._entries)

    def close(self) -> None:
        """Stop the merge early and close both inputs (releasing the store reads they
        hold open); a closed diff yields nothing more. Closing a finished diff is harmless.
        """
        self._entries.close()

    def _merge(
        self, before: Iterator[tuple[str, JsonDoc]], after: Iterator[tuple[str, JsonDoc]]
    ) -> Generator[DiffEntry, None, None]:
        old = _pull(before, None, "before")
        new = _pull(after, None, "after")
        while old is not None or new is not None:
            if new is None or (old is not None and old[0] < new[0]):
                assert old is not None
                yield DiffEntry("removed", old[0], old[1], None)
                old = _pull(before, old[0], "before")
            elif old is None or new[0] < old[0]:
                yield DiffEntry("added", new[0], None, new[1])
                new = _pull(after, new[0], "after")
            else:
                key, old_doc, new_doc = old[0], old[1], new[1]
                paths = () if _surely_same(old_doc, new_doc) else changed_paths(old_doc, new_doc)
                if paths:
                    yield DiffEntry("changed", key, old_doc, new_doc, tuple(paths))
                else:
                    self._unchanged += 1
                old = _pull(before, key, "before")
                new = _pull(after, key, "after")
        self._finished = True


def _pull(
    pairs: Iterator[tuple[str, JsonDoc]], previous: str | None, side: str
) -> tuple[str, JsonDoc] | None:
    """The next pair of one input, checking that its keys strictly increase."""
    pair = next(pairs, None)
    if pair is not None and previous is not None and not pair[0] > previous:
        raise ValueError(
            f"{side} read model: key {pair[0]!r} comes after {previous!r}; each input must "
            "be sorted by key in strictly increasing str (UTF-8 byte) order, without repeats"
        )
    return pair


def diff_documents(
    before: Iterable[tuple[str, JsonDoc]], after: Iterable[tuple[str, JsonDoc]]
) -> DocumentDiff:
    """Merge two key-sorted read models into the entries that differ.

    Args:
        before: ``(key, document)`` pairs of the first read model, keys strictly increasing.
        after: the same for the second read model.

    Returns:
        An iterator of :class:`DiffEntry` in key order; its ``unchanged`` count is set once
        it is exhausted.

    Raises:
        ValueError: while iterating, if an input's keys do not strictly increase.
    """
    return DocumentDiff(before, after)


# ---------------------------------------------------------------------------- results


def collect_diff(diff: DocumentDiff) -> ReadModelDiff:
    """Consume a diff into the contract object (DESIGN §5). Documents are not copied."""
    result: ReadModelDiff = {"added": {}, "removed": {}, "changed": {}, "unchanged": 0}
    for entry in diff:  # in key order, so every dict below is built sorted
        if entry.kind == "added":
            assert entry.after is not None
            result["added"][entry.key] = entry.after
        elif entry.kind == "removed":
            assert entry.before is not None
            result["removed"][entry.key] = entry.before
        else:
            assert entry.before is not None and entry.after is not None
            result["changed"][entry.key] = {
                "before": entry.before,
                "after": entry.after,
                "paths": list(entry.paths),
            }
    result["unchanged"] = diff.unchanged
    return result


def diff_read_models(
    before: Iterable[tuple[str, JsonDoc]], after: Iterable[tuple[str, JsonDoc]]
) -> ReadModelDiff:
    """The contract diff of two key-sorted read models (``collect_diff(diff_documents(…))``)."""
    return collect_diff(diff_documents(before, after))


@dataclass(frozen=True, slots=True)
class DiffSummary:
    """Counts of a diff too large to show: documents by kind, changed documents by path."""

    added: int
    removed: int
    changed: int
    unchanged: int
    paths: dict[str, int]
    """For each path, how many changed documents differ at it (sorted by path)."""

    def to_dict(self) -> dict[str, Any]:
        """``{"added": n, "removed": n, "changed": n, "unchanged": n, "paths": {path: n}}``."""
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "paths": dict(self.paths),
        }


def summarize_diff(diff: DocumentDiff) -> DiffSummary:
    """Consume a diff into counts, in one pass, keeping no document."""
    counts = {"added": 0, "removed": 0, "changed": 0}
    by_path: dict[str, int] = {}
    for entry in diff:
        counts[entry.kind] += 1
        for path in entry.paths:
            by_path[path] = by_path.get(path, 0) + 1
    return DiffSummary(
        added=counts["added"],
        removed=counts["removed"],
        changed=counts["changed"],
        unchanged=diff.unchanged,
        paths=dict(sorted(by_path.items())),
    )


def apply_diff(documents: Mapping[str, JsonDoc], diff: ReadModelDiff) -> dict[str, JsonDoc]:
    """Apply a contract diff taken from ``documents`` to get the second read model.

    The result is a new dict sorted by key; documents are shared with the inputs, not copied.

    Raises:
        ValueError: if the diff was not taken from these documents (an added key already
            present, a removed or changed key missing or holding another document, or an
            unchanged count that does not add up).
    """
    result = dict(documents)
    for key, doc in diff["removed"].items():
        _check_before(result, key, doc, "removed")
        del result[key]
    for key, change in diff["changed"].items():
        _check_before(result, key, change["before"], "changed")
        result[key] = change["after"]
    for key, doc in diff["added"].items():
        if key in result:
            raise ValueError(f"diff does not apply: added key {key!r} is already present")
        result[key] = doc
    unchanged = len(documents) - len(diff["removed"]) - len(diff["changed"])
    if unchanged != diff["unchanged"]:
        raise ValueError(
            f"diff does not apply: it counts {diff['unchanged']} unchanged documents, "
            f"these documents leave {unchanged}"
        )
    return dict(sorted(result.items()))


def _check_before(documents: dict[str, JsonDoc], key: str, before: JsonDoc, kind: str) -> None:
    if key not in documents:
        raise ValueError(f"diff does not apply: {kind} key {key!r} is missing")
    if not _same_json(documents[key], before):
        raise ValueError(f"diff does not apply: {kind} key {key!r} holds another document")
