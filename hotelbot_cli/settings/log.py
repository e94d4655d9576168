"""What the SQL log reads from the environment (HOTELBOT_ENV, HOTELBOT_LOG_SQL, …).

Parsed here, turned into the log's own configuration by
:class:`hotelbot_cli.observability.log_config.LogConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hotelbot_cli.settings.env import env_bool, env_number, env_text, environment


@dataclass(frozen=True)
class LogSettings:
    """The SQL log's environment: HOTELBOT_ENV, _LOG_SQL, _SLOW_QUERY_MS, _SERVICE_NAME."""

    environment: str
    log_sql: bool
    slow_ms: float | None  # None: the log's default
    service: str | None  # None: the log's default


def log_settings(env: Mapping[str, str] | None = None) -> LogSettings:
    """What the SQL log reads from the environment (a malformed number is a ConfigError)."""
    env = environment(env)
    raw_slow = env_text("HOTELBOT_SLOW_QUERY_MS", env)
    return LogSettings(
        environment=(env.get("HOTELBOT_ENV") or "production").strip().lower(),
        log_sql=env_bool("HOTELBOT_LOG_SQL", False, env),
        # a negative threshold is read as 0 (every statement is slow), as it always was
        slow_ms=None
        if raw_slow is None
        else max(env_number("HOTELBOT_SLOW_QUERY_MS", 0, env, -math.inf), 0.0),
        service=env_text("HOTELBOT_SERVICE_NAME", env),
    )
