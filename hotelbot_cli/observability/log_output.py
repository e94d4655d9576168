"""Where database log lines go and how they read: JSON lines or text, stderr or a file.

:func:`configure` installs the one ``hotelbot.db`` handler (the CLI does, from ``--log-sql``,
``--log-file`` and ``--log-format``) together with the :class:`LogConfig` in force;
:func:`echo_to_stderr` moves SQLAlchemy's own echo off stdout. Every line is masked.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from hotelbot_cli.observability.log_config import LogConfig, set_config
from hotelbot_cli.observability.masking import mask_text
from hotelbot_cli.observability.sql_log import FIELDS_ATTR, base_fields, logger

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: The spec's fields, in the order a JSON line shows them.
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


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the spec's fields first."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, FIELDS_ATTR, None) or base_fields("LOG", None)
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
        fields: dict[str, Any] = getattr(record, FIELDS_ATTR, None) or {}
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
