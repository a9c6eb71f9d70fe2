"""The read-model diff (DESIGN §5): examples first, then properties over random read models."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.timetravel.diff import (
    DiffEntry,
    DocumentDiff,
    ReadModelDiff,
    apply_diff,
    changed_paths,
    collect_diff,
    diff_documents,
    diff_read_models,
    escape_key,
    join_path,
    split_path,
    summarize_diff,
)

JsonDoc = dict[str, Any]


def pairs(model: dict[str, JsonDoc]) -> list[tuple[str, JsonDoc]]:
    """A read model as the store hands it over: ``(key, doc)`` pairs sorted by key."""
    return sorted(model.items())


def diff(before: dict[str, JsonDoc], after: dict[str, JsonDoc]) -> ReadModelDiff:
    return diff_read_models(pairs(before), pairs(after))


def typed(value: Any) -> Any:
    """A value with its JSON types spelled out, so that 1, 1.0 and True compare unequal."""
    if isinstance(value, dict):
        return ("object", {key: typed(item) for key, item in value.items()})
    if isinstance(value, list):
        return ("array", [typed(item) for item in value])
    return (type(value).__name__, value)


def typed_model(model: dict[str, JsonDoc]) -> Any:
    return {key: typed(doc) for key, doc in model.items()}


# ---------------------------------------------------------------------------- examples

ALICE = {"name": "Alice", "address": {"city": "Oslo", "zip": "0150"}, "tags": ["a", "b"]}
BOB = {"name": "Bob", "total": 10}


def test_identical_models_have_an_empty_diff_and_count_every_document_unchanged() -> None:
    model = {"alice": ALICE, "bob": BOB}

    assert diff(model, dict(model)) == {"added": {}, "removed": {}, "changed": {}, "unchanged": 2}


def test_one_added_document() -> None:
    assert diff({"alice": ALICE}, {"alice": ALICE, "bob": BOB}) == {
        "added": {"bob": BOB},
        "removed": {},
        "changed": {},
        "unchanged": 1,
    }


def test_one_removed_document() -> None:
    assert diff({"alice": ALICE, "bob": BOB}, {"bob": BOB}) == {
        "added": {},
        "removed": {"alice": ALICE},
        "changed": {},
        "unchanged": 1,
    }


def test_a_nested_change_lists_every_path_that_differs_sorted() -> None:
    after = {
        "name": "Alice",
        "address": {"city": "Bergen", "zip": "5003", "country": "NO"},
        "tags": ["a", "b"],
        "vip": True,
    }

    result = diff({"alice": ALICE}, {"alice": after})

    assert result["changed"] == {
        "alice": {
            "before": ALICE,
            "after": after,
            "paths": ["address.city", "address.country", "address.zip", "vip"],
        }
    }
    assert result["unchanged"] == 0


def test_a_list_that_differs_is_one_path() -> None:
    assert changed_paths({"tags": ["a", "b"], "n": 1}, {"tags": ["a", "c", "d"], "n": 1}) == [
        "tags"
    ]
    assert changed_paths({"rows": [{"x": 1}]}, {"rows": [{"x": 2}]}) == ["rows"]


def test_a_change_of_type_is_a_change() -> None:
    assert changed_paths({"n": 1}, {"n": 1.0}) == ["n"]
    assert changed_paths({"n": 1}, {"n": True}) == ["n"]
    assert changed_paths({"n": 0}, {"n": None}) == ["n"]
    assert changed_paths({"n": {"a": 1}}, {"n": [1]}) == ["n"]
    assert changed_paths({"n": "1"}, {"n": 1}) == ["n"]
    # The whole document: Python's == says equal, the diff does not.
    result = diff({"k": {"total": 1, "flags": [1]}}, {"k": {"total": 1.0, "flags": [True]}})
    assert result["changed"]["k"]["paths"] == ["flags", "total"]


def test_the_same_number_written_as_zero_or_minus_zero_is_unchanged() -> None:
    assert changed_paths({"x": 0.0}, {"x": -0.0}) == []
    assert diff({"k": {"x": 0.0}}, {"k": {"x": -0.0}})["unchanged"] == 1


def test_key_order_inside_a_document_does_not_matter() -> None:
    assert diff({"k": {"a": 1, "b": 2}}, {"k": {"b": 2, "a": 1}})["unchanged"] == 1


def test_a_key_on_one_side_only_is_its_own_path_even_when_it_holds_an_object() -> None:
    assert changed_paths({"a": 1}, {"a": 1, "b": {"c": {"d": 1}}}) == ["b"]
    assert changed_paths({"a": {}}, {"a": {"b": {"c": 1}}}) == ["a.b"]


def test_dots_and_backslashes_in_keys_are_escaped_and_reversible() -> None:
    before = {"a.b": {"c": 1}, "x\\y": 1, "plain": {"": 1}}
    after = {"a.b": {"c": 2}, "x\\y": 2, "plain": {"": 2}}

    paths = changed_paths(before, after)

    assert paths == ["a\\.b.c", "plain.", "x\\\\y"]
    assert [split_path(path) for path in paths] == [["a.b", "c"], ["plain", ""], ["x\\y"]]
    assert escape_key("a.b\\") == "a\\.b\\\\"
    assert join_path(["a.b", "c"]) == "a\\.b.c"


def test_a_malformed_path_is_refused() -> None:
    with pytest.raises(ValueError, match="must be followed"):
        split_path("a\\")
    with pytest.raises(ValueError, match="must be followed"):
        split_path("a\\b")


def test_empty_models() -> None:
    assert diff({}, {}) == {"added": {}, "removed": {}, "changed": {}, "unchanged": 0}
    assert diff({}, {"k": BOB})["added"] == {"k": BOB}
    assert diff({"k": BOB}, {})["removed"] == {"k": BOB}


@pytest.mark.parametrize("side", ["before", "after"])
@pytest.mark.parametrize("keys", [["b", "a"], ["a", "a"]], ids=["unsorted", "repeated"])
def test_an_input_not_sorted_by_key_is_refused_with_its_side_and_keys(
    side: str, keys: list[str]
) -> None:
    bad = [(key, {}) for key in keys]
    good = [("a", {})]
    entries = diff_documents(bad, good) if side == "before" else diff_documents(good, bad)

    message = rf"{side} read model: key '{keys[1]}' comes after '{keys[0]}'"
    with pytest.raises(ValueError, match=message):
        list(entries)


def test_keys_are_ordered_by_code_point_as_utf8_bytes_are() -> None:
    keys = ["Z", "a", "é", "€", "😀"]
    assert sorted(keys, key=lambda key: key.encode()) == keys
    model = [(key, {"k": key}) for key in keys]

    result = diff_read_models(model, model)

    assert result["unchanged"] == len(keys)


def test_the_unchanged_count_is_known_once_the_diff_is_consumed() -> None:
    entries = diff_documents(pairs({"a": BOB, "b": BOB}), pairs({"b": BOB, "c": BOB}))

    with pytest.raises(RuntimeError, match="consumed"):
        _ = entries.unchanged
    assert [(entry.kind, entry.key) for entry in entries] == [("removed", "a"), ("added", "c")]
    assert entries.finished
    assert entries.unchanged == 1


def test_entries_carry_both_documents_and_their_paths() -> None:
    entries = list(diff_documents([("k", {"a": 1})], [("k", {"a": 2})]))

    assert entries == [DiffEntry("changed", "k", {"a": 1}, {"a": 2}, ("a",))]


def test_the_summary_counts_documents_by_kind_and_changed_documents_by_path() -> None:
    before = {
        "a": {"total": 1, "city": "Oslo"},
        "b": {"total": 1, "city": "Oslo"},
        "c": {"total": 1},
        "d": {"total": 1},
    }
    after = {
        "a": {"total": 2, "city": "Oslo"},
        "b": {"total": 2, "city": "Bergen"},
        "c": {"total": 1},
        "e": {"total": 1},
    }

    summary = summarize_diff(diff_documents(pairs(before), pairs(after)))

    assert summary.to_dict() == {
        "added": 1,
        "removed": 1,
        "changed": 2,
        "unchanged": 1,
        "paths": {"city": 1, "total": 2},
    }


def test_the_contract_diff_is_plain_json() -> None:
    result = diff({"a": ALICE, "b": BOB}, {"a": {**ALICE, "name": "Al"}, "c": BOB})

    assert orjson.loads(orjson.dumps(result)) == result


def test_apply_diff_refuses_a_diff_taken_from_other_documents() -> None:
    result = diff({"a": BOB}, {"a": ALICE})

    with pytest.raises(ValueError, match="'a' holds another document"):
        apply_diff({"a": {**BOB, "total": 11}}, result)
    with pytest.raises(ValueError, match="'a' is missing"):
        apply_diff({}, result)
    with pytest.raises(ValueError, match="already present"):
        apply_diff({"a": BOB}, diff({}, {"a": BOB}))
    with pytest.raises(ValueError, match="unchanged"):
        apply_diff({"a": BOB, "z": BOB}, result)


# ---------------------------------------------------------------------------- properties

# Keys with dots, backslashes and non-ASCII, drawn from a small alphabet so that two
# documents often share keys and two read models often share documents.
keys = st.text(alphabet="ab.\\é", max_size=3)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=2),
    st.floats(min_value=-2, max_value=2, allow_nan=False).map(lambda x: round(x, 1)),
    st.text(alphabet="xy", max_size=2),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=8,
)
documents = st.dictionaries(keys, json_values, max_size=4)
models = st.dictionaries(st.text(alphabet="abcé", max_size=3), documents, max_size=6)


@st.composite
def model_pairs(draw: st.DrawFn) -> tuple[dict[str, JsonDoc], dict[str, JsonDoc]]:
    """Two read models where the second is mostly the first, edited: shares, changes, adds."""
    before = draw(models)
    after: dict[str, JsonDoc] = {}
    for key, doc in before.items():
        fate = draw(st.sampled_from(["keep", "keep", "drop", "edit"]))
        if fate == "keep":
            after[key] = doc
        elif fate == "edit":
            edited = dict(doc)
            edited.update(draw(st.dictionaries(keys, json_values, max_size=2)))
            for dropped in draw(st.lists(st.sampled_from(sorted(doc) or [""]), max_size=1)):
                edited.pop(dropped, None)
            after[key] = edited
    after.update(draw(models))
    return before, after


FAST = settings(max_examples=50, deadline=None)


@FAST
@given(models)
def test_a_model_against_itself_is_all_unchanged(model: dict[str, JsonDoc]) -> None:
    assert diff(model, model) == {
        "added": {},
        "removed": {},
        "changed": {},
        "unchanged": len(model),
    }


@FAST
@given(model_pairs())
def test_applying_the_diff_to_the_first_model_gives_the_second(
    pair: tuple[dict[str, JsonDoc], dict[str, JsonDoc]],
) -> None:
    before, after = pair

    assert typed_model(apply_diff(before, diff(before, after))) == typed_model(after)


@FAST
@given(model_pairs())
def test_keys_and_paths_are_sorted_and_every_document_is_counted_once(
    pair: tuple[dict[str, JsonDoc], dict[str, JsonDoc]],
) -> None:
    before, after = pair

    result = diff(before, after)

    for part in ("added", "removed", "changed"):
        assert list(result[part]) == sorted(result[part])  # type: ignore[literal-required]
    for change in result["changed"].values():
        assert change["paths"] == sorted(set(change["paths"]))
        assert change["paths"]
    assert len(before) == len(result["removed"]) + len(result["changed"]) + result["unchanged"]
    assert len(after) == len(result["added"]) + len(result["changed"]) + result["unchanged"]


@FAST
@given(model_pairs())
def test_the_summary_agrees_with_the_full_diff(
    pair: tuple[dict[str, JsonDoc], dict[str, JsonDoc]],
) -> None:
    before, after = pair
    result = diff(before, after)

    summary = summarize_diff(diff_documents(pairs(before), pairs(after))).to_dict()

    by_path: dict[str, int] = {}
    for change in result["changed"].values():
        for path in change["paths"]:
            by_path[path] = by_path.get(path, 0) + 1
    assert summary == {
        "added": len(result["added"]),
        "removed": len(result["removed"]),
        "changed": len(result["changed"]),
        "unchanged": result["unchanged"],
        "paths": dict(sorted(by_path.items())),
    }
    assert list(summary["paths"]) == sorted(summary["paths"])


@FAST
@given(model_pairs())
def test_the_diff_backwards_swaps_added_and_removed_and_before_and_after(
    pair: tuple[dict[str, JsonDoc], dict[str, JsonDoc]],
) -> None:
    before, after = pair
    forward, backward = diff(before, after), diff(after, before)

    assert backward["added"] == forward["removed"]
    assert backward["removed"] == forward["added"]
    assert backward["unchanged"] == forward["unchanged"]
    assert {
        key: (c["after"], c["before"], c["paths"]) for key, c in forward["changed"].items()
    } == {key: (c["before"], c["after"], c["paths"]) for key, c in backward["changed"].items()}


_MISSING = object()


def value_at(doc: Any, keys_: list[str]) -> Any:
    for key in keys_:
        if not isinstance(doc, dict) or key not in doc:
            return _MISSING
        doc = doc[key]
    return doc


@FAST
@given(documents, documents)
def test_paths_name_exactly_what_differs(before: JsonDoc, after: JsonDoc) -> None:
    """Copying the after-value at each path (or deleting it) turns before into after, and the
    values at each path do differ."""
    paths = changed_paths(before, after)
    patched = orjson.loads(orjson.dumps(before))

    for path in paths:
        route = split_path(path)
        old, new = value_at(before, route), value_at(after, route)
        assert old is _MISSING or new is _MISSING or typed(old) != typed(new)
        parent = value_at(patched, route[:-1])
        assert isinstance(parent, dict)
        if new is _MISSING:
            del parent[route[-1]]
        else:
            parent[route[-1]] = new
    assert typed(patched) == typed(after)
    assert (paths == []) == (typed(before) == typed(after))


class CountingPairs:
    """A generator of key-sorted pairs that records how many it has handed out."""

    def __init__(self, model: dict[str, JsonDoc]) -> None:
        self.items = pairs(model)
        self.pulled = 0

    def __iter__(self) -> Iterator[tuple[str, JsonDoc]]:
        for item in self.items:
            self.pulled += 1
            yield item


def pulled_at_most_one_ahead(side: CountingPairs, key: str) -> bool:
    """Whether the merge, having yielded ``key``, holds at most one pair of this side past it."""
    needed = sum(1 for item_key, _ in side.items if item_key <= key)
    return side.pulled <= needed + 1


@FAST
@given(model_pairs())
def test_the_merge_reads_each_input_at_most_one_pair_ahead(
    pair: tuple[dict[str, JsonDoc], dict[str, JsonDoc]],
) -> None:
    before, after = CountingPairs(pair[0]), CountingPairs(pair[1])
    entries = diff_documents(before, after)

    for entry in entries:
        assert pulled_at_most_one_ahead(before, entry.key)
        assert pulled_at_most_one_ahead(after, entry.key)
    assert (before.pulled, after.pulled) == (len(before.items), len(after.items))


def test_two_large_models_stream_through_without_being_held() -> None:
    """200,000 generated documents a side: only the entries that differ are ever kept."""

    def model(size: int, changed_every: int) -> Iterable[tuple[str, JsonDoc]]:
        for n in range(size):
            total = n + 1 if changed_every and n % changed_every == 0 else n
            yield f"{n:08d}", {"total": total, "lines": [n, n], "meta": {"n": n}}

    entries = diff_documents(model(200_000, 0), model(200_000, 1000))
    summary = summarize_diff(entries)

    assert (summary.changed, summary.unchanged, summary.paths) == (200, 199_800, {"total": 200})


def test_document_diff_is_its_own_iterator() -> None:
    entries = diff_documents([], [("a", {})])

    assert isinstance(entries, DocumentDiff)
    assert iter(entries) is entries
    assert next(entries).kind == "added"
    with pytest.raises(StopIteration):
        next(entries)


def test_collect_diff_accepts_a_diff_consumed_by_it_alone() -> None:
    result = collect_diff(diff_documents([("a", {"x": 1})], [("a", {"x": 1})]))

    assert result["unchanged"] == 1


def test_closing_a_diff_early_closes_both_inputs() -> None:
    closed: list[str] = []

    def side(name: str) -> Iterator[tuple[str, dict[str, int]]]:
        try:
            for n in range(10):
                yield f"k{n}", {"n": n if name == "before" else -n}
        finally:
            closed.append(name)

    diff = diff_documents(side("before"), side("after"))
    next(diff), next(diff)
    diff.close()
    assert sorted(closed) == ["after", "before"]
    assert list(diff) == []
