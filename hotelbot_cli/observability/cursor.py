"""A psycopg cursor that logs like the engine's events, for code that talks to the driver.

SQLAlchemy's cursor events see only what goes through SQLAlchemy. Bulk loaders (COPY,
server-side INSERT … SELECT) work on the psycopg connection underneath; opening their
cursor as ``LoggingCursor(conn)`` gives them the same JSON lines, masking and slow-query
warnings as every other statement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from hotelbot_cli.observability import sql_log


class LoggingCursor(psycopg.Cursor[Any]):
    """``execute`` and ``copy`` are timed and logged through :func:`sql_log.log_statement`."""

    def _text(self, query: Any) -> str:
        if isinstance(query, sql.Composable):
            return query.as_string(self.connection)
        return query.decode() if isinstance(query, bytes) else str(query)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> LoggingCursor:
        started = time.perf_counter()
        super().execute(query, params, **kwargs)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        sql_log.log_statement(self._text(query), params, elapsed_ms, self.rowcount)
        return self

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[psycopg.Copy]:
        started = time.perf_counter()
        with super().copy(statement, params, **kwargs) as copy:
            yield copy
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        sql_log.log_statement(self._text(statement), params, elapsed_ms, self.rowcount)
