"""Configuration from the environment, URL normalising and redacted display.

The one place that reads hotelbot's environment variables (HOTELBOT_*, DATABASE_URL, the
PG* ones it looks at): each has a typed accessor here, and a malformed value is one
ConfigError naming the variable (exit 2), wherever it is read. Everything here is cheap to
import: SQLAlchemy's URL type is imported only when a URL is actually parsed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from hotelbot_cli.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: Every environment variable we read, with its default and meaning (rendered in the README).
ENV_VARS: dict[str, tuple[str, str]] = {
    "DATABASE_URL": (
        "(embedded server)",
        "the owner's PostgreSQL URL; unset → the embedded server",
    ),
    "HOTELBOT_APP_DATABASE_URL": (
        "(unset)",
        "the bot's own login (`hotelbot db create-login`); tenant sessions use it",
    ),
    "HOTELBOT_TENANT_KEY": (
        "(unset)",
        "hex key that signs the tenant (secret; `db create-login` writes it to a 0600 file)",
    ),
    "HOTELBOT_TENANT_TTL": ("300", "seconds a tenant signature stays valid"),
    "HOTELBOT_PREPARE_THRESHOLD": (
        "5 (none with HOTELBOT_POOL=null)",
        "psycopg prepare_threshold; `none` never prepares (PgBouncer < 1.21)",
    ),
    "HOTELBOT_DATA_DIR": ("platformdirs user data dir", "where the embedded server keeps its data"),
    "HOTELBOT_POOL": ("queue", "`queue` (pooled) or `null` (no pooling, behind PgBouncer)"),
    "HOTELBOT_POOL_SIZE": ("5", "connections kept in the pool"),
    "HOTELBOT_MAX_OVERFLOW": ("10", "extra connections allowed above the pool size"),
    "HOTELBOT_POOL_TIMEOUT": ("30", "seconds to wait for a free connection"),
    "HOTELBOT_POOL_RECYCLE": ("1800", "seconds after which a connection is replaced"),
    "HOTELBOT_POOL_PRE_PING": ("true", "test a connection on checkout (one extra round trip)"),
    "HOTELBOT_CONNECT_TIMEOUT": ("5", "seconds to wait when opening a connection"),
    "HOTELBOT_LOCK_TIMEOUT": ("60", "seconds to wait for the migration lock"),
    "DEBUG": (
        "false",
        "`true` echoes every SQL statement on stderr (SQLAlchemy echo, parameters hidden);"
        " values that are not booleans are ignored",
    ),
    "HOTELBOT_ENV": ("production", "`development` logs every SQL statement (JSON lines)"),
    "HOTELBOT_LOG_SQL": ("false", "`true` logs every SQL statement, as `--log-sql`"),
    "HOTELBOT_SLOW_QUERY_MS": ("100", "statements slower than this are logged at WARNING"),
    "HOTELBOT_SERVICE_NAME": ("whatsapp-hotel-bot", "`service` field of database log lines"),
    "HOTELBOT_LOG_FORMAT": ("auto", "database log format: `auto`, `json` or `text`"),
    "HOTELBOT_LOG_FILE": ("(stderr)", "append database log lines to this file"),
}

_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "postgresql+psycopg3": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean", "use true or false")


def _env_number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def debug_echo(env: Mapping[str, str]) -> bool:
    """``DEBUG`` as SQLAlchemy echo: a true boolean echoes; anything else does not.

    DEBUG is a generic name other tools set to all kinds of values (``DEBUG='*'`` for
    node's debug, ``DEBUG=express:*``…): only 1/true/yes/on turns echo on, and a value
    that is not a boolean is ignored instead of making every command fail.
    """
    return (env.get("DEBUG") or "").strip().lower() in _TRUE


def env_text(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A text variable, stripped; None when unset or blank (blank means "not set")."""
    raw = _environ(env).get(name)
    return raw.strip() if raw and raw.strip() else None


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """A boolean variable (1/true/yes/on, 0/false/no/off); anything else is a ConfigError."""
    return _env_bool(_environ(env), name, default)


def env_number(
    name: str, default: float, env: Mapping[str, str] | None = None, minimum: float = 0
) -> float:
    """A number variable, at least ``minimum``; blank is the default; else a ConfigError."""
    return _env_number(_environ(env), name, default, minimum)


def env_count(
    name: str, default: int, env: Mapping[str, str] | None = None, minimum: int = 0
) -> int:
    """A whole-number variable (``5``, not ``5.5`` or ``five``); else a ConfigError."""
    value = _env_number(_environ(env), name, default, minimum)
    if not math.isfinite(value) or value != int(value):
        raise ConfigError(f"{name}={_environ(env).get(name)!r} is not a whole number")
    return int(value)


def debug_requested(env: Mapping[str, str] | None = None) -> bool:
    """HOTELBOT_DEBUG: 1/true/yes shows tracebacks; anything else does not.

    Read before anything else, to decide how errors are shown: a malformed value must not
    itself become an error nobody can debug, so it is ignored as DEBUG's is.
    """
    return (_environ(env).get("HOTELBOT_DEBUG") or "").strip().lower() in {"1", "true", "yes"}


def database_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """DATABASE_URL (the owner's server), or None: the embedded server is used."""
    return env_text("DATABASE_URL", env)


def app_database_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """HOTELBOT_APP_DATABASE_URL: the bot's own login, or None."""
    return env_text("HOTELBOT_APP_DATABASE_URL", env)


def app_password_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """HOTELBOT_APP_PASSWORD for ``db create-login`` (as given, not stripped), or None."""
    return _environ(env).get("HOTELBOT_APP_PASSWORD") or None


def data_dir_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """HOTELBOT_DATA_DIR: the embedded server's data directory itself, or None."""
    return _environ(env).get("HOTELBOT_DATA_DIR") or None


def migration_lock_timeout(env: Mapping[str, str] | None = None) -> float:
    """HOTELBOT_MIGRATION_LOCK_TIMEOUT: seconds any migration lock wait may queue (2)."""
    return env_number("HOTELBOT_MIGRATION_LOCK_TIMEOUT", 2.0, env, minimum=0.01)


def migration_lock_retries(env: Mapping[str, str] | None = None) -> int:
    """HOTELBOT_MIGRATION_LOCK_RETRIES: retries of a step whose lock timed out (5)."""
    return env_count("HOTELBOT_MIGRATION_LOCK_RETRIES", 5, env)


def migration_small_table_bytes(env: Mapping[str, str] | None = None) -> int:
    """HOTELBOT_MIGRATION_SMALL_TABLE_BYTES: below this a table is changed in one go (8 MB)."""
    return env_count("HOTELBOT_MIGRATION_SMALL_TABLE_BYTES", 8 * 1024 * 1024, env)


def migration_batch_rows(env: Mapping[str, str] | None = None) -> int:
    """HOTELBOT_MIGRATION_BATCH_ROWS: rows per backfill batch (5000)."""
    return env_count("HOTELBOT_MIGRATION_BATCH_ROWS", 5000, env, minimum=1)


#: libpq's environment variables: meant for the user's servers, never for the embedded one.
_LIBPQ_ENV = re.compile(r"^PG[A-Z_]+$")


def libpq_env_names(env: Mapping[str, str] | None = None) -> list[str]:
    """The PG* variables set in ``env`` (default: this process's environment)."""
    return sorted(name for name in _environ(env) if _LIBPQ_ENV.match(name))


@dataclass(frozen=True)
class LogSettings:
    """The SQL log's environment: HOTELBOT_ENV, _LOG_SQL, _SLOW_QUERY_MS, _SERVICE_NAME."""

    environment: str
    log_sql: bool
    slow_ms: float | None  # None: the log's default
    service: str | None  # None: the log's default


def log_settings(env: Mapping[str, str] | None = None) -> LogSettings:
    """What the SQL log reads from the environment (a malformed number is a ConfigError)."""
    env = _environ(env)
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
        env = os.environ if env is None else env
        kind = env.get("HOTELBOT_POOL", "queue").strip().lower() or "queue"
        if kind not in {"queue", "null"}:
            raise ConfigError(f"HOTELBOT_POOL={kind!r} is not known", "use queue or null")
        pool = PoolSettings(
            kind=kind,
            size=int(_env_number(env, "HOTELBOT_POOL_SIZE", 5, minimum=1)),
            max_overflow=int(_env_number(env, "HOTELBOT_MAX_OVERFLOW", 10)),
            timeout=_env_number(env, "HOTELBOT_POOL_TIMEOUT", 30.0),
            recycle=int(_env_number(env, "HOTELBOT_POOL_RECYCLE", 1800, minimum=-1)),
            pre_ping=_env_bool(env, "HOTELBOT_POOL_PRE_PING", True),
        )
        return cls(
            database_url=database_url_from_env(env),
            pool=pool,
            echo=debug_echo(env),
            connect_timeout=int(_env_number(env, "HOTELBOT_CONNECT_TIMEOUT", 5, minimum=1)),
            lock_timeout=_env_number(env, "HOTELBOT_LOCK_TIMEOUT", 60.0),
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
    return int(_env_number(env, "HOTELBOT_PREPARE_THRESHOLD", 5))


@lru_cache(maxsize=4)
def _parse_key(raw: str) -> bytes:
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigError(
            "HOTELBOT_TENANT_KEY is not a hex key of at least 16 bytes",
            "copy it from the file `hotelbot db create-login` wrote",
        )
    return key


def tenant_key_from_env(env: Mapping[str, str] | None = None) -> bytes | None:
    """The key that signs tenants (HOTELBOT_TENANT_KEY, hex), or None when not configured."""
    raw = _environ(env).get("HOTELBOT_TENANT_KEY")
    return _parse_key(raw) if raw else None


def tenant_ttl_from_env(env: Mapping[str, str] | None = None) -> int:
    """Seconds a tenant signature stays valid (HOTELBOT_TENANT_TTL, default 300)."""
    return int(env_number("HOTELBOT_TENANT_TTL", 300, env, minimum=1))


def split_user_info(rest: str) -> tuple[str | None, str]:
    """``user[:password]`` and what follows it, for the text after ``scheme://``.

    The user info ends at the LAST ``@`` of the authority, as in WHATWG URLs and Python's
    urllib, so a password with a raw ``@`` (``u:p@ss@host``) keeps it and the host is
    ``host``. (libpq and SQLAlchemy stop at the first ``@`` and would send ``ss@host`` to
    DNS: a piece of the password.) The authority ends at the first ``/`` or ``?`` after the
    first ``@``; an ``@`` after a ``/`` or ``?`` with no user info before it (``h/db?user=a@b``)
    or after ``host:port/`` belongs to the path or query.
    """
    at = rest.find("@")
    if at < 0:
        return None, rest
    user, colon, password = rest[:at].partition(":")
    if any(c in user for c in "/?"):
        return None, rest  # the first "@" is in the path or the query
    if (
        colon
        and re.fullmatch(r"\d*", re.split(r"[/?]", password, maxsplit=1)[0])
        and (re.search(r"[/?]", password))
    ):
        return None, rest  # host:port/… with an "@" further on
    ends = [i for i in (rest.find("/", at), rest.find("?", at)) if i >= 0]
    last = rest.rfind("@", 0, min(ends) if ends else len(rest))
    return rest[:last], rest[last + 1 :]


def _requote_user_info(rest: str) -> str:
    """``rest`` with its user name and password percent-encoded (already-encoded stays so)."""
    from urllib.parse import quote, unquote

    info, tail = split_user_info(rest)
    if info is None:  # an "@" here is in the path or query: keep SQLAlchemy from splitting there
        return rest.replace("@", "%40")
    user, colon, password = info.partition(":")
    user = quote(unquote(user), safe="")
    return user + (":" + quote(unquote(password), safe="") if colon else "") + "@" + tail


def display_url(raw: str) -> str:
    """Any text given as a URL, as it may be shown: never its password, however spelled."""
    text = raw.strip()
    if "://" in text:
        scheme, rest = text.split("://", 1)
        info, tail = split_user_info(rest)
        if info is not None:
            user, colon, _ = info.partition(":")
            text = f"{scheme}://{user}{':***' if colon else ''}@{tail}"
    return _KEYWORD_PASSWORD.sub(r"\1\2***", text)


def normalize_url(raw: str, name: str = "DATABASE_URL") -> URL:
    """Parse any accepted spelling of a PostgreSQL URL into one that uses psycopg 3.

    Accepts ``postgres://``, ``postgresql://``, ``postgresql+psycopg://`` and
    ``postgresql+asyncpg://``; anything else is a :class:`ConfigError` (exit 2) that shows
    the value with its password hidden (``name`` is the variable it came from). A raw ``@``
    in the password is kept in the password (see :func:`split_user_info`).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = raw.strip()
    if "://" not in text:
        raise ConfigError(
            f"{name} {display_url(text)!r} is not a URL",
            "expected postgresql://user:password@host:5432/dbname",
        )
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"{name} uses {scheme}://, which is not PostgreSQL",
            "hotelbot needs postgresql://user:password@host:5432/dbname",
        )
    try:
        url = make_url(_SCHEMES[scheme] + "://" + _requote_user_info(rest))
        _ = url.port  # a non-numeric port raises here
    except (ArgumentError, ValueError) as exc:
        reason, password = redact_text(str(exc)), url_password(text)
        if password and password in reason:
            reason = "cannot parse it"
        raise ConfigError(
            f"{name} {display_url(text)!r} is malformed: {reason}",
            "expected postgresql://user:password@host:5432/dbname"
            " (percent-encode special characters in the password)",
        ) from None
    if not url.database:
        url = url.set(database=libpq_default_database(url.username))
    return url


def url_password(raw: str) -> str | None:
    """The password in a URL's user info, as written (None when it has none)."""
    if "://" not in raw:
        return None
    info, _ = split_user_info(raw.strip().split("://", 1)[1])
    if info is None or ":" not in info:
        return None
    return info.partition(":")[2] or None


def libpq_default_database(username: str | None, env: Mapping[str, str] | None = None) -> str:
    """The database libpq connects to when a URL names none: PGDATABASE, else the user name.

    The user name is the URL's, else PGUSER, else the operating-system user, as in libpq.
    """
    env = _environ(env)
    if env.get("PGDATABASE"):
        return env["PGDATABASE"]
    if username or env.get("PGUSER"):
        return username or env["PGUSER"]
    import getpass

    return getpass.getuser()


def async_url(url: URL) -> URL:
    """The same URL for SQLAlchemy's async engine (psycopg 3 serves both)."""
    return url.set(drivername="postgresql+psycopg_async")


def libpq_url(url: URL) -> str:
    """A plain libpq URL (for psycopg.connect, psql and pgbench)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def redact_url(url: URL | str) -> str:
    """The URL as it may be shown or logged: every password replaced by ***.

    A parsed URL is shown as a user writes it: ``postgresql://``, no ``:***`` for an empty
    password (the embedded server has none), socket paths with their slashes.
    """
    if isinstance(url, str):
        return redact_text(url)
    shown = url.set(drivername="postgresql")
    if not url.password:
        shown = shown._replace(password=None)  # URL.set(password=None) would keep it
    return redact_text(shown.render_as_string(hide_password=True)).replace("%2F", "/")


#: ``scheme://user:password@`` up to the LAST ``@`` of the URL (a password may hold ``@``).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")
#: ``password=…`` in a query string or a keyword DSN, quoted or not.
_KEYWORD_PASSWORD = re.compile(
    r"""\b((?:ssl)?pass(?:word|wd)?|pwd)(\s*=\s*)"""
    # already redacted (a second pass keeps the quote that follows), quoted, or bare
    r"""(\*\*\*(?=$|[\s&;'"])|'(?:[^'\\]|\\.)*'|"[^"]*"|(?:\\.|[^\s&;\\])+)""",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Hide passwords in arbitrary text: URL user info, ``?password=``, keyword DSNs."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _KEYWORD_PASSWORD.sub(r"\1\2***", text)
