"""The in-memory view: what a handler gets and puts never changes what is stored."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.projections.definition import DictView, copy_document

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
documents = st.dictionaries(st.text(), json_values)


def mutate_everything(value: Any) -> None:
    """Change every dict and list inside ``value`` in place."""
    if isinstance(value, dict):
        for child in list(value.values()):
            mutate_everything(child)
        value["mutated"] = True
    elif isinstance(value, list):
        for child in value:
            mutate_everything(child)
        value.append("mutated")


@given(documents)
def test_a_copy_is_equal_and_shares_nothing_mutable(doc: dict[str, Any]) -> None:
    copied = copy_document(doc)
    before = repr(doc)

    assert copied == doc
    mutate_everything(copied)
    assert repr(doc) == before


@given(documents)
def test_changing_a_document_after_put_or_get_changes_nothing_stored(
    doc: dict[str, Any],
) -> None:
    view = DictView()
    view.put("key", doc)
    expected = repr(view.documents["key"])

    mutate_everything(doc)
    got = view.get("key")
    assert got is not None
    mutate_everything(got)

    assert repr(view.documents["key"]) == expected


def test_values_that_are_not_json_are_still_copied_deeply() -> None:
    inner = {1, 2}
    view = DictView()
    view.put("key", {"tags": inner, "pair": ([1], 2)})

    inner.add(3)
    got = view.get("key")
    assert got is not None
    got["pair"][0].append(9)

    assert view.documents["key"] == {"tags": {1, 2}, "pair": ([1], 2)}
