"""The catalog audit: tenant tables found from the catalog, and every way around their policies.

Reads only. Tenant tables are every ordinary or partitioned table with a ``hotel_id``
column, plus ``hotels`` (whose tenant column is ``id``), in any non-system schema: a
table added next year is covered without editing a list. The checks think like an
attacker who holds the app role and can run any SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.expr import binding
from hotelbot_cli.rls.report import CheckResult

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
_POLCMD = {"r": ("SELECT",), "a": ("INSERT",), "w": ("UPDATE",), "d": ("DELETE",), "*": COMMANDS}
#: Predefined roles whose membership reads or writes around row security, or owns the database.
PRIVILEGED_ROLES = (
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_database_owner",
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_write_server_files",
)
#: SECURITY DEFINER functions reviewed by this project: (signature, return type).
REVIEWED_DEFINERS = {("hotelbot_hotel_id_for_whatsapp(text)", "uuid")}


@dataclass(frozen=True)
class Policy:
    name: str
    command: str  # r a w d *
    permissive: bool
    roles: tuple[str, ...]
    applies: bool  # to the app role (directly, via PUBLIC, or a role it is a member of)
    using: str | None
    check: str | None


@dataclass(frozen=True)
class TenantTable:
    oid: int
    schema: str
    name: str
    display: str
    column: str  # hotel_id, or id for hotels
    enabled: bool
    forced: bool
    owner: str
    policies: tuple[Policy, ...] = field(default=())


def _rows(conn: Connection[Any], query: str, params: Any = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def app_role_oid(conn: Connection[Any], role: str) -> int | None:
    row = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    return int(row[0]) if row else None


_TABLES_SQL = """
SELECT c.oid, n.nspname, c.relname,
       CASE WHEN n.nspname = current_schema() THEN c.relname
            ELSE quote_ident(n.nspname) || '.' || quote_ident(c.relname) END,
       CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                         AND a.attname = 'hotel_id' AND a.attnum > 0 AND NOT a.attisdropped)
            THEN 'hotel_id' ELSE 'id' END,
       c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND (c.relname = 'hotels' OR EXISTS (
        SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'hotel_id'
           AND a.attnum > 0 AND NOT a.attisdropped))
 ORDER BY c.relname = 'hotels' DESC, n.nspname, c.relname
"""

_POLICIES_SQL = """
SELECT p.polrelid, p.polname, p.polcmd, p.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END
               FROM unnest(p.polroles) r),
       (0 = ANY(p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) r
                                        WHERE r <> 0 AND pg_has_role(%(app)s, r, 'MEMBER'))),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
  FROM pg_policy p WHERE p.polrelid = ANY(%(oids)s) ORDER BY p.polname
