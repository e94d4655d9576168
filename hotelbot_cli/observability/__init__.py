"""Observability: structured SQL logs, correlation ids, pool metrics, monitoring, middleware.

Importing this package is cheap (no SQLAlchemy); :func:`instrument` is what
``make_engine`` calls for every engine it makes.
"""

from __future__ import annotations

from typing import Any

from hotelbot_cli.observability.context import (
    bind_correlation_id,
    bind_tenant,
    current_correlation_id,
    current_hotel_id,
    new_correlation_id,
    set_correlation_id,
)


def instrument(engine: Any) -> None:
    """Attach pool metrics and SQL logging to ``engine`` (sync or async); idempotent."""
    from hotelbot_cli.observability import sql_events

    sql_events.instrument(getattr(engine, "sync_engine", engine))


def raw_connection(engine: Any) -> Any:
    """``engine.raw_connection()`` whose psycopg statements are logged like the engine's."""
    from hotelbot_cli.observability.cursor import raw_connection as _raw_connection

    return _raw_connection(engine)


def instrument_driver(conn: Any) -> Any:
    """Log every statement of a psycopg (sync or async) connection one already holds."""
    from hotelbot_cli.observability.cursor import instrument_driver as _instrument_driver

    return _instrument_driver(conn)


def metrics_for(engine: Any) -> Any:
    """The :class:`~hotelbot_cli.observability.metrics.PoolMetrics` of ``engine``."""
    from hotelbot_cli.observability.metrics import metrics_for as _metrics_for

    return _metrics_for(engine)


__all__ = [
    "bind_correlation_id",
    "bind_tenant",
    "current_correlation_id",
    "current_hotel_id",
    "instrument",
    "instrument_driver",
    "metrics_for",
    "new_correlation_id",
    "raw_connection",
    "set_correlation_id",
]
