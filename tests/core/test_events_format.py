"""format_time: the one text of a time, whatever the zone and however often it is asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from core.events import format_time, from_micros


def by_strftime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_every_time_reads_as_strftime_writes_it(moment: datetime, offset_minutes: int) -> None:
    elsewhere = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))

    assert format_time(moment) == by_strftime(moment)
    assert format_time(moment) == by_strftime(moment)  # asked again: the remembered text
    assert format_time(elsewhere) == by_strftime(moment)


def test_whole_seconds_keep_their_microseconds() -> None:
    assert format_time(datetime(2026, 3, 1, 10, 15, tzinfo=UTC)) == "2026-03-01T10:15:00.000000Z"
    assert format_time(from_micros(1)) == "1970-01-01T00:00:00.000001Z"


def test_equal_times_in_other_objects_read_the_same() -> None:
    first = from_micros(1_772_360_100_123_456)
    second = from_micros(1_772_360_100_123_456)
    later = from_micros(1_772_360_100_123_457)

    assert first is not second
    assert format_time(first) == format_time(second) == "2026-03-01T10:15:00.123456Z"
    assert format_time(later) == "2026-03-01T10:15:00.123457Z"
