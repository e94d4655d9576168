"""Structured logging of database operations (the spec's ``database_logging``).

Every statement of every instrumented engine goes through SQLAlchemy's cursor events:
its time feeds the engine's metrics always; a log record is built only when it will be
shown (every statement at DEBUG in development or with ``--log-sql``; slow ones at
WARNING). Connection errors are logged at ERROR with the host (never the password) and
what happens next. Records go to the ``hotelbot.db`` logger; :func:`configure` installs
a JSON-lines or human-readable handler (the CLI does), applications may use their own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, TYPE_CHECKING, Any

from hotelbot_cli.observability.context import correlation_id_var, hotel_id_var
from hotelbot_cli.observability.masking import mask_params, mask_text, scrub_sql, secret_values

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Engine

LOGGER_NAME = "hotelbot.db"
logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())  # a library stays silent until configured

DEFAULT_SERVICE = "whatsapp-hotel-bot"
DEFAULT_SLOW_MS = 100.0
_SQL_LIMIT = 2000
_FIELDS = (
    "timestamp",
    "level",
    "service",
    "component",
    "operation",
    "table",
    "query_time_ms",
    "rows_affected",
    "correlation_id",
    "hotel_id",
    "sql",
    "params",
)


@dataclass(frozen=True)
class LogConfig:
    """What is logged: every statement (development) or only slow ones and errors."""

    service: str = DEFAULT_SERVICE
    slow_ms: float = DEFAULT_SLOW_MS
    log_all: bool = False
    environment: str = "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LogConfig:
        """The config the environment asks for (parsed by :func:`settings.log_settings`)."""
        from hotelbot_cli.settings import log_settings

        found = log_settings(env)
        return cls(
            service=found.service or DEFAULT_SERVICE,
            slow_ms=DEFAULT_SLOW_MS if found.slow_ms is None else found.slow_ms,
            log_all=found.log_sql or found.environment in {"development", "dev"},
            environment=found.environment,
        )


_config: LogConfig | None = None


def config() -> LogConfig:
    """The configuration in force (read from the environment on first use)."""
    global _config  # noqa: PLW0603 - one logging configuration per process
    if _config is None:
        _config = LogConfig.from_env()
    return _config


def set_config(new: LogConfig | None) -> None:
    """Replace the configuration (None: read the environment again on next use)."""
    global _config  # noqa: PLW0603
    _config = new


# -- statement analysis --------------------------------------------------------------------
_DDL = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "COMMENT", "GRANT", "REVOKE", "REINDEX"})
_TABLE_RES = {
    "SELECT": re.compile(r"\bFROM\s+(?:ONLY\s+)?([\w.\"]+)", re.IGNORECASE),
    "INSERT": re.compile(r"\bINTO\s+([\w.\"]+)", re.IGNORECASE),
    "UPDATE": re.compile(r"^\s*UPDATE\s+(?:ONLY\s+)?([\w.\"]+)", re.IGNORECASE),
    "DELETE": re.compile(r"\bFROM\s+(?:ONLY\s+)?([\w.\"]+)", re.IGNORECASE),
    "COPY": re.compile(r"^\s*COPY\s+([\w.\"]+)", re.IGNORECASE),
    "DDL": re.compile(
        r"\b(?:TABLE|INDEX|VIEW|SEQUENCE|POLICY\s+\S+\s+ON)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
        r"(?:CONCURRENTLY\s+)?([\w.\"]+)",
        re.IGNORECASE,
    ),
}
_WITH_MAIN_RE = re.compile(r"\)\s*(SELECT|INSERT|UPDATE|DELETE)\b(?![\s\S]*\bAS\s*\()", re.I)


@lru_cache(maxsize=4096)
def classify(sql: str) -> tuple[str, str | None]:
    """(operation, main table) of a statement, e.g. ``("SELECT", "hotels")``."""
    text = re.sub(r"^(?:\s|--[^\n]*\n|/\*.*?\*/)+", "", sql, flags=re.DOTALL)
    word = text.split(None, 1)[0].upper().rstrip(";") if text.strip() else ""
    if word == "WITH":
        main = _WITH_MAIN_RE.search(text)
        word = main.group(1).upper() if main else "SELECT"
        text = text[main.start(1) :] if main else text
    operation = "DDL" if word in _DDL else (word or "OTHER")
    pattern = _TABLE_RES.get(operation)
    table = None
    if pattern:
        found = pattern.search(text)
        if found:
            table = found.group(1).replace('"', "").rsplit(".", 1)[-1]
    return operation, table


# -- records --------------------------------------------------------------------------------
def _base_fields(operation: str, table: str | None) -> dict[str, Any]:
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
    logger.log(level, message, extra={"hotelbot_db": fields})


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
    fields = _base_fields(operation, table)
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
    fields = _base_fields(operation.upper(), table)
    fields["query_time_ms"] = round(elapsed_ms, 3)
    fields["rows_affected"] = rows
    fields["sql"] = _sql_text(sql) if sql else None
    fields["params"] = None
    for key, value in extra.items():
        fields[key] = mask_params("", {key: value})[key]
    _emit(level, operation.lower(), fields)


def _endpoint(engine: Any) -> dict[str, Any]:
    url = engine.url
    host = url.host or url.query.get("host") or "localhost"
    return {
        "host": host if isinstance(host, str) else ",".join(host),
        "port": url.port,
        "database": url.database,
        "user": url.username,
    }


def log_db_error(ctx: Any) -> None:
    """``handle_error`` listener: connection errors at ERROR, failed statements at WARNING."""
    statement = ctx.statement or ""
    exc = ctx.original_exception
    secrets = secret_values(statement, ctx.parameters) if statement else []
    error = mask_text(f"{type(exc).__name__}: {exc}".strip(), secrets)
    operation, table = classify(statement) if statement else ("CONNECT", None)
    fields = _base_fields(operation, table)
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


# -- engine instrumentation -----------------------------------------------------------------
_T0 = "_hotelbot_t0"


def instrument(engine: Engine) -> None:
    """Time, count and (when enabled) log every statement of ``engine``; idempotent."""
    from sqlalchemy import event

    from hotelbot_cli.observability.metrics import attach

    if getattr(engine, "_hotelbot_logged", False):
        return
    engine._hotelbot_logged = True  # type: ignore[attr-defined]
    if engine.echo:
        echo_to_stderr(engine)
    metrics = attach(engine)

    def before(  # noqa: PLR0917 - SQLAlchemy event signature
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        driver_cursor = getattr(cursor, "_cursor", cursor)  # the async adapter wraps it
        if getattr(type(driver_cursor), "_hotelbot_logging", False):
            driver_cursor._hotelbot_via_engine = True  # logged here, not by the cursor too
        conn.info.setdefault(_T0, []).append(time.perf_counter())

    def after(  # noqa: PLR0917 - SQLAlchemy event signature
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        stack = conn.info.get(_T0)
        if not stack:
            return
        elapsed_ms = (time.perf_counter() - stack.pop()) * 1000.0
        cfg = config()
        metrics.record_query(elapsed_ms, slow=elapsed_ms >= cfg.slow_ms)
        if elapsed_ms >= cfg.slow_ms or cfg.log_all:
            log_statement(statement, params, elapsed_ms, cursor.rowcount, executemany=many)

    def on_error(ctx: Any) -> None:
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


def echo_to_stderr(engine: Engine) -> None:
    """SQLAlchemy's echo (``DEBUG=1``) on stderr, masked, never on stdout; no parameters.

    SQLAlchemy gives an echoing engine's logger a handler on *stdout*, which would mix SQL
    into ``--json`` output. Its handlers are replaced by one on stderr whose lines are
    masked like every other log line, and bound parameters (tokens, phone numbers) are
    hidden altogether (``hide_parameters``).
    """
    engine.hide_parameters = True
    names = [name for name in logging.Logger.manager.loggerDict if name.startswith("sqlalchemy.")]
    for name in names:
        target = logging.getLogger(name)
        for handler in list(target.handlers):
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and stream in (
                sys.stdout,
                sys.__stdout__,
            ):
                target.removeHandler(handler)
                replacement = _StderrHandler()
                replacement.setFormatter(_MaskingFormatter(handler.formatter))
                target.addHandler(replacement)


class _MaskingFormatter(logging.Formatter):
    """Another formatter's lines with phones, passwords and key values masked."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(self.inner.format(record))


