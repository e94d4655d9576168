"""Configuration from the environment, URL normalising and redacted display.

The one place that reads hotelbot's environment variables (HOTELBOT_*, DATABASE_URL, the
PG* ones it looks at): each has a typed accessor here, and a malformed value is one
ConfigError naming the variable (exit 2), wherever it is read. Everything here is cheap to
import: SQLAlchemy's URL type is imported only when a URL is actually parsed.

This package's modules each do one job (:mod:`.variables` lists the variables, :mod:`.env`
reads one, :mod:`.connection`, :mod:`.migration`, :mod:`.tenant` and :mod:`.log` read their
subsystem's, :mod:`.urls` parses URLs, :mod:`.redaction` hides passwords); the names below
are the public API, imported from ``hotelbot_cli.settings``.
"""

from __future__ import annotations

from hotelbot_cli.settings.connection import (
    PoolSettings,
    Settings,
    app_database_url_from_env,
    app_password_from_env,
    data_dir_from_env,
    database_url_from_env,
    libpq_env_names,
)
from hotelbot_cli.settings.env import (
    debug_echo,
    debug_requested,
    env_bool,
    env_count,
    env_number,
    env_text,
)
from hotelbot_cli.settings.log import LogSettings, log_settings
from hotelbot_cli.settings.migration import (
    migration_batch_rows,
    migration_lock_retries,
    migration_lock_timeout,
    migration_small_table_bytes,
)
from hotelbot_cli.settings.redaction import display_url, redact_text, redact_url
from hotelbot_cli.settings.tenant import tenant_key_from_env, tenant_ttl_from_env
from hotelbot_cli.settings.urls import async_url, libpq_default_database, libpq_url, normalize_url
from hotelbot_cli.settings.user_info import split_user_info, url_password
from hotelbot_cli.settings.variables import ENV_VARS, EnvVar

__all__ = [
    "ENV_VARS",
    "EnvVar",
    "LogSettings",
    "PoolSettings",
    "Settings",
    "app_database_url_from_env",
    "app_password_from_env",
    "async_url",
    "data_dir_from_env",
    "database_url_from_env",
    "debug_echo",
    "debug_requested",
    "display_url",
    "env_bool",
    "env_count",
    "env_number",
    "env_text",
    "libpq_default_database",
    "libpq_env_names",
    "libpq_url",
    "log_settings",
    "migration_batch_rows",
    "migration_lock_retries",
    "migration_lock_timeout",
    "migration_small_table_bytes",
    "normalize_url",
    "redact_text",
    "redact_url",
    "split_user_info",
    "tenant_key_from_env",
    "tenant_ttl_from_env",
    "url_password",
]