"""


def tenant_tables(conn: Connection[Any], app_oid: int) -> list[TenantTable]:
    """Every tenant table with its row-security flags and policies."""
    tables = [
        TenantTable(
            oid=r[0],
            schema=r[1],
            name=r[2],
            display=r[3],
            column=r[4],
            enabled=r[5],
            forced=r[6],
            owner=r[7],
        )
        for r in _rows(conn, _TABLES_SQL)
    ]
    policies: dict[int, list[Policy]] = {}
    for r in _rows(conn, _POLICIES_SQL, {"app": app_oid, "oids": [t.oid for t in tables]}):
        policies.setdefault(r[0], []).append(
            Policy(r[1], r[2], r[3], tuple(r[4]), r[5], r[6], r[7])
        )
    return [
        TenantTable(**{**t.__dict__, "policies": tuple(policies.get(t.oid, ()))}) for t in tables
    ]


def effective_check(policy: Policy) -> str | None:
    """WITH CHECK, or USING where PostgreSQL falls back to it (ALL and UPDATE policies)."""
    if policy.check is None and policy.command in {"*", "w"}:
        return policy.using
    return policy.check


def policy_bound(policy: Policy, column: str) -> tuple[bool, str]:
    """Whether a permissive policy confines both reads and writes to the current hotel."""
    commands = _POLCMD[policy.command]
    reads = any(c in commands for c in ("SELECT", "UPDATE", "DELETE"))
    writes = any(c in commands for c in ("INSERT", "UPDATE"))
    # A permissive policy without USING adds no visible rows; without a check it admits any row.
    if reads and policy.using is not None and binding(policy.using, column) is None:
        return False, f"USING ({policy.using}) does not bind {column} to the current hotel"
    check = effective_check(policy)
    if writes and (check is None or binding(check, column) is None):
        return (
            False,
            f"WITH CHECK ({check or 'absent'}) does not bind {column} to the current hotel",
        )
    return True, ""


def _covers(table: TenantTable, command: str) -> bool:
    for p in table.policies:
        if not (p.permissive and p.applies and command in _POLCMD[p.command]):
            continue
        using_ok = binding(p.using, table.column) is not None
        check_ok = binding(effective_check(p), table.column) is not None
        if {"SELECT": using_ok, "DELETE": using_ok, "INSERT": check_ok}.get(
            command, using_ok and check_ok
        ):
            return True
    return False


def audit_tables(tables: list[TenantTable], app_role: str) -> list[CheckResult]:
    """Row security on and forced, every command covered, no policy that widens access."""
    results: list[CheckResult] = []
    for t in tables:
        name = t.display
        results.append(
            _result(
                "rls-enabled",
                name,
                t.enabled,
                "row level security is enabled"
                if t.enabled
                else "row level security is DISABLED: every row is visible",
                f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
            )
        )
        results.append(
            _result(
                "rls-forced",
                name,
                t.forced,
                "row level security is forced"
                if t.forced
                else f"not FORCED: the owner {t.owner} bypasses the policies",
                f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY",
            )
        )
        missing = [c for c in COMMANDS if not _covers(t, c)]
        results.append(
            _result(
                "policy-coverage",
                name,
                not missing,
                f"{'/'.join(missing)} has no tenant-bound permissive policy for {app_role}"
                if missing
                else "SELECT, INSERT, UPDATE and DELETE have a tenant-bound policy",
                f"CREATE POLICY {t.name}_tenant_isolation ON {name} FOR ALL TO {app_role} USING "
                f"({t.column} = (SELECT NULLIF(current_setting('app.current_hotel_id', true),"
                f" '')::uuid)) WITH CHECK (same)",
            )
        )
        loose = []
        for p in t.policies:
            if p.permissive and p.applies:
                ok, why = policy_bound(p, t.column)
                if not ok:
                    loose.append(f"{p.name} (to {', '.join(p.roles)}): {why}")
        results.append(
            _result(
                "policy-bound",
                name,
                not loose,
                "; ".join(loose) if loose else "every permissive policy that applies is bound",
                "drop or rewrite the policy: permissive policies are OR-ed, one loose policy "
                "opens the table",
            )
        )
    return results


def _result(check_id: str, table: str | None, ok: bool, detail: str, fix: str) -> CheckResult:
    return CheckResult(
        id=check_id,
        category="audit",
        table=table,
        status="pass" if ok else "fail",
        detail=detail,
        fix=None if ok else fix,
    )


def audit_role(
    conn: Connection[Any], app_role: str, app_oid: int, tables: list[TenantTable]
) -> list[CheckResult]:
    """The app role's attributes, memberships, ownerships and settings."""
    attrs = conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE oid = %s", (app_oid,)
    ).fetchone()
    assert attrs is not None
    bad = [n for n, v in zip(("SUPERUSER", "BYPASSRLS", "CREATEROLE"), attrs, strict=True) if v]
    results = [
        _result(
            "app-role-attributes",
            None,
            not bad,
            f"{app_role} has {', '.join(bad)}"
            if bad
            else f"{app_role} is not superuser, BYPASSRLS or CREATEROLE",
            f"ALTER ROLE {app_role} NOSUPERUSER NOBYPASSRLS NOCREATEROLE",
        )
    ]
    owners = sorted({t.owner for t in tables})
    members = _rows(
        conn,
        """
        SELECT r.rolname FROM pg_roles r
         WHERE r.oid <> %(app)s AND pg_has_role(%(app)s, r.oid, 'MEMBER')
           AND (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolname = ANY(%(priv)s)
                OR r.rolname = ANY(%(owners)s)
                OR r.oid = (SELECT datdba FROM pg_database WHERE datname = current_database()))
         ORDER BY 1
        """,
        {"app": app_oid, "priv": list(PRIVILEGED_ROLES), "owners": owners},
    )
    names = [r[0] for r in members]
    results.append(
        _result(
            "app-role-membership",
            None,
            not names,
            f"{app_role} is a member of {', '.join(names)}: it can act as them"
            if names
            else f"{app_role} is not a member of any privileged, owner or superuser role",
            f"REVOKE {', '.join(names) or '<role>'} FROM {app_role}",
        )
    )
    owned = _rows(
        conn,
        """
        SELECT 'table ' || oid::regclass::text FROM pg_class WHERE relowner = %(app)s
        UNION ALL SELECT 'function ' || oid::regprocedure::text FROM pg_proc
         WHERE proowner = %(app)s
        UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = %(app)s
        UNION ALL SELECT 'database ' || datname FROM pg_database
         WHERE datdba = %(app)s AND datname = current_database()
        ORDER BY 1 LIMIT 10
        """,
        {"app": app_oid},
    )
    results.append(
        _result(
            "app-role-owns-nothing",
            None,
            not owned,
            f"{app_role} owns {', '.join(r[0] for r in owned)}: owners bypass row security"
            if owned
            else f"{app_role} owns nothing in this database",
            f"ALTER … OWNER TO <the migrating role> for each object owned by {app_role}",
        )
    )
    off = _rows(
        conn,
        """
        SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) c
         WHERE s.setrole IN (0, %(app)s)
           AND s.setdatabase IN (0, (SELECT oid FROM pg_database
                                      WHERE datname = current_database()))
           AND lower(replace(c, ' ', '')) IN ('row_security=off', 'row_security=false')
        """,
        {"app": app_oid},
    )
    results.append(
        _result(
            "app-role-row-security",
            None,
            not off,
            "row_security=off is configured for the app role or database"
            if off
            else "row_security is not turned off for the app role",
            f"ALTER ROLE {app_role} RESET row_security",
        )
    )
    preset = _rows(
        conn,
        """
        SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) c
         WHERE (s.setrole = 0 OR pg_has_role(%(app)s, s.setrole, 'MEMBER'))
           AND s.setdatabase IN (0, (SELECT oid FROM pg_database
                                      WHERE datname = current_database()))
           AND c LIKE 'app.current\\_hotel\\_id=%%'
        """,
        {"app": app_oid},
    )
    results.append(
        _result(
            "tenant-default",
            None,
            not preset,
            "app.current_hotel_id has a default for the app role or database: 'no tenant'"
            " silently means that hotel"
            if preset
            else "app.current_hotel_id has no role or database default",
            f"ALTER ROLE {app_role} RESET app.current_hotel_id; ALTER DATABASE … RESET"
            " app.current_hotel_id",
        )
    )
    return results