# -- handlers ---------------------------------------------------------------------------------
def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the spec's fields first."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "hotelbot_db", None) or _base_fields("LOG", None)
        line: dict[str, Any] = {"timestamp": _timestamp(record), "level": record.levelname}
        for key in _FIELDS[2:]:
            if key in fields:
                line[key] = fields[key]
        line["message"] = mask_text(record.getMessage())
        for key, value in fields.items():
            if key not in line:
                line[key] = value
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One readable line per record, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "hotelbot_db", None) or {}
        parts = [
            datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3],
            f"{record.levelname:<7}",
            fields.get("operation") or "",
        ]
        if fields.get("table"):
            parts.append(str(fields["table"]))
        if fields.get("query_time_ms") is not None:
            parts.append(f"{fields['query_time_ms']:.2f}ms")
        if fields.get("rows_affected") is not None:
            parts.append(f"rows={fields['rows_affected']}")
        if fields.get("hotel_id"):
            parts.append(f"hotel={fields['hotel_id']}")
        if fields.get("correlation_id"):
            parts.append(f"[{fields['correlation_id']}]")
        parts.append(mask_text(record.getMessage()))
        for key in ("sql", "params", "error", "host", "retry", "plan_hint"):
            if fields.get(key) not in (None, "", [], {}):
                value = fields[key]
                parts.append(
                    f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
                )
        return " ".join(p for p in parts if p)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test capture, redirection)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


