"""psycopg cursors that log like the engine's events, for code that talks to the driver.

SQLAlchemy's cursor events see only what goes through SQLAlchemy. Bulk loaders (COPY),
rls-check's probes and bench's workload run on the psycopg connection underneath.
:func:`raw_connection` (and :func:`instrument_driver` for a driver connection one already
holds) make every cursor of that connection a logging one, so those statements get the
same JSON lines, masking and slow-query warnings as every other statement. A statement
that SQLAlchemy itself runs on such a connection is logged once, by the engine's events.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import sql

from hotelbot_cli.observability import sql_log

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.pool import PoolProxiedConnection

#: Set on a cursor whose statement SQLAlchemy's events already log (see sql_events.instrument).
VIA_ENGINE = "_hotelbot_via_engine"


def _text(connection: Any, query: Any) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(connection)
    return query.decode() if isinstance(query, bytes) else str(query)


def _log(cursor: Any, query: Any, params: Any, started: float, *, many: bool = False) -> None:
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    if getattr(cursor, VIA_ENGINE, False) or not sql_log.wanted(elapsed_ms):
        return
    sql_log.log_statement(
        _text(cursor.connection, query), params, elapsed_ms, cursor.rowcount, executemany=many
    )


class LoggingCursor(psycopg.Cursor[Any]):
    """``execute``, ``executemany`` and ``copy`` are timed and logged."""

    _hotelbot_logging = True

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> LoggingCursor:
        started = time.perf_counter()
        super().execute(query, params, **kwargs)
        _log(self, query, params, started)
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        super().executemany(query, params_seq, **kwargs)
        _log(self, query, None, started, many=True)

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[psycopg.Copy]:
        started = time.perf_counter()
        with super().copy(statement, params, **kwargs) as copy:
            yield copy
        _log(self, statement, params, started)


class AsyncLoggingCursor(psycopg.AsyncCursor[Any]):
    """The async twin of :class:`LoggingCursor`."""

    _hotelbot_logging = True

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> AsyncLoggingCursor:
        started = time.perf_counter()
        await super().execute(query, params, **kwargs)
        _log(self, query, params, started)
        return self

    async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        await super().executemany(query, params_seq, **kwargs)
        _log(self, query, None, started, many=True)

    @asynccontextmanager
    async def copy(
        self, statement: Any, params: Any = None, **kwargs: Any
    ) -> AsyncIterator[psycopg.AsyncCopy]:
        started = time.perf_counter()
        async with super().copy(statement, params, **kwargs) as copy:
            yield copy
        _log(self, statement, params, started)


Conn = TypeVar("Conn", bound="psycopg.Connection[Any] | psycopg.AsyncConnection[Any]")


def instrument_driver(conn: Conn) -> Conn:
    """Make every cursor of the psycopg connection ``conn`` a logging cursor; returns it."""
    if isinstance(conn, psycopg.AsyncConnection):
        conn.cursor_factory = AsyncLoggingCursor
    else:
        conn.cursor_factory = LoggingCursor
    return conn


def raw_connection(engine: Engine) -> PoolProxiedConnection:
    """``engine.raw_connection()`` whose psycopg connection logs every statement.

    The one way the CLI opens raw connections (bench, rls-check, seed): use
    ``.driver_connection`` as usual and ``.close()`` to give it back.
    """
    raw = engine.raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    instrument_driver(driver)
    return raw
