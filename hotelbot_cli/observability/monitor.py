"""A monitoring snapshot of a live database (the spec's ``db_monitor``).

Each section is read on its own autocommit connection statement, so a view this role
may not read (pg_stat_statements, other users' queries) degrades that section to a
note instead of failing the whole snapshot. The sections' readers are in
:mod:`~hotelbot_cli.observability.pg_stats`, the snapshot's versioned shape in
:mod:`~hotelbot_cli.observability.db_stats`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from hotelbot_cli.observability import pg_stats
from hotelbot_cli.observability.db_stats import SCHEMA_VERSION, DbStats, StatementsInfo

if TYPE_CHECKING:
    from sqlalchemy import Engine

T = TypeVar("T")


def snapshot(
    engine: Engine, *, long_running_s: float = 5.0, top: int = 10, lock_limit: int = 200
) -> DbStats:
    """Read every section; a section this role may not read becomes a note."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from hotelbot_cli.observability.masking import mask_text

    notes: list[str] = []

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # Sizes need a share lock: never queue behind an exclusive lock we are reporting on.
        conn.execute(text("SET lock_timeout = '1s'"))

        def section(name: str, fn: Callable[[], T], default: T) -> T:
            try:
                return fn()
            except DBAPIError as exc:
                message = mask_text(str(exc.orig).splitlines()[0] if exc.orig else str(exc))
                notes.append(f"{name}: not readable by this role ({message})")
                return default

        server = pg_stats.read_server(conn)
        if not server.sees_all_stats:
            notes.append(
                "not a superuser nor pg_read_all_stats member: other roles' queries and "
                "states are hidden (GRANT pg_read_all_stats TO <role> to see them)"
            )
        sessions = section(
            "sessions",
            lambda: pg_stats.read_sessions(conn, long_running_s),
            pg_stats.Sessions([], []),
        )
        statements = section(
            "pg_stat_statements",
            lambda: pg_stats.read_statements(conn, top),
            StatementsInfo.unavailable(),
        )
        return DbStats(
            schema_version=SCHEMA_VERSION,
            collected_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            database=server.database,
            server_version=server.version,
            connections=section("connections", lambda: pg_stats.read_connections(conn), None),
            tables=section("tables", lambda: pg_stats.read_tables(conn), []),
            indexes=section("indexes", lambda: pg_stats.read_indexes(conn), []),
            cache=section("cache", lambda: pg_stats.read_cache(conn), None),
            counters=section("counters", lambda: pg_stats.read_counters(conn), None),
            locks=section("locks", lambda: pg_stats.read_locks(conn, lock_limit), []),
            blocking=section("blocking", lambda: pg_stats.read_blocking(conn), []),
            long_running=sessions.long_running,
            idle_in_transaction=sessions.idle_in_transaction,
            statements=statements,
            notes=notes,
            nodes=section("citus nodes", lambda: pg_stats.read_nodes(conn), []),
        )
