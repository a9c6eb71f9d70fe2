"""Administration of a SQL store: the integrity check."""

from __future__ import annotations

import zlib
from typing import Any, Final

import orjson
from sqlalchemy import func, select, text

from core.jobs import checkpoint
from core.store.port import CheckReport
from core.store.schema import CHECKSUM_COLUMN, events, streams
from core.store.sql.connections import Connections

__all__ = ["CHECKSUM_PAGE", "MISMATCHES_SHOWN", "check"]

#: Rows per keyset page of the checksum pass.
CHECKSUM_PAGE: Final = 5000
#: Damaged positions a report lists (it counts them all).
MISMATCHES_SHOWN: Final = 10
#: The fields a checksum covers, in :func:`core.store.port.event_checksum`'s order.
_HASHED: Final = (
    "position", "stream_id", "version", "type", "data", "metadata", "event_id", "recorded_at"
)  # fmt: skip
_NUMBERS: Final = frozenset({"position", "version", "recorded_at"})
#: The type payloads are fetched as (SQLite: the stored bytes; PostgreSQL: valid text).
_BYTES: Final = {True: "BLOB", False: "TEXT"}


def check(conns: Connections, *, checksums: bool = True) -> CheckReport:
    """Integrity: the database's own check, gapless positions, contiguous versions,
    non-decreasing times, a streams table that agrees with the events, and every
    event's checksum (``checksums``: the store has them, schema 7 on)."""
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
    if checksums:
        found = _verify_checksums(conns)
        details["checksums"] = found
        if found["mismatched"]:
            problems.append(
                f"{found['mismatched']} event(s) do not match their checksum (damaged rows), "
                f"first at position(s) {found['mismatched_positions']}"
            )
        if found["undecodable"]:
            problems.append(
                f"{found['undecodable']} event(s) written before checksums have payloads "
                f"that are not JSON, first at position(s) {found['undecodable_positions']}"
            )
    return CheckReport(
        ok=not problems,
        events=int(count),
        head=int(high),
        streams=int(stream_count),
        problems=tuple(problems),
        details=details,
    )


def _verify_checksums(conns: Connections) -> dict[str, Any]:
    """Hash every event's stored bytes, page by page by position, against its checksum.

    The database joins each row's fields into the bytes it stores (SQLite's text taken
    as it is, so a row no longer UTF-8 is hashed and reported, not a decoding error):
    one value per row to hash keeps a million rows to seconds. Rows written before
    checksums (NULL) are counted apart, and their payloads are checked to be JSON.
    """
    separator = "char(31)" if conns.sqlite else "chr(31)"
    fields = f" || {separator} || ".join(
        f"CAST({name} AS TEXT)" if name in _NUMBERS else name for name in _HASHED
    )
    joined = f"CAST({fields} AS BLOB)" if conns.sqlite else f"convert_to({fields}, 'UTF8')"
    payloads = ", ".join(
        f"CASE WHEN {CHECKSUM_COLUMN} IS NULL THEN CAST({name} AS {_BYTES[conns.sqlite]}) END"
        for name in ("data", "metadata")
    )
    sql = (
        f"SELECT position, {CHECKSUM_COLUMN}, {joined}, {payloads} FROM events "
        f"WHERE position > {conns.marker} ORDER BY position LIMIT {conns.marker}"
    )
    verified = unverified = mismatched_count = undecodable_count = 0
    mismatched: list[int] = []
    undecodable: list[int] = []
    after = 0
    crc32 = zlib.crc32
    while True:
        checkpoint()
        with conns.reading() as conn:
            cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(sql, (after, CHECKSUM_PAGE))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        for position, stored, row_bytes, data, metadata in rows:
            if stored is None:
                unverified += 1
                try:
                    orjson.loads(data)
                    orjson.loads(metadata)
                except (orjson.JSONDecodeError, TypeError):
                    undecodable_count += 1
                    if len(undecodable) < MISMATCHES_SHOWN:
                        undecodable.append(position)
            elif row_bytes is not None and crc32(row_bytes) == stored:
                verified += 1
            else:
                mismatched_count += 1
                if len(mismatched) < MISMATCHES_SHOWN:
                    mismatched.append(position)
        if len(rows) < CHECKSUM_PAGE:
            break
        after = rows[-1][0]
    return {
        "verified": verified,
        "unverified": unverified,
        "mismatched": mismatched_count,
        "mismatched_positions": mismatched,
        "undecodable": undecodable_count,
        "undecodable_positions": undecodable,
    }
