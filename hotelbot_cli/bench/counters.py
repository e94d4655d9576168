"""pg_stat_database around the measured phase: a reading before, one after, the difference.

A reading and a difference are both :class:`~hotelbot_cli.bench.report.DbCounters` (the
same columns: cumulative values, or what happened between two readings)."""

from __future__ import annotations

import time
from dataclasses import astuple
from typing import TYPE_CHECKING, Any

from hotelbot_cli.bench.report import DbCounters

if TYPE_CHECKING:
    import psycopg

_COUNTERS_SQL = (
    "SELECT xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched,"
    " tup_inserted, tup_updated, tup_deleted, deadlocks"
    " FROM pg_stat_database WHERE datname = current_database()"
)


def read_counters(conn: psycopg.Connection[Any]) -> DbCounters:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(_COUNTERS_SQL).fetchone()
    return DbCounters(*(int(v or 0) for v in row)) if row else DbCounters()


def settled_counters(
    conn: psycopg.Connection[Any], previous: DbCounters | None = None
) -> DbCounters:
    """Counters once closed backends have flushed theirs (they do so as they exit)."""
    last = read_counters(conn)
    for _ in range(20):
        time.sleep(0.05)
        now = read_counters(conn)
        if now == last and now != previous:
            return now
        last = now
    return last


def difference(after: DbCounters, before: DbCounters) -> DbCounters:
    """What happened between two readings."""
    return DbCounters(*(a - b for a, b in zip(astuple(after), astuple(before), strict=True)))
