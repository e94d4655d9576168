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
    from hotelbot_cli.observability import sql_log

    sql_log.instrument(getattr(engine, "sync_engine", engine))


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
    "metrics_for",
    "new_correlation_id",
    "set_correlation_id",
]