def audit_privileges(
    conn: Connection[Any], app_role: str, app_oid: int, tables: list[TenantTable]
) -> list[CheckResult]:
    """Privileges that step around policies: TRUNCATE, REFERENCES, TRIGGER, key UPDATE, DDL."""
    results = []
    for t in tables:
        row = conn.execute(
            "SELECT has_table_privilege(%(a)s, %(t)s, 'TRUNCATE'),"
            " has_table_privilege(%(a)s, %(t)s, 'REFERENCES'),"
            " has_table_privilege(%(a)s, %(t)s, 'TRIGGER'),"
            " has_column_privilege(%(a)s, %(t)s, %(c)s, 'UPDATE')",
            {"a": app_oid, "t": t.oid, "c": t.column},
        ).fetchone()
        assert row is not None
        bad = [n for n, v in zip(("TRUNCATE", "REFERENCES", "TRIGGER"), row[:3], strict=True) if v]
        results.append(
            _result(
                "table-privileges",
                t.display,
                not bad,
                f"{app_role} has {', '.join(bad)}: TRUNCATE ignores policies, REFERENCES"
                " probes other hotels' keys, TRIGGER runs code on their writes"
                if bad
                else "no TRUNCATE, REFERENCES or TRIGGER",
                f"REVOKE {', '.join(bad) or 'TRUNCATE'} ON {t.display} FROM {app_role}",
            )
        )
        results.append(
            _result(
                "tenant-column-update",
                t.display,
                not row[3],
                f"{app_role} may UPDATE {t.column}: rows can be re-pointed (only WITH CHECK"
                " stands in the way)"
                if row[3]
                else f"{t.column} is not updatable",
                f"REVOKE UPDATE ON {t.display} FROM {app_role}; GRANT UPDATE (<other"
                f" columns>) ON {t.display} TO {app_role}",
            )
        )
    schemas = sorted({t.schema for t in tables})
    creatable = [
        s
        for s in schemas
        if conn.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", (app_oid, s)).fetchone()[0]  # type: ignore[index]
    ]
    results.append(
        _result(
            "schema-create",
            None,
            not creatable,
            f"{app_role} may CREATE in schema {', '.join(creatable)}: it can plant objects"
            " that shadow or hook the owner's"
            if creatable
            else f"{app_role} cannot create objects in the tenant schemas",
            f"REVOKE CREATE ON SCHEMA {', '.join(creatable) or '<schema>'} FROM {app_role}, PUBLIC",
        )
    )
    return results


