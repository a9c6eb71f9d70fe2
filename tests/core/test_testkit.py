"""The plugin authors' test kit."""

from __future__ import annotations

from datetime import UTC, datetime

from core.testkit import given, recorded


def test_the_test_kit_keeps_the_times_of_recorded_events() -> None:
    midnight = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    history = given(recorded("a-1", "A", {}, at=midnight), ("a-1", "B", {}))
    assert history.events[0].recorded_at == midnight
    assert [e.version for e in history.events] == [0, 1]
