"""The bot's own login (HOTELBOT_APP_DATABASE_URL), audited from the owner's side.

RLS binds the app role; the bot logs in as a role granted it. That login is a path of its
own: anything it holds beyond the app role (an attribute, another membership, an owned
object, a direct grant) is not bound by the tenant policies. Checked from the catalog, so
the login's password is never needed.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.catalog import TenantTable, fetch_rows
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
UNION ALL
SELECT 'database ' || d.datname || ' ' || a.privilege_type FROM pg_catalog.pg_database d,
       LATERAL aclexplode(d.datacl) a
 WHERE a.grantee = %(login)s AND a.privilege_type <> 'CONNECT'  -- CONNECT: a login needs it
UNION ALL
SELECT 'parameter ' || p.parname || ' ' || a.privilege_type FROM pg_catalog.pg_parameter_acl p,
       LATERAL aclexplode(p.paracl) a WHERE a.grantee = %(login)s
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
    grants = [r[0] for r in fetch_rows(conn, _GRANTS, {"login": oid})]
    problems += grants
    if grants:  # create-login resets attributes and memberships, not grants or ownership
        fix += f"; REVOKE each grant from {login}, or reassign what it owns"
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


#: The login's own ``search_path`` in this database, strongest first, as the server applies
#: it at log-in: set for the login in this database, for the login, for this database, for
#: every role (``ALTER ROLE ALL``).
_LOGIN_SEARCH_PATH = """
SELECT substr(cfg, length('search_path=') + 1)
  FROM pg_catalog.pg_db_role_setting s, LATERAL unnest(s.setconfig) cfg
 WHERE s.setrole IN (%(login)s, 0)
   AND s.setdatabase IN ((SELECT oid FROM pg_catalog.pg_database
                           WHERE datname = pg_catalog.current_database()), 0)
   AND cfg LIKE 'search\\_path=%%'
 ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC
 LIMIT 1
"""
#: Without one: the server's (its configuration file, readable by a superuser or
#: pg_read_all_settings), else PostgreSQL's built-in default.
_BUILT_IN_SEARCH_PATH = "SELECT boot_val FROM pg_catalog.pg_settings WHERE name = 'search_path'"
_SERVER_SEARCH_PATH = f"""
SELECT COALESCE(
    (SELECT f.setting FROM pg_catalog.pg_file_settings f
      WHERE f.name = 'search_path' AND f.applied ORDER BY f.seqno DESC LIMIT 1),
    ({_BUILT_IN_SEARCH_PATH}))
"""
_SERVER_SEARCH_PATH_READABLE = (
    "SELECT rolsuper OR pg_catalog.pg_has_role(current_user, 'pg_read_all_settings', 'MEMBER')"
    " FROM pg_catalog.pg_roles WHERE rolname = current_user"
)
#: Where the login finds each name: the first schema of its path that exists, that it may
#: use and that holds a relation of that name (pg_catalog, searched first, holds none of
#: ours; pg_temp is left out: the app role may not create temp objects, revision 009).
_RESOLVED = """
SELECT DISTINCT ON (r.name) r.name, n.nspname
  FROM unnest(%(names)s::text[]) r(name)
  CROSS JOIN unnest(%(schemas)s::text[]) WITH ORDINALITY s(nspname, pos)
  JOIN pg_catalog.pg_namespace n ON n.nspname = s.nspname
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = r.name
 WHERE pg_catalog.has_schema_privilege(%(login)s, n.oid, 'USAGE')
 ORDER BY r.name, s.pos
"""
#: The login, and the names its fix spells: this database and the tables' schema.
_LOGIN_AND_FIX = (
    "SELECT oid, quote_ident(pg_catalog.current_database()), quote_ident(%(schema)s)"
    " FROM pg_catalog.pg_roles WHERE rolname = %(login)s"
)
_PATH_ITEM = re.compile(r'\s*("(?:[^"]|"")*"|[^,\s]+)\s*(?:,|$)')


def search_path_schemas(value: str, login: str) -> list[str]:
    """The schema names of a ``search_path`` value, as the server reads them for ``login``:
    quoted names kept as written, others folded to lower case, ``$user`` the login."""
    names, pos, value = [], 0, value.strip()
    while pos < len(value) and (item := _PATH_ITEM.match(value, pos)):
        text = item.group(1)
        name = text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()
        names.append(login if name == "$user" else name)
        pos = item.end()
    return names


def _value(conn: Connection[Any], query: str, params: dict[str, Any] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def login_search_path(conn: Connection[Any], login_oid: int) -> str:
    """The ``search_path`` a session of the login starts with in this database."""
    own = _value(conn, _LOGIN_SEARCH_PATH, {"login": login_oid})
    if own is not None:
        return str(own)
    readable = _value(conn, _SERVER_SEARCH_PATH_READABLE)
    return str(_value(conn, _SERVER_SEARCH_PATH if readable else _BUILT_IN_SEARCH_PATH))


def audit_bot_search_path(
    conn: Connection[Any], login: str, rels: list[TenantTable]
) -> list[CheckResult]:
    """The bot names our tables unqualified: its login must find each in the schema the
    tenant root is in, not in a schema earlier in its path, and not nowhere."""
    root = next((t for t in rels if t.root), None)
    if root is None:  # tenant-tables-found fails
        return []
    row = conn.execute(_LOGIN_AND_FIX, {"login": login, "schema": root.schema}).fetchone()
    if row is None:  # bot-login says the login is missing
        return []
    login_oid, database, ours = row
    names = sorted({t.name for t in rels if t.schema == root.schema})
    path = login_search_path(conn, login_oid)
    schemas = search_path_schemas(path, login)
    found = dict(
        fetch_rows(conn, _RESOLVED, {"names": names, "schemas": schemas, "login": login_oid})
    )
    wrong = [
        f"{name} in {found[name]}" if name in found else f"no {name}"
        for name in names
        if found.get(name) != root.schema
    ]
    return [
        audit_result(
            "bot-search-path",
            None,
            not wrong,
            f"the bot's login {login} (search_path {path}) finds {', '.join(wrong)};"
            f" the tables are in {root.schema}"
            if wrong
            else f"the bot's login {login} finds every table in {root.schema}",
            f"hotelbot db create-login {login} (pins its search_path), or ALTER ROLE {login}"
            f" IN DATABASE {database} SET search_path = {ours}, pg_temp",
        )
    ]


def configured_login() -> str | None:
    """The user name of HOTELBOT_APP_DATABASE_URL, when it is configured."""
    from hotelbot_cli.settings import Settings, normalize_url

    url = Settings.from_env().app_database_url
    return normalize_url(url).username if url else None
