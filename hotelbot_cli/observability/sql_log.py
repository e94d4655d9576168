"""Database log records: what one says, and whether one is made at all.

Every statement's time feeds the engine's metrics always; a record is built only when it
will be shown (every statement at DEBUG in development or with ``--log-sql``; slow ones at
WARNING, with a hint of what to look at). Connection errors are logged at ERROR with the
host (never the password) and what happens next. Records go to the ``hotelbot.db`` logger
with their fields in the record's :data:`FIELDS_ATTR` attribute; SQL text, parameters and
errors are masked. Where records go and how they read is
:mod:`~hotelbot_cli.observability.log_output`'s job; applications may use their own handler.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hotelbot_cli.observability.context import correlation_id_var, hotel_id_var
from hotelbot_cli.observability.log_config import config
from hotelbot_cli.observability.masking import mask_params, mask_text, scrub_sql, secret_values
from hotelbot_cli.observability.sql_classify import Statement, classify

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import ExceptionContext

LOGGER_NAME = "hotelbot.db"
logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())  # a library stays silent until configured

#: The log record attribute that carries a database record's fields (for formatters).
FIELDS_ATTR = "hotelbot_db"
_SQL_LIMIT = 2000


def base_fields(operation: str, table: str | None) -> dict[str, Any]:
    """The fields every record starts with: service, operation, table, correlation, hotel."""
    fields: dict[str, Any] = {
        "service": config().service,
        "component": "database",
        "operation": operation,
        "table": table,
        "correlation_id": correlation_id_var.get(),
    }
    hotel = hotel_id_var.get()
    if hotel:
        fields["hotel_id"] = hotel
    return fields


def _emit(level: int, message: str, fields: dict[str, Any]) -> None:
    logger.log(level, message, extra={FIELDS_ATTR: fields})


def _sql_text(statement: str) -> str:
    text = scrub_sql(" ".join(statement.split()))
    return text if len(text) <= _SQL_LIMIT else text[:_SQL_LIMIT] + " …"


def plan_hint(operation: str, table: str | None) -> str:
    """What to look at next for a slow statement."""
    where = f" on {table}" if table else ""
    if operation in {"SELECT", "UPDATE", "DELETE"}:
        return (
            f"slow {operation}{where}: run EXPLAIN (ANALYZE, BUFFERS) on it; a Seq Scan means "
            "a missing index or a filter not led by hotel_id (see `hotelbot db stats`)"
        )
    if operation in {"INSERT", "COPY"}:
        return (
            f"slow {operation}{where}: check index count, FK checks and locks (`hotelbot db stats`)"
        )
    return f"slow {operation}{where}: check locks held by other sessions (`hotelbot db stats`)"


def wanted(elapsed_ms: float) -> bool:
    """Whether a statement that took ``elapsed_ms`` would be logged (cheap; no SQL work)."""
    cfg = config()
    return elapsed_ms >= cfg.slow_ms or (cfg.log_all and logger.isEnabledFor(logging.DEBUG))


def log_statement(
    statement: str, params: Any, elapsed_ms: float, rows: int | None, *, executemany: bool = False
) -> None:
    """Log one executed statement (DEBUG, or WARNING when slow)."""
    cfg = config()
    slow = elapsed_ms >= cfg.slow_ms
    if not slow and not (cfg.log_all and logger.isEnabledFor(logging.DEBUG)):
        return
    operation, table = classify(statement)
    fields = base_fields(operation, table)
    fields["query_time_ms"] = round(elapsed_ms, 3)
    fields["rows_affected"] = rows if rows is not None and rows >= 0 else None
    fields["sql"] = _sql_text(statement)
    fields["params"] = mask_params(statement, params)
    if executemany:
        fields["executemany"] = True
    if slow:
        fields["slow_query_ms"] = cfg.slow_ms
        fields["plan_hint"] = plan_hint(operation, table)
        _emit(logging.WARNING, "slow query", fields)
    else:
        _emit(logging.DEBUG, "query", fields)


def log_operation(
    operation: str,
    table: str | None,
    rows: int | None,
    elapsed_ms: float,
    *,
    sql: str | None = None,
    level: int = logging.DEBUG,
    **extra: Any,
) -> None:
    """Log an operation the cursor events do not see (raw-driver COPY, bulk loads, …).

    Logged at ``level`` (DEBUG by default: shown in development / with --log-sql) with
    the same fields as a statement; ``extra`` values are masked like parameters.
    """
    cfg = config()
    if level <= logging.DEBUG and not cfg.log_all:
        return
    if not logger.isEnabledFor(level):
        return
    fields = base_fields(operation.upper(), table)
    fields["query_time_ms"] = round(elapsed_ms, 3)
    fields["rows_affected"] = rows
    fields["sql"] = _sql_text(sql) if sql else None
    fields["params"] = None
    for key, value in extra.items():
        fields[key] = mask_params("", {key: value})[key]
    _emit(level, operation.lower(), fields)


def _endpoint(engine: Engine) -> dict[str, str | int | None]:
    url = engine.url
    host = url.host or url.query.get("host") or "localhost"
    return {
        "host": host if isinstance(host, str) else ",".join(host),
        "port": url.port,
        "database": url.database,
        "user": url.username,
    }


def log_db_error(ctx: ExceptionContext) -> None:
    """``handle_error`` listener: connection errors at ERROR, failed statements at WARNING."""
    statement = ctx.statement or ""
    exc = ctx.original_exception
    secrets = secret_values(statement, ctx.parameters) if statement else []
    error = mask_text(f"{type(exc).__name__}: {exc}".strip(), secrets)
    operation, table = classify(statement) if statement else Statement("CONNECT", None)
    fields = base_fields(operation, table)
    fields["query_time_ms"] = None
    fields["rows_affected"] = None
    fields["sql"] = _sql_text(statement) if statement else None
    fields["params"] = mask_params(statement, ctx.parameters) if statement else None
    fields["error"] = error
    if ctx.is_disconnect or ctx.connection is None or getattr(ctx, "is_pre_ping", False):
        if ctx.engine is not None:
            fields.update(_endpoint(ctx.engine))
        if getattr(ctx, "is_pre_ping", False):
            retry = "pre-ping found a dead connection: the pool replaces it and retries"
        elif ctx.connection is None:
            retry = "not retried: no connection could be opened"
        else:
            retry = "connection invalidated: the pool reconnects on the next checkout"
        fields["retry"] = retry
        _emit(logging.ERROR, "database connection error", fields)
    else:
        _emit(logging.WARNING, "statement failed", fields)
