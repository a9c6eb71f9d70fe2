"""Stepping one event at a time, and the lineage of one document."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from core.timetravel.diff import collect_diff, diff_read_models
from tests.core.timetravel.test_read_model_at import fold_upto, steps, tally_workspace, write


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=steps)
def test_each_events_effect_is_the_difference_it_made_and_lineage_tells_the_same_story(
    tmp_path_factory: Any, history: list[tuple[int, str, int, int]]
) -> None:
    workspace, clock = tally_workspace(tmp_path_factory.mktemp("l") / "store.db")
    write(workspace, clock, history)
    head = workspace.events.head_position()
    keys = sorted({key for p in range(head + 1) for key in fold_upto(workspace, p)})
    by_fold = {key: workspace.timetravel.lineage("tally", key) for key in keys}
    stepped_by_fold = [workspace.timetravel.step(f"tally@{p}") for p in range(1, head + 1)]
    workspace.projections.run("tally")
    for position in range(1, head + 1):
        effect = workspace.timetravel.step(f"tally@{position}")
        assert effect == stepped_by_fold[position - 1]  # history and fold agree
        expected = diff_read_models(
            sorted(fold_upto(workspace, position - 1).items()),
            sorted(fold_upto(workspace, position).items()),
        )
        changed = {c.key: (c.before, c.after) for c in effect.changes}
        assert changed == {
            **{k: (None, d) for k, d in expected["added"].items()},
            **{k: (d, None) for k, d in expected["removed"].items()},
            **{k: (c["before"], c["after"]) for k, c in expected["changed"].items()},
        }
        assert effect.event.position == position
        assert effect.handled == (effect.event.type in ("Added", "Closed"))
    for key in keys:
        lineage = workspace.timetravel.lineage("tally", key)
        assert lineage == by_fold[key]  # history and fold agree
        # Replaying the lineage rebuilds the document at every position it changed.
        for change in lineage:
            assert change.event is not None and change.event.position == change.position
            assert fold_upto(workspace, change.position).get(key) == change.after
            assert fold_upto(workspace, change.position - 1).get(key) == change.before
        assert len(lineage) == sum(
            1
            for p in range(1, head + 1)
            if fold_upto(workspace, p).get(key) != fold_upto(workspace, p - 1).get(key)
        )
    workspace.close()


def test_lineage_up_to_a_point_and_an_event_that_changed_nothing(tmp_path: Any) -> None:
    workspace, clock = tally_workspace(tmp_path / "store.db")
    write(workspace, clock, [(1, "Added", 5, 0), (2, "Ignored", 0, 0), (1, "Added", 3, 0)])
    workspace.projections.run("tally")
    whole = workspace.timetravel.lineage("tally", "acct-1")
    assert [(c.position, c.kind, c.paths) for c in whole] == [
        (1, "added", ()),
        (3, "changed", ("events", "total")),
    ]
    assert [c.position for c in workspace.timetravel.lineage("tally@2", "acct-1")] == [1]
    ignored = workspace.timetravel.step("tally@2")
    assert not ignored.handled and ignored.changes == ()
    assert workspace.timetravel.lineage("tally", "nobody") == []
    summary = collect_diff(workspace.timetravel.diff("tally@1", "tally@3"))
    assert summary["changed"]["acct-1"]["paths"] == ["events", "total"]
    workspace.close()
