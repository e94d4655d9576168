"""pg_stat_database around the measured phase: a reading before, one after, the difference."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

from hotelbot_cli.bench.report import DbCounters

if TYPE_CHECKING:
    import psycopg

_COUNTERS_SQL = (
    "SELECT xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched,"
    " tup_inserted, tup_updated, tup_deleted, deadlocks"
    " FROM pg_stat_database WHERE datname = current_database()"
)


class Counters(NamedTuple):
    """One reading of the database's cumulative counters (the columns of _COUNTERS_SQL)."""

    xact_commit: int = 0
    xact_rollback: int = 0
    blks_read: int = 0
    blks_hit: int = 0
    tup_returned: int = 0
    tup_fetched: int = 0
    tup_inserted: int = 0
    tup_updated: int = 0
    tup_deleted: int = 0
    deadlocks: int = 0


def read_counters(conn: psycopg.Connection[Any]) -> Counters:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(_COUNTERS_SQL).fetchone()
    return Counters(*(int(v or 0) for v in row)) if row else Counters()


def settled_counters(conn: psycopg.Connection[Any], previous: Counters | None = None) -> Counters:
    """Counters once closed backends have flushed theirs (they do so as they exit)."""
    last = read_counters(conn)
    for _ in range(20):
        time.sleep(0.05)
        now = read_counters(conn)
        if now == last and now != previous:
            return now
        last = now
    return last


def difference(after: Counters, before: Counters) -> DbCounters:
    """What happened between two readings."""
    return DbCounters(*(a - b for a, b in zip(after, before, strict=True)))
