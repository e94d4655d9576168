"""The bot's own login (HOTELBOT_APP_DATABASE_URL), audited from the owner's side.

RLS binds the app role; the bot logs in as a role granted it. That login is a path of its
own: anything it holds beyond the app role (an attribute, another membership, an owned
object, a direct grant) is not bound by the tenant policies. Checked from the catalog, so
the login's password is never needed.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.catalog import fetch_rows
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.report import CheckResult, audit_result

_ATTRIBUTES = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")

_GRANTS = """
SELECT 'table ' || c.oid::regclass::text FROM pg_catalog.pg_class c,
       LATERAL aclexplode(c.relacl) a WHERE a.grantee = %(login)s
UNION ALL
SELECT 'column ' || a.attrelid::regclass::text || '.' || a.attname
  FROM pg_catalog.pg_attribute a, LATERAL aclexplode(a.attacl) g WHERE g.grantee = %(login)s
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text FROM pg_catalog.pg_proc p,
       LATERAL aclexplode(p.proacl) a WHERE a.grantee = %(login)s
UNION ALL
SELECT 'schema ' || n.nspname FROM pg_catalog.pg_namespace n,
       LATERAL aclexplode(n.nspacl) a WHERE a.grantee = %(login)s AND a.privilege_type = 'CREATE'
UNION ALL
SELECT 'owns ' || c.oid::regclass::text FROM pg_catalog.pg_class c WHERE c.relowner = %(login)s
UNION ALL
SELECT 'owns function ' || p.oid::regprocedure::text FROM pg_catalog.pg_proc p
 WHERE p.proowner = %(login)s
UNION ALL
SELECT 'owns schema ' || n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspowner = %(login)s
UNION ALL
SELECT 'owns database ' || d.datname FROM pg_catalog.pg_database d WHERE d.datdba = %(login)s
ORDER BY 1
"""


def audit_bot_login(conn: Connection[Any], cfg: RlsConfig, login: str) -> list[CheckResult]:
    """``login`` is a LOGIN role with the allowlisted attributes, granted only the app role."""
    app = cfg.app_role
    fix = f"hotelbot db create-login {login} (it resets the role to LOGIN + {app} only)"
    row = conn.execute(
        "SELECT oid, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
        " rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = %s",
        (login,),
    ).fetchone()
    if row is None:
        return [
            audit_result("bot-login", None, False, f"the bot's login {login} does not exist", fix)
        ]
    oid, can_login, *flags = row
    problems = [name for name, on in zip(_ATTRIBUTES, flags, strict=True) if on]
    if not can_login:
        problems.append("NOLOGIN (the bot cannot log in)")
    granted = [
        r[0]
        for r in fetch_rows(
            conn,
            "SELECT r.rolname FROM pg_catalog.pg_auth_members m"
            " JOIN pg_catalog.pg_roles r ON r.oid = m.roleid WHERE m.member = %s ORDER BY 1",
            (oid,),
        )
    ]
    if app not in granted:
        problems.append(f"not granted {app} (no tenant policy applies to it)")
    problems += [f"member of {r}" for r in granted if r != app]
    problems += [r[0] for r in fetch_rows(conn, _GRANTS, {"login": oid})]
    return [
        audit_result(
            "bot-login",
            None,
            not problems,
            f"the bot's login {login} holds more than {app}: {'; '.join(problems)}"
            if problems
            else f"the bot's login {login} is LOGIN, granted {app} and nothing else",
            fix,
        )
    ]


def configured_login() -> str | None:
    """The user name of HOTELBOT_APP_DATABASE_URL, when it is configured."""
    from hotelbot_cli.settings import Settings, normalize_url

    url = Settings.from_env().app_database_url
    return normalize_url(url).username if url else None
