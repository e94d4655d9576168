"""Every variable hotelbot reads is parsed in settings: a malformed value is one ConfigError."""

from __future__ import annotations

import pytest

from hotelbot_cli import settings
from hotelbot_cli.errors import EXIT_USAGE, ConfigError
from hotelbot_cli.observability.log_config import LogConfig


@pytest.mark.parametrize(
    ("read", "name", "raw", "message"),
    [
        (
            settings.migration_lock_timeout,
            "HOTELBOT_MIGRATION_LOCK_TIMEOUT",
            "soon",
            "not a number",
        ),
        (settings.migration_lock_timeout, "HOTELBOT_MIGRATION_LOCK_TIMEOUT", "0", "at least 0.01"),
        (settings.migration_lock_retries, "HOTELBOT_MIGRATION_LOCK_RETRIES", "2.5", "whole number"),
        (settings.migration_lock_retries, "HOTELBOT_MIGRATION_LOCK_RETRIES", "inf", "whole number"),
        (
            settings.migration_small_table_bytes,
            "HOTELBOT_MIGRATION_SMALL_TABLE_BYTES",
            "8MB",
            "number",
        ),
        (settings.migration_batch_rows, "HOTELBOT_MIGRATION_BATCH_ROWS", "0", "at least 1"),
        (settings.tenant_ttl_from_env, "HOTELBOT_TENANT_TTL", "5m", "not a number"),
        (LogConfig.from_env, "HOTELBOT_SLOW_QUERY_MS", "fast", "not a number"),
        (LogConfig.from_env, "HOTELBOT_LOG_SQL", "maybe", "not a boolean"),
    ],
)
def test_a_malformed_value_names_the_variable(read, name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        read({name: raw})
    assert f"{name}={raw!r}" in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_defaults_and_well_formed_values() -> None:
    assert settings.migration_lock_timeout({}) == 2.0
    assert settings.migration_lock_retries({"HOTELBOT_MIGRATION_LOCK_RETRIES": " 3 "}) == 3
    assert settings.migration_small_table_bytes({}) == 8 * 1024 * 1024
    assert settings.migration_batch_rows({"HOTELBOT_MIGRATION_BATCH_ROWS": "500"}) == 500
    assert settings.tenant_ttl_from_env({"HOTELBOT_TENANT_TTL": ""}) == 300
    assert settings.database_url_from_env({"DATABASE_URL": "   "}) is None
    assert settings.app_database_url_from_env({"HOTELBOT_APP_DATABASE_URL": " u "}) == "u"
    assert settings.data_dir_from_env({}) is None
    assert settings.libpq_env_names({"PGPORT": "1", "PGHOST": "h", "HOME": "/"}) == [
        "PGHOST",
        "PGPORT",
    ]
    config = LogConfig.from_env({"HOTELBOT_SLOW_QUERY_MS": "-5", "HOTELBOT_LOG_SQL": "on"})
    assert config.slow_ms == 0 and config.log_all


def test_debug_flag_is_never_an_error() -> None:
    """HOTELBOT_DEBUG decides how errors look, so it cannot be one itself."""
    assert settings.debug_requested({"HOTELBOT_DEBUG": "yes"})
    assert not settings.debug_requested({"HOTELBOT_DEBUG": "maybe"})


def test_cli_reports_a_malformed_variable_in_one_line(cli, monkeypatch) -> None:
    monkeypatch.setenv("HOTELBOT_LOG_SQL", "maybe")
    code, out, err = cli("db", "heads")
    assert code == EXIT_USAGE and out == ""
    assert err == "error: HOTELBOT_LOG_SQL='maybe' is not a boolean (use true or false)\n"