_handler: logging.Handler | None = None


def configure(
    *,
    log_sql: bool | None = None,
    log_file: str | os.PathLike[str] | None = None,
    log_format: str = "auto",
    service: str | None = None,
    slow_ms: float | None = None,
) -> LogConfig:
    """Install the ``hotelbot.db`` handler (replacing one installed before) and the config.

    ``log_sql`` None follows HOTELBOT_ENV / HOTELBOT_LOG_SQL. ``log_format``: ``json``,
    ``text`` or ``auto`` (text on a terminal, JSON otherwise and always in a file).
    Unless logging is asked for (all statements, a file, or an explicit format), no handler
    is installed: a command's stderr stays its one-line diagnostics.
    """
    global _handler  # noqa: PLW0603 - the one handler we own
    cfg = LogConfig.from_env()
    if log_sql is not None:
        cfg = replace(cfg, log_all=log_sql or cfg.log_all)
    if service:
        cfg = replace(cfg, service=service)
    if slow_ms is not None:
        cfg = replace(cfg, slow_ms=slow_ms)
    set_config(cfg)
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
        _handler = None
    fmt = (log_format or "auto").lower()
    if fmt not in {"auto", "json", "text"}:
        from hotelbot_cli.errors import UsageError

        raise UsageError(f"log format {log_format!r} is not known", "use auto, json or text")
    if not (cfg.log_all or log_file or fmt != "auto"):
        logger.setLevel(logging.WARNING)
        logger.propagate = False  # the NullHandler keeps it silent
        return cfg
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(os.fspath(log_file), encoding="utf-8", delay=True)
        tty = False
    else:
        handler = _StderrHandler()
        tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
    use_text = fmt == "text" or (fmt == "auto" and tty)
    handler.setFormatter(TextFormatter() if use_text else JsonFormatter())
    handler.setLevel(logging.DEBUG if cfg.log_all else logging.WARNING)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if cfg.log_all else logging.WARNING)
    logger.propagate = False
    _handler = handler
    return cfg


def unconfigure() -> None:
    """Remove the handler :func:`configure` installed (tests, embedding applications)."""
    global _handler  # noqa: PLW0603
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
        _handler = None
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    set_config(None)