def audit_foreign_keys(conn: Connection[Any], tables: list[TenantTable]) -> list[CheckResult]:
    """A reference between two tenant tables must include hotel_id on both sides."""
    tenant = {t.oid: t for t in tables if t.column == "hotel_id"}
    rows = _rows(
        conn,
        """
        SELECT c.conname, c.conrelid, c.confrelid,
               ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY i),
               ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY i)
          FROM pg_constraint c
         WHERE c.contype = 'f' AND c.conrelid = ANY(%s) AND c.confrelid = ANY(%s)
         ORDER BY 2, 1
        """,
        (list(tenant), list(tenant)),
    )
    loose: dict[int, list[str]] = {}
    for name, src, _dst, cols, refcols in rows:
        pairs = dict(zip(cols, refcols, strict=True))
        if pairs.get("hotel_id") != "hotel_id":
            loose.setdefault(src, []).append(name)
    return [
        _result(
            "foreign-key-tenant",
            t.display,
            t.oid not in loose,
            f"{', '.join(loose[t.oid])} does not include hotel_id: a row can point at another"
            " hotel's row by a guessed id (foreign keys do not see RLS)"
            if t.oid in loose
            else "every reference to a tenant table includes hotel_id",
            "make the key composite: FOREIGN KEY (hotel_id, x_id) REFERENCES x (hotel_id, id)",
        )
        for t in tables
        if t.column == "hotel_id"
    ]


def audit_functions(
    conn: Connection[Any], app_role: str, app_oid: int, tables: list[TenantTable]
) -> list[CheckResult]:
    """SECURITY DEFINER functions the app role can call run as their owner, around its policies."""
    owners = sorted({t.owner for t in tables})
    rows = _rows(
        conn,
        """
        SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner),
               r.rolsuper OR r.rolbypassrls OR r.rolname = ANY(%(owners)s),
               EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%%'),
               p.prorettype::regtype::text, p.proretset
          FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE p.prosecdef AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
           AND has_function_privilege(%(app)s, p.oid, 'EXECUTE')
         ORDER BY 1
        """,
        {"app": app_oid, "owners": owners},
    )
    results = []
    for sig, owner, powerful, pinned, rettype, retset in rows:
        reviewed = (sig, rettype) in REVIEWED_DEFINERS and not retset
        problems = []
        if not pinned:
            problems.append("search_path is not pinned (SET search_path = pg_catalog, pg_temp)")
        if powerful and not reviewed:
            problems.append(f"runs as {owner}, who is not bound by the tenant policies")
        results.append(
            _result(
                "security-definer",
                sig,
                not problems,
                f"{app_role} can EXECUTE it; " + "; ".join(problems)
                if problems
                else f"reviewed, search_path pinned, returns only {rettype}",
                f"REVOKE EXECUTE ON FUNCTION {sig} FROM {app_role}, PUBLIC; or make it"
                " SECURITY INVOKER; or review it and --ignore security-definer:<signature>",
            )
        )
    return results


