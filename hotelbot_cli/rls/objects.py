"""Objects outside row security: schemas and the database to CREATE in, temporary tables,
large objects, catalogs.

Anything the roles may create can shadow or hook the owner's objects; large objects have
no row security, so any the roles can read is outside the tenant model; catalog objects
granted beyond the default ACL are reported too.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.catalog import ROLES_CTE, fetch_rows
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.report import CheckResult, audit_result


def audit_create(conn: Connection[Any], cfg: RlsConfig, app_oid: int) -> list[CheckResult]:
    """Schemas and the database the roles may CREATE in: planted objects shadow or hook others."""
    rows = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT n.nspname FROM pg_namespace n
         WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
           AND EXISTS (SELECT 1 FROM roles r WHERE has_schema_privilege(r.oid, n.oid, 'CREATE'))
        UNION ALL
        SELECT 'DATABASE ' || current_database() WHERE EXISTS (SELECT 1 FROM roles r
               WHERE has_database_privilege(r.oid, current_database(), 'CREATE'))
        ORDER BY 1
        """,
        {"app": app_oid},
    )
    names = [r[0] for r in rows]
    schemas = [n for n in names if not n.startswith("DATABASE ")]
    return [
        audit_result(
            "schema-create",
            None,
            not names,
            f"{cfg.app_role} may CREATE in {', '.join(names)}: it can plant objects that shadow"
            " or hook the owner's"
            if names
            else f"{cfg.app_role} cannot create schemas or objects in any schema",
            f"REVOKE CREATE ON SCHEMA {', '.join(schemas) or '<schema>'} FROM {cfg.app_role},"
            " PUBLIC"
            + ("; REVOKE CREATE ON DATABASE … FROM PUBLIC" if len(schemas) < len(names) else ""),
        )
    ]


def audit_temporary(
    conn: Connection[Any], cfg: RlsConfig, app_oid: int, *, signed: bool
) -> list[CheckResult]:
    """Whether the roles may create temporary tables in this database.

    A temp table is found before the owner's wherever the search path does not name
    ``pg_temp`` (SQL in a request may set one that does not), and it outlives the
    transaction: on a server connection a pooler hands on without resetting it, hotel A's
    request plants a ``triggers`` that the next hotel's request reads. Revision 009 revokes
    TEMPORARY from PUBLIC; CREATE DATABASE … TEMPLATE and a restore without privileges give
    it back. A failure where the database signs its tenants (``signed``: our schema), else a
    warning: PostgreSQL grants it to PUBLIC in every new database.
    """
    row = conn.execute(
        f"""
        WITH {ROLES_CTE}
        SELECT string_agg(r.rolname, ', ' ORDER BY r.rolname) FILTER (WHERE
               has_database_privilege(r.oid, current_database(), 'TEMPORARY')),
               has_database_privilege('public', current_database(), 'TEMPORARY'),
               quote_ident(current_database())
          FROM roles r
        """,
        {"app": app_oid},
    ).fetchone()
    holders, public, database = row if row else (None, False, "…")
    allowed = bool(holders or public)
    return [
        audit_result(
            "temp-tables",
            None,
            not allowed,
            f"{'PUBLIC' if public else holders} may create temporary tables in {database}:"
            f" one named like a table of ours shadows it for {cfg.app_role} (pg_temp comes"
            " first in a search_path that does not name it) and outlives the transaction"
            " on a pooled server connection"
            if allowed
            else f"{cfg.app_role} cannot create temporary tables",
            f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC, {cfg.app_role}"
            " (again after CREATE DATABASE … TEMPLATE or a restore without privileges)",
            warn=not signed,
        )
    ]


def audit_large_objects(conn: Connection[Any], cfg: RlsConfig, app_oid: int) -> list[CheckResult]:
    """Large objects have no row security: any the roles can read is outside the tenant model."""
    compat = conn.execute("SHOW lo_compat_privileges").fetchone()
    open_all = bool(compat and compat[0] == "on")
    row = conn.execute(
        f"""
        WITH {ROLES_CTE}
        SELECT count(*) FROM pg_largeobject_metadata m
         WHERE %(all)s OR m.lomowner IN (SELECT oid FROM roles) OR EXISTS (
               SELECT 1 FROM aclexplode(m.lomacl) a
                WHERE a.grantee = 0 OR a.grantee IN (SELECT oid FROM roles))
        """,
        {"app": app_oid, "all": open_all},
    ).fetchone()
    count = int(row[0]) if row else 0
    return [
        audit_result(
            "large-objects",
            None,
            count == 0,
            f"{cfg.app_role} can read {count} large object(s)"
            + (" (lo_compat_privileges is on)" if open_all else "")
            + ": large objects have no row security"
            if count
            else f"{cfg.app_role} can read no large object",
            f"REVOKE SELECT ON LARGE OBJECT <oid> FROM {cfg.app_role}, PUBLIC; keep"
            " lo_compat_privileges off; store tenant data in tenant tables",
        )
    ]


def audit_catalog_grants(conn: Connection[Any], cfg: RlsConfig, app_oid: int) -> list[CheckResult]:
    """System relations and functions granted to the roles explicitly (not the default), and
    server parameters they (or PUBLIC: no parameter is granted by default) may set beyond a
    user's: ``SET session_replication_role = replica`` in a request switches off the tenant
    foreign keys and the triggers."""
    rows = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT 'table ' || c.oid::regclass::text FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
         WHERE (n.nspname IN ('pg_catalog', 'information_schema') OR n.nspname ~ '^pg_toast')
           AND a.grantee IN (SELECT oid FROM roles)
        UNION
        SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
         WHERE n.nspname IN ('pg_catalog', 'information_schema')
           AND a.grantee IN (SELECT oid FROM roles)
        UNION
        SELECT 'parameter ' || p.parname || ' ' || a.privilege_type
               || CASE WHEN a.grantee = 0 THEN ' (to PUBLIC)' ELSE '' END
          FROM pg_parameter_acl p, aclexplode(p.paracl) a
         WHERE a.grantee IN (SELECT oid FROM roles) OR a.grantee = 0
        ORDER BY 1 LIMIT 20
        """,
        {"app": app_oid},
    )
    names = [r[0] for r in rows]
    return [
        audit_result(
            "catalog-grant",
            None,
            not names,
            f"{cfg.app_role} was granted {', '.join(names)} beyond the default catalog ACL"
            if names
            else "no catalog object is granted to the app role beyond the defaults",
            f"REVOKE ALL ON <object> FROM {cfg.app_role}; for a parameter, REVOKE SET,"
            f" ALTER SYSTEM ON PARAMETER <name> FROM {cfg.app_role}, PUBLIC",
        )
    ]
