"""The bot's own login for the bench: a role that is a member of app_user and nothing else.

Logged in as such a role, a tenant transaction needs no role statement (``SET ROLE``
or ``set_config('role', …)``): the policies ``TO app_user`` apply to its members. That
is how the bot runs, and the measured lever of the isolation cost (issue 13). The bench
uses ``HOTELBOT_APP_DATABASE_URL`` when it is set, else makes a throwaway login role for
its run (as the owner, with a random password) and drops it afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotelbot_cli.errors import UsageError

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

APP_URL_ENV = "HOTELBOT_APP_DATABASE_URL"


@dataclass(frozen=True)
class Login:
    """Where the tenant side connects, and how the report describes it."""

    url: URL
    description: str


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check(url: URL, app_role: str) -> None:
    """The given login must act as ``app_role`` with no role statement and bypass nothing."""
    import psycopg

    from hotelbot_cli.settings import libpq_url

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT r.rolsuper OR r.rolbypassrls, pg_has_role(current_user, %s, 'USAGE')"
            " FROM pg_roles r WHERE r.rolname = current_user",
            (app_role,),
        ).fetchone()
    if not row or row[0] or not row[1]:
        raise UsageError(
            f"{APP_URL_ENV} must log in as a role that inherits {app_role} and bypasses no RLS",
            f"GRANT {app_role} TO <bot login> (INHERIT), without SUPERUSER or BYPASSRLS",
        )


@contextmanager
def bot_login(
    admin: psycopg.Connection[Any], owner_url: URL, app_role: str, given: str | None
) -> Iterator[Login]:
    """Yield the bot's login: ``given`` (or the environment's), else a throwaway role.

    ``admin`` is an autocommit psycopg connection of a role that may create roles; without
    that right a UsageError says to set HOTELBOT_APP_DATABASE_URL.
    """
    from hotelbot_cli.settings import app_database_url_from_env, normalize_url

    given = given or app_database_url_from_env()
    if given:
        url = normalize_url(given)
        _check(url, app_role)
        yield Login(url, f"login {url.username} ({APP_URL_ENV})")
        return
    import psycopg

    name = f"hotelbot_bench_{os.getpid()}_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(24)
    try:
        from hotelbot_cli.db.login import password_verifier

        verifier = password_verifier(admin, name, password)  # no clear text on the wire or in logs
        with admin.transaction():
            admin.execute(
                f"CREATE ROLE {_quote(name)} LOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB"
                f" NOCREATEROLE PASSWORD {_literal(verifier)}"
            )
            admin.execute(f"GRANT {_quote(app_role)} TO {_quote(name)}")
    except psycopg.errors.InsufficientPrivilege:
        raise UsageError(
            "bench cannot create a throwaway login role for the bot",
            f"set {APP_URL_ENV} to the bot's login, or pass --tenant-login set-role",
        ) from None
    try:
        yield Login(owner_url.set(username=name, password=password), "throwaway login role")
    finally:
        _drop_role(admin, owner_url, name)


def _drop_role(admin: psycopg.Connection[Any], owner_url: URL, name: str) -> None:
    """Drop the throwaway login; when ``admin`` died with the run, on a new connection.

    A session ended mid-run (pg_terminate_backend, a restart) must not leave the role behind.
    When the server is gone too, the error that ended the run is the one reported.
    """
    import psycopg

    from hotelbot_cli.settings import libpq_url

    drop = f"DROP ROLE IF EXISTS {_quote(name)}"
    if not admin.closed:
        try:
            admin.execute(drop)
            return
        except psycopg.OperationalError:
            pass
    try:
        with psycopg.connect(libpq_url(owner_url), autocommit=True, connect_timeout=5) as conn:
            conn.execute(drop)
    except psycopg.OperationalError:
        pass  # the server is gone: nothing to drop it with


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
