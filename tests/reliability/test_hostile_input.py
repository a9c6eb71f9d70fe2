"""Hostile payloads and names through the CLI's append and import and the API: each
refused in one line with the store untouched (or accepted as documented), never a
traceback; filters given bytes that are not UTF-8 refused in one line."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.hostile_input import expected_acceptance, study


def test_every_hostile_input_is_refused_cleanly_or_accepted_as_documented(
    tmp_path: Path,
) -> None:
    outcomes, filters = study(tmp_path)

    assert len(outcomes) > 60
    for outcome in outcomes:
        where = f"{outcome.case} via {outcome.door}: {outcome.message}"
        assert not outcome.traceback, where
        assert outcome.accepted == expected_acceptance(outcome.case), where
        if not outcome.accepted:
            assert outcome.store_unchanged, where  # nothing written, the file as it was
            assert outcome.message and "\n" not in outcome.message, where  # one line
    forged = [o for o in outcomes if o.case.startswith("system stream $audit")]
    assert {o.door for o in forged} == {"CLI append", "CLI import", "API"}
    assert all("system stream" in o.message for o in forged)
    for options, code, message, traceback in filters:
        assert not traceback and code != 0, (options, message)
        assert "is not valid UTF-8" in message and "\n" not in message, (options, message)
