"""Any accepted spelling of a PostgreSQL URL, parsed into one that uses psycopg 3.

SQLAlchemy's URL type is imported only when a URL is actually parsed: importing this
module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from hotelbot_cli.errors import ConfigError
from hotelbot_cli.settings.env import environment
from hotelbot_cli.settings.redaction import display_url, redact_text
from hotelbot_cli.settings.user_info import split_user_info, url_password

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "postgresql+psycopg3": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
}


def _requote_user_info(rest: str) -> str:
    """``rest`` with its user name and password percent-encoded (already-encoded stays so)."""
    from urllib.parse import quote, unquote

    info, tail = split_user_info(rest)
    if info is None:  # an "@" here is in the path or query: keep SQLAlchemy from splitting there
        return rest.replace("@", "%40")
    user, colon, password = info.partition(":")
    user = quote(unquote(user), safe="")
    return user + (":" + quote(unquote(password), safe="") if colon else "") + "@" + tail


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


def libpq_default_database(username: str | None, env: Mapping[str, str] | None = None) -> str:
    """The database libpq connects to when a URL names none: PGDATABASE, else the user name.

    The user name is the URL's, else PGUSER, else the operating-system user, as in libpq.
    """
    env = environment(env)
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
