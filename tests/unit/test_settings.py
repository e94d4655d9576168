"""Settings from the environment and URL normalising (no database needed)."""

from __future__ import annotations

import pytest

from hotelbot_cli.errors import ConfigError
from hotelbot_cli.settings import (
    ENV_VARS,
    Settings,
    async_url,
    libpq_url,
    normalize_url,
    redact_text,
    redact_url,
)


@pytest.mark.parametrize(
    "raw",
    [
        "postgres://u:p@h:5433/db",
        "postgresql://u:p@h:5433/db",
        "postgresql+psycopg://u:p@h:5433/db",
        "postgresql+asyncpg://u:p@h:5433/db",
        "  postgresql+psycopg2://u:p@h:5433/db  ",
    ],
)
def test_every_spelling_becomes_psycopg3(raw: str) -> None:
    url = normalize_url(raw)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u",
        "p",
        "h",
        5433,
        "db",
    )
    assert async_url(url).drivername == "postgresql+psycopg_async"
    assert libpq_url(url) == "postgresql://u:p@h:5433/db"


def test_socket_urls_and_missing_database() -> None:
    url = normalize_url("postgresql://postgres@/hotelbot?host=/tmp/sock")
    assert url.query["host"] == "/tmp/sock"
    assert normalize_url("postgresql://u@h").database == "u"  # libpq: the user name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://u@h/db", "not PostgreSQL"),
        ("sqlite:///x.db", "not PostgreSQL"),
        ("just-a-word", "not a URL"),
        ("postgresql://u:secret@h:port/db", "malformed"),
    ],
)
def test_bad_urls_are_config_errors_without_the_password(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        normalize_url(raw)
    assert "secret" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_redaction() -> None:
    assert redact_text("postgresql://u:s3cret@h/db and more") == "postgresql://u:***@h/db and more"
    assert "s3cret" not in redact_url(normalize_url("postgresql://u:s3cret@h/db"))
    assert redact_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.pool.kind == "queue" and settings.pool.size == 5 and settings.pool.pre_ping
    assert settings.echo is False and settings.lock_timeout == 60


def test_values_from_env() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": " postgresql://h/db ",
            "HOTELBOT_POOL": "NULL",
            "HOTELBOT_POOL_SIZE": "7",
            "HOTELBOT_POOL_TIMEOUT": "2.5",
            "HOTELBOT_POOL_PRE_PING": "no",
            "DEBUG": "TRUE",
            "HOTELBOT_LOCK_TIMEOUT": "",
        }
    )
    assert settings.database_url == "postgresql://h/db"
    assert settings.pool.kind == "null" and settings.pool.size == 7
    assert settings.pool.timeout == 2.5 and settings.pool.pre_ping is False
    assert settings.echo is True and settings.lock_timeout == 60


@pytest.mark.parametrize(
    "env",
    [
        {"HOTELBOT_POOL": "sometimes"},
        {"HOTELBOT_POOL_SIZE": "many"},
        {"HOTELBOT_POOL_SIZE": "0"},
        {"HOTELBOT_MAX_OVERFLOW": "-1"},
    ],
)
def test_bad_env_values(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_every_env_var_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [name for name in ENV_VARS if f"`{name}`" not in readme]
    assert not missing, f"README lacks: {missing}"