def audit_views(
    conn: Connection[Any], app_role: str, app_oid: int, tables: list[TenantTable]
) -> list[CheckResult]:
    """Views run as their owner unless security_invoker; materialized views have no RLS at all."""
    rows = _rows(
        conn,
        """
        WITH RECURSIVE reads(view, base) AS (
            SELECT DISTINCT rw.ev_class, d.refobjid FROM pg_rewrite rw
              JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
               AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rw.ev_class
             WHERE d.refobjid = ANY(%(oids)s)
            UNION
            SELECT DISTINCT rw.ev_class, r.base FROM pg_rewrite rw
              JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
               AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rw.ev_class
              JOIN reads r ON r.view = d.refobjid
        )
        SELECT DISTINCT v.oid::regclass::text, v.relkind,
               coalesce(v.reloptions::text[] && ARRAY['security_invoker=true',
                        'security_invoker=on', 'security_invoker=1', 'security_invoker=yes'],
                        false)
          FROM reads JOIN pg_class v ON v.oid = reads.view
         WHERE v.relkind IN ('v', 'm') AND has_table_privilege(%(app)s, v.oid, 'SELECT')
         ORDER BY 1
        """,
        {"app": app_oid, "oids": [t.oid for t in tables]},
    )
    results = []
    for name, kind, invoker in rows:
        if kind == "m":
            results.append(
                _result(
                    "materialized-view",
                    name,
                    False,
                    f"{app_role} can read this materialized view of tenant data: it has no row"
                    " security",
                    f"REVOKE SELECT ON {name} FROM {app_role}, PUBLIC",
                )
            )
        else:
            results.append(
                _result(
                    "view-security-invoker",
                    name,
                    bool(invoker),
                    "security_invoker: the reader's policies apply"
                    if invoker
                    else f"{app_role} can read it and it runs as its owner, around the policies",
                    f"ALTER VIEW {name} SET (security_invoker = true)",
                )
            )
    return results


def audit(conn: Connection[Any], app_role: str) -> tuple[list[TenantTable], list[CheckResult]]:
    """Every catalog check; the tenant tables are returned for the probes and lints."""
    app_oid = app_role_oid(conn, app_role)
    if app_oid is None:
        return [], [
            CheckResult(
                "app-role-exists",
                "audit",
                None,
                "fail",
                f"role {app_role} does not exist: the application has no restricted role",
                "run `hotelbot db upgrade` (migration 007 creates it) or pass --app-role",
            )
        ]
    tables = tenant_tables(conn, app_oid)
    results = [
        CheckResult("app-role-exists", "audit", None, "pass", f"role {app_role} exists"),
        _result(
            "tenant-tables-found",
            None,
            bool(tables),
            f"{len(tables)} tenant tables: {', '.join(t.display for t in tables)}"
            if tables
            else "no table with a hotel_id column was found",
            "run `hotelbot db upgrade`",
        ),
    ]
    results += audit_tables(tables, app_role)
    results += audit_role(conn, app_role, app_oid, tables)
    results += audit_privileges(conn, app_role, app_oid, tables)
    results += audit_foreign_keys(conn, tables)
    results += audit_functions(conn, app_role, app_oid, tables)
    results += audit_views(conn, app_role, app_oid, tables)
    return tables, results
