"""The bot's dedicated login: LOGIN, a member of the app role, nothing else.

Made by the owner (who needs CREATEROLE, as for revision 007). The result carries the URL
with its password for the env file only; everything shown is redacted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from hotelbot_cli.db.tenant import APP_ROLE
from hotelbot_cli.errors import UsageError
from hotelbot_cli.observability import instrument_driver
from hotelbot_cli.settings import redact_url

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

#: Everything a login could do beyond acting as the app role, switched off.
ATTRIBUTES = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT"


@dataclass(frozen=True)
class LoginResult:
    """What ``create_login`` did: the redacted URL, whether the role existed, the env file."""

    name: str
    url: str
    created: bool
    env_file: str | None


def _env_lines(url: URL, key_hex: str) -> str:
    full = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return f"HOTELBOT_APP_DATABASE_URL={full}\nHOTELBOT_TENANT_KEY={key_hex}\n"


def write_env_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def password_verifier(conn: Any, name: str, password: str) -> str:
    """The password as the server stores it (a SCRAM-SHA-256 verifier), computed here.

    libpq's ``PQencryptPasswordConn`` (what psql's ``\\password`` uses), with the server's
    ``password_encryption``: the statement then carries no clear-text password, so none
    reaches the wire, the server's statement log, ``pg_stat_statements`` or our SQL log.
    """
    verifier = conn.pgconn.encrypt_password(password.encode(), name.encode())
    return bytes(verifier).decode()


def create_login(
    engine: Engine,
    name: str,
    password: str,
    *,
    app_role: str = APP_ROLE,
    env_file: Path | None = None,
) -> LoginResult:
    """Create (or re-password) login ``name`` as a member of ``app_role`` only.

    An existing role is brought back to these attributes and loses every other role
    membership, so re-running fixes a login someone widened. ``env_file`` receives
    ``HOTELBOT_APP_DATABASE_URL`` and ``HOTELBOT_TENANT_KEY`` with mode 0600.
    """
    from psycopg import sql

    if not _NAME.fullmatch(name):
        raise UsageError(f"login name {name!r} is not a plain lower-case identifier")
    if not password:
        raise UsageError("the password is empty", "set HOTELBOT_APP_PASSWORD or type one")
    role = sql.Identifier(name)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        instrument_driver(raw)  # logged like every statement (--log-sql), literals hidden
        exists = raw.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (name,))
        created = exists.fetchone() is None
        verb = sql.SQL("CREATE ROLE" if created else "ALTER ROLE")
        raw.execute(
            sql.SQL("{} {} {} PASSWORD {}").format(
                verb, role, sql.SQL(ATTRIBUTES), sql.Literal(password_verifier(raw, name, password))
            )
        )
        others = raw.execute(
            "SELECT r.rolname FROM pg_catalog.pg_auth_members m"
            " JOIN pg_catalog.pg_roles r ON r.oid = m.roleid"
            " JOIN pg_catalog.pg_roles u ON u.oid = m.member"
            " WHERE u.rolname = %s AND r.rolname <> %s",
            (name, app_role),
        ).fetchall()
        for (other,) in others:
            raw.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(other), role))
        raw.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(app_role), role))
        _pin_search_path(raw, role)
        key = raw.execute("SELECT encode(key, 'hex') FROM hotelbot_private.tenant_key").fetchone()
    url = engine.url.set(username=name, password=password)
    if env_file is not None:
        assert key is not None
        write_env_file(env_file, _env_lines(url, key[0]))
    shown = redact_url(url.set(drivername="postgresql"))
    return LoginResult(name, shown, created, str(env_file) if env_file else None)


#: This database (behind PgBouncer its alias may differ) and the schema the migrations
#: installed into: the one the owner's session finds ``hotels`` in.
_INSTALLED_SCHEMA = (
    "SELECT pg_catalog.current_database(), n.nspname FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = pg_catalog.to_regclass('hotels')"
)


def _pin_search_path(raw: Any, role: Any) -> None:
    """The login names our tables in the schema the migrations put them in, in this database.

    The bot's SQL names tables unqualified; the migrations create them in the owner's
    current schema. Where that is not the login's (a schema named after the owner, as
    PostgreSQL's secure usage pattern makes, comes first in the default ``"$user",
    public``), the bot would find no table, or another schema's. ``pg_temp`` last: a temp
    table never shadows ours (the app role has no TEMP either, revision 009).
    """
    from psycopg import sql

    row = raw.execute(_INSTALLED_SCHEMA).fetchone()
    if row is None:  # not migrated: nothing to name yet (the key read below says so)
        return
    raw.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}, pg_temp").format(
            role,
            sql.Identifier(row[0]),
            sql.Identifier(row[1]),
        )
    )
