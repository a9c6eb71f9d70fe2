"""Administration of a SQL store: the integrity check."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from core.store.port import CheckReport
from core.store.schema import events, streams
from core.store.sql.connections import Connections

__all__ = ["check"]


def check(conns: Connections) -> CheckReport:
    """Integrity: the database's own check, gapless positions, contiguous versions,
    non-decreasing times, and a streams table that agrees with the events."""
    problems: list[str] = []
    details: dict[str, Any] = {}
    with conns.reading() as conn:
        if conns.sqlite:
            messages = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            details["sqlite_integrity"] = messages[:10]
            if messages != ["ok"]:
                problems.append(f"sqlite integrity_check: {'; '.join(messages[:3])}")
        count, low, high = conn.execute(
            select(
                func.count(),
                func.coalesce(func.min(events.c.position), 0),
                func.coalesce(func.max(events.c.position), 0),
            )
        ).one()
        if count and (low != 1 or high != count):
            gaps = [
                row[0]
                for row in conn.execute(
                    text(
                        "SELECT position FROM (SELECT position, LAG(position) OVER "
                        "(ORDER BY position) AS prev FROM events) AS g "
                        "WHERE position - COALESCE(prev, 0) <> 1 ORDER BY position LIMIT 10"
                    )
                )
            ]
            details["positions_after_gaps"] = gaps
            problems.append(
                f"positions are not gapless: {count} events span positions {low}..{high}"
            )
        bad_streams = [
            {"stream_id": name, "events": n, "min_version": low_v, "max_version": high_v}
            for name, n, low_v, high_v in conn.execute(
                select(
                    events.c.stream_id,
                    func.count(),
                    func.min(events.c.version),
                    func.max(events.c.version),
                )
                .group_by(events.c.stream_id)
                .having(
                    (func.min(events.c.version) != 0)
                    | (func.max(events.c.version) != func.count() - 1)
                )
                .limit(10)
            )
        ]
        if bad_streams:
            details["streams_with_version_gaps"] = bad_streams
            problems.append(f"{len(bad_streams)} stream(s) have non-contiguous versions")
        backwards = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT recorded_at - LAG(recorded_at) OVER "
                "(ORDER BY position) AS step FROM events) AS s WHERE step < 0"
            )
        ).scalar_one()
        if backwards:
            problems.append(f"recorded_at decreases {backwards} time(s) along position")
        mismatched = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT COALESCE(s.stream_id, e.stream_id) FROM streams AS s "
                    "FULL OUTER JOIN (SELECT stream_id, max(version) AS v, "
                    "min(position) AS fp, max(position) AS lp, min(recorded_at) AS ft, "
                    "max(recorded_at) AS lt FROM events "
                    "GROUP BY stream_id) AS e ON e.stream_id = s.stream_id "
                    "WHERE s.stream_id IS NULL OR e.stream_id IS NULL OR e.v <> s.version "
                    "OR e.fp <> s.first_position OR e.lp <> s.last_position "
                    "OR e.ft <> s.first_recorded_at OR e.lt <> s.last_recorded_at LIMIT 10"
                )
            )
        ]
        if mismatched:
            details["streams_table_mismatches"] = mismatched
            problems.append(f"the streams table disagrees with the events for {mismatched}")
        stream_count = conn.execute(select(func.count()).select_from(streams)).scalar_one()
    return CheckReport(
        ok=not problems,
        events=int(count),
        head=int(high),
        streams=int(stream_count),
        problems=tuple(problems),
        details=details,
    )
