"""The app role's own path: what it and every role it can become are, own and have set.

Role attributes are an allowlist, for the app role and every role it can become:
NOSUPERUSER, NOCREATEDB, NOCREATEROLE, NOREPLICATION, NOBYPASSRLS, LOGIN only for the app
role itself, no predefined (``pg_*``) role, no owner of the database or of what it
reaches, owning nothing, no ``row_security=off`` and no tenant default.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.catalog import ROLES_CTE, TenantTable, fetch_rows
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.report import CheckResult, audit_result


def audit_roles(
    conn: Connection[Any], cfg: RlsConfig, app_oid: int, rels: list[TenantTable]
) -> list[CheckResult]:
    """Allowlisted attributes, no privileged membership, owns nothing, no settings that open."""
    app = cfg.app_role
    roles = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT r.rolname, p.rolsuper, p.rolcreatedb, p.rolcreaterole, p.rolreplication,
               p.rolbypassrls, p.rolcanlogin, r.oid = %(app)s
          FROM roles r JOIN pg_roles p ON p.oid = r.oid ORDER BY r.oid <> %(app)s, 1
        """,
        {"app": app_oid},
    )
    bad_attrs = []
    attributes = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")
    for name, *flags, login, is_app in roles:
        found: list[str] = [n for n, v in zip(attributes, flags, strict=True) if v]
        if login and not is_app:
            found.append("LOGIN (a shared login identity)")
        if found:
            bad_attrs.append(f"{name}: {', '.join(found)}")
    results = [
        audit_result(
            "app-role-attributes",
            None,
            not bad_attrs,
            f"roles {app} can become have attributes outside the allowlist: {'; '.join(bad_attrs)}"
            if bad_attrs
            else f"{app} and the roles it can become are NOSUPERUSER NOCREATEDB NOCREATEROLE"
            " NOREPLICATION NOBYPASSRLS",
            f"ALTER ROLE <role> NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            f" NOLOGIN (the bot logs in as its own role that is granted {app})",
        )
    ]
    owners = sorted({t.owner for t in rels})
    members = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT r.rolname FROM roles r
         WHERE r.oid <> %(app)s AND (r.rolname ~ '^pg_' OR r.rolname = ANY(%(owners)s)
                OR r.oid = (SELECT datdba FROM pg_database WHERE datname = current_database()))
         ORDER BY 1
        """,
        {"app": app_oid, "owners": owners},
    )
    names = [r[0] for r in members]
    results.append(
        audit_result(
            "app-role-membership",
            None,
            not names,
            f"{app} is a member of {', '.join(names)}: it can act as them"
            if names
            else f"{app} is not a member of a predefined, owner or database-owner role",
            f"REVOKE {', '.join(names) or '<role>'} FROM {app}",
        )
    )
    owned = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT 'table ' || oid::regclass::text FROM pg_class
         WHERE relowner IN (SELECT oid FROM roles)
        UNION ALL SELECT 'function ' || oid::regprocedure::text FROM pg_proc
         WHERE proowner IN (SELECT oid FROM roles)
        UNION ALL SELECT 'schema ' || nspname FROM pg_namespace
         WHERE nspowner IN (SELECT oid FROM roles)
        UNION ALL SELECT 'large object ' || oid::text FROM pg_largeobject_metadata
         WHERE lomowner IN (SELECT oid FROM roles)
        UNION ALL SELECT 'database ' || datname FROM pg_database
         WHERE datdba IN (SELECT oid FROM roles) AND datname = current_database()
        ORDER BY 1 LIMIT 10
        """,
        {"app": app_oid},
    )
    results.append(
        audit_result(
            "app-role-owns-nothing",
            None,
            not owned,
            f"{app} (or a role it can become) owns {', '.join(r[0] for r in owned)}: owners"
            " bypass row security and may ALTER or DROP it"
            if owned
            else f"{app} and the roles it can become own nothing in this database",
            f"ALTER … OWNER TO <the migrating role> for each object owned by {app}",
        )
    )
    settings = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) c
         WHERE (s.setrole = 0 OR s.setrole IN (SELECT oid FROM roles))
           AND s.setdatabase IN (0, (SELECT oid FROM pg_database
                                      WHERE datname = current_database()))
        """,
        {"app": app_oid},
    )
    off = [
        c
        for (c,) in settings
        if c.replace(" ", "").lower()
        in {"row_security=off", "row_security=false", "row_security=0"}
    ]
    results.append(
        audit_result(
            "app-role-row-security",
            None,
            not off,
            "row_security=off is configured for the app role or database"
            if off
            else "row_security is not turned off for the app role",
            f"ALTER ROLE {app} RESET row_security",
        )
    )
    preset = [c for (c,) in settings if c.startswith(cfg.tenant_setting + "=")]
    results.append(
        audit_result(
            "tenant-default",
            None,
            not preset,
            f"{cfg.tenant_setting} has a default for the app role or database: 'no tenant'"
            " silently means that tenant"
            if preset
            else f"{cfg.tenant_setting} has no role or database default",
            f"ALTER ROLE {app} RESET {cfg.tenant_setting}; ALTER DATABASE … RESET"
            f" {cfg.tenant_setting}",
        )
    )
    return results
