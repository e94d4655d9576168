"""An engine's statements, timed and counted, and handed to the SQL log when wanted.

SQLAlchemy's cursor events (``before_cursor_execute``, ``after_cursor_execute``,
``handle_error``) feed the engine's :mod:`~hotelbot_cli.observability.metrics` always and
:mod:`~hotelbot_cli.observability.sql_log` when a record will be shown. ``make_engine``
calls :func:`instrument` (through :func:`hotelbot_cli.observability.instrument`) for every
engine it makes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from hotelbot_cli.observability.log_config import config
from hotelbot_cli.observability.sql_log import log_db_error, log_statement

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import ExceptionContext, ExecutionContext
    from sqlalchemy.engine.interfaces import DBAPICursor

_T0 = "_hotelbot_t0"


def instrument(engine: Engine) -> None:
    """Time, count and (when enabled) log every statement of ``engine``; idempotent."""
    from sqlalchemy import event

    from hotelbot_cli.observability.log_output import echo_to_stderr
    from hotelbot_cli.observability.metrics import attach

    if getattr(engine, "_hotelbot_logged", False):
        return
    engine._hotelbot_logged = True  # type: ignore[attr-defined]
    if engine.echo:
        echo_to_stderr(engine)
    metrics = attach(engine)

    def before(  # noqa: PLR0917 - SQLAlchemy event signature
        conn: Connection,
        cursor: DBAPICursor,
        statement: str,
        params: Any,
        context: ExecutionContext | None,
        many: bool,
    ) -> None:
        driver_cursor: Any = getattr(cursor, "_cursor", cursor)  # the async adapter wraps it
        if getattr(type(driver_cursor), "_hotelbot_logging", False):
            driver_cursor._hotelbot_via_engine = True  # logged here, not by the cursor too
        conn.info.setdefault(_T0, []).append(time.perf_counter())

    def after(  # noqa: PLR0917 - SQLAlchemy event signature
        conn: Connection,
        cursor: DBAPICursor,
        statement: str,
        params: Any,
        context: ExecutionContext | None,
        many: bool,
    ) -> None:
        stack = conn.info.get(_T0)
        if not stack:
            return
        elapsed_ms = (time.perf_counter() - stack.pop()) * 1000.0
        cfg = config()
        metrics.record_query(elapsed_ms, slow=elapsed_ms >= cfg.slow_ms)
        if elapsed_ms >= cfg.slow_ms or cfg.log_all:
            log_statement(statement, params, elapsed_ms, cursor.rowcount, executemany=many)

    def on_error(ctx: ExceptionContext) -> None:
        conn = ctx.connection
        if conn is not None and not conn.closed:
            stack = conn.info.get(_T0)
            if stack:
                stack.pop()
        if ctx.statement:
            metrics.record_error()
        log_db_error(ctx)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", on_error)
