"""Upcasters: the raw event stays as stored unless the reader says it drops it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.events import RecordedEvent
from core.upcasting import Upcasters, upcaster, upcaster_of


@upcaster("Booked", from_version=1)
def rename_in_place(data: dict[str, Any]) -> dict[str, Any]:
    data["amount"] = data.pop("amt")  # a step that changes what it is given
    return data


def booked() -> RecordedEvent:
    return RecordedEvent(
        1, "acct-1", 0, "Booked", {"amt": 5}, {}, "id-1", datetime(2026, 1, 1, tzinfo=UTC)
    )


def chain() -> Upcasters:
    definition = upcaster_of(rename_in_place)
    assert definition is not None
    return Upcasters([definition])


def test_upcasting_keeps_the_raw_event_as_stored() -> None:
    raw = booked()
    current = chain().upcast(raw)
    assert current.data == {"amount": 5} and current.metadata["schema_version"] == 2
    assert raw.data == {"amt": 5}  # the step was given a copy


def test_a_reader_that_drops_the_raw_event_saves_the_copy() -> None:
    raw = booked()
    (current,) = chain().upcast_all([raw], print, keep_raw=False)
    assert current.data == {"amount": 5}
    assert current.data is raw.data  # no copy was made
