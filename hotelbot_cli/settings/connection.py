"""Where and how the library connects: server URLs, pool, timeouts, echo, libpq's variables.

:class:`Settings` is what ``make_engine`` needs, read from DATABASE_URL,
HOTELBOT_APP_DATABASE_URL, HOTELBOT_POOL*, HOTELBOT_*_TIMEOUT, HOTELBOT_PREPARE_THRESHOLD,
HOTELBOT_DATA_DIR and DEBUG; each of those sources also has its own accessor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from hotelbot_cli.errors import ConfigError
from hotelbot_cli.settings.env import debug_echo, env_bool, env_number, env_text, environment


def database_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """DATABASE_URL (the owner's server), or None: the embedded server is used."""
    return env_text("DATABASE_URL", env)


def app_database_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """HOTELBOT_APP_DATABASE_URL: the bot's own login, or None."""
    return env_text("HOTELBOT_APP_DATABASE_URL", env)


def app_password_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """HOTELBOT_APP_PASSWORD for ``db create-login`` (as given, not stripped), or None."""
    return environment(env).get("HOTELBOT_APP_PASSWORD") or None


def data_dir_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """HOTELBOT_DATA_DIR: the embedded server's data directory itself, or None."""
    return environment(env).get("HOTELBOT_DATA_DIR") or None


#: libpq's environment variables: meant for the user's servers, never for the embedded one.
_LIBPQ_ENV = re.compile(r"^PG[A-Z_]+$")


def libpq_env_names(env: Mapping[str, str] | None = None) -> list[str]:
    """The PG* variables set in ``env`` (default: this process's environment)."""
    return sorted(name for name in environment(env) if _LIBPQ_ENV.match(name))


@dataclass(frozen=True)
class PoolSettings:
    """Connection pool configuration (SQLAlchemy QueuePool or NullPool)."""

    kind: str = "queue"
    size: int = 5
    max_overflow: int = 10
    timeout: float = 30.0
    recycle: int = 1800
    pre_ping: bool = True


@dataclass(frozen=True)
class Settings:
    """What the library needs to know about its environment."""

    database_url: str | None
    pool: PoolSettings
    echo: bool = False
    connect_timeout: int = 5
    lock_timeout: float = 60.0
    data_dir: str | None = None
    app_database_url: str | None = None
    prepare_threshold: int | None = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = environment(env)
        kind = env.get("HOTELBOT_POOL", "queue").strip().lower() or "queue"
        if kind not in {"queue", "null"}:
            raise ConfigError(f"HOTELBOT_POOL={kind!r} is not known", "use queue or null")
        pool = PoolSettings(
            kind=kind,
            size=int(env_number("HOTELBOT_POOL_SIZE", 5, env, minimum=1)),
            max_overflow=int(env_number("HOTELBOT_MAX_OVERFLOW", 10, env)),
            timeout=env_number("HOTELBOT_POOL_TIMEOUT", 30.0, env),
            recycle=int(env_number("HOTELBOT_POOL_RECYCLE", 1800, env, minimum=-1)),
            pre_ping=env_bool("HOTELBOT_POOL_PRE_PING", True, env),
        )
        return cls(
            database_url=database_url_from_env(env),
            pool=pool,
            echo=debug_echo(env),
            connect_timeout=int(env_number("HOTELBOT_CONNECT_TIMEOUT", 5, env, minimum=1)),
            lock_timeout=env_number("HOTELBOT_LOCK_TIMEOUT", 60.0, env),
            data_dir=data_dir_from_env(env),
            app_database_url=app_database_url_from_env(env),
            prepare_threshold=_prepare_threshold(env, kind),
        )


def _prepare_threshold(env: Mapping[str, str], pool_kind: str) -> int | None:
    """psycopg's prepare_threshold: never prepare behind an external pooler (PgBouncer < 1.21
    loses server-side prepared statements between transactions)."""
    raw = env.get("HOTELBOT_PREPARE_THRESHOLD", "").strip().lower()
    if raw in {"none", "null", "off"}:
        return None
    if raw == "":
        return None if pool_kind == "null" else 5
    return int(env_number("HOTELBOT_PREPARE_THRESHOLD", 5, env))
