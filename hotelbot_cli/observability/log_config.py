"""What the SQL log shows: every statement (development) or only slow ones and errors.

One :class:`LogConfig` is in force per process; it is read from the environment on first
use (HOTELBOT_ENV, HOTELBOT_LOG_SQL, HOTELBOT_SLOW_QUERY_MS, HOTELBOT_SERVICE_NAME, parsed by
:func:`hotelbot_cli.settings.log_settings`) until :func:`set_config` replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SERVICE = "whatsapp-hotel-bot"
DEFAULT_SLOW_MS = 100.0


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
