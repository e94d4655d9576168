"""Configuration from the environment, URL normalising and redacted display.

Everything here is cheap to import: SQLAlchemy's URL type is imported only when
a URL is actually parsed.
"""

from __future__ import annotations

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
        url = env.get("DATABASE_URL") or None
        app_url = env.get("HOTELBOT_APP_DATABASE_URL") or None
        return cls(
            database_url=url.strip() if url else None,
            pool=pool,
            echo=debug_echo(env),
            connect_timeout=int(_env_number(env, "HOTELBOT_CONNECT_TIMEOUT", 5, minimum=1)),
            lock_timeout=_env_number(env, "HOTELBOT_LOCK_TIMEOUT", 60.0),
            data_dir=env.get("HOTELBOT_DATA_DIR") or None,
            app_database_url=app_url.strip() if app_url else None,
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


def tenant_key_from_env() -> bytes | None:
    """The key that signs tenants (HOTELBOT_TENANT_KEY, hex), or None when not configured."""
    raw = os.environ.get("HOTELBOT_TENANT_KEY")
    return _parse_key(raw) if raw else None


def tenant_ttl_from_env() -> int:
    """Seconds a tenant signature stays valid (HOTELBOT_TENANT_TTL, default 300)."""
    raw = os.environ.get("HOTELBOT_TENANT_TTL")
    return 300 if not raw else int(_env_number(os.environ, "HOTELBOT_TENANT_TTL", 300, minimum=1))


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
    env = os.environ if env is None else env
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
