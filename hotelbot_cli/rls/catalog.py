"""What the app role reaches, read from the catalog: relations, their policies, its roles.

Tenant data is not found by name. The audit starts from the app role and every role it can
become (memberships, SET ROLE targets; PUBLIC through the ``has_*_privilege`` functions)
and enumerates every relation they hold any privilege on, column-level privileges
included: tables, partitions, views, materialized views, foreign tables, sequences, each
with its policies. What the audit makes of them is in :mod:`hotelbot_cli.rls.relations`
and :mod:`hotelbot_cli.rls.tenant_keys`; the effective policy of a command in
:mod:`hotelbot_cli.rls.effective_policy`. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import Connection
from psycopg.abc import Params

from hotelbot_cli.rls.config import RlsConfig

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
PRIVILEGES = (*COMMANDS, "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass(frozen=True)
class Policy:
    name: str
    command: str  # r a w d *
    permissive: bool
    roles: tuple[str, ...]
    applies: bool  # to the subject role (directly, via PUBLIC, or a role it is a member of)
    using: str | None
    check: str | None


@dataclass(frozen=True)
class TenantTable:
    """A reachable relation. ``column`` is its tenant column, None when it has none."""

    oid: int
    schema: str
    name: str
    display: str
    column: str | None
    enabled: bool
    forced: bool
    owner: str
    kind: str = "r"
    partition: bool = False
    invoker: bool = False
    privileges: frozenset[str] = frozenset()
    policies: tuple[Policy, ...] = field(default=())
    root: bool = False

    @property
    def holds_tenant_column(self) -> bool:
        return self.column is not None


def fetch_rows(
    conn: Connection[Any], query: str, params: Params | None = None
) -> list[tuple[Any, ...]]:
    """Every row of a catalog query."""
    return conn.execute(query, params).fetchall()


def app_role_oid(conn: Connection[Any], role: str) -> int | None:
    row = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    return int(row[0]) if row else None


#: The roles a subject can become: itself and every role it is a member of.
ROLES_CTE = "roles AS (SELECT oid, rolname FROM pg_roles WHERE pg_has_role(%(app)s, oid, 'MEMBER'))"

_RELATIONS_SQL = f"""
WITH {ROLES_CTE}
SELECT c.oid, n.nspname, c.relname,
       CASE WHEN n.nspname = current_schema() THEN c.relname
            ELSE quote_ident(n.nspname) || '.' || quote_ident(c.relname) END,
       c.relkind, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner),
       c.relispartition,
       coalesce(c.reloptions::text[] && ARRAY['security_invoker=true', 'security_invoker=on',
                'security_invoker=1', 'security_invoker=yes'], false),
       ARRAY(SELECT p FROM unnest(%(privs)s::text[]) p WHERE EXISTS (
             SELECT 1 FROM roles r WHERE CASE
               WHEN c.relkind = 'S' THEN p IN ('SELECT', 'UPDATE')
                    AND has_sequence_privilege(r.oid, c.oid, p)
               WHEN p IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                    THEN has_any_column_privilege(r.oid, c.oid, p)
               ELSE has_table_privilege(r.oid, c.oid, p) END))
       || CASE WHEN c.relkind = 'S' AND EXISTS (SELECT 1 FROM roles r
                    WHERE has_sequence_privilege(r.oid, c.oid, 'USAGE'))
               THEN ARRAY['USAGE'] ELSE ARRAY[]::text[] END,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                AND NOT a.attisdropped AND a.attname = %(column)s),
       (n.nspname = current_schema() AND c.relname = %(root)s)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND EXISTS (SELECT 1 FROM roles r WHERE has_schema_privilege(r.oid, n.oid, 'USAGE'))
 ORDER BY (n.nspname = current_schema() AND c.relname = %(root)s) DESC, n.nspname, c.relname
"""

_TENANT_BY_NAME_SQL = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND (c.relrowsecurity OR (n.nspname = current_schema() AND c.relname = %(root)s)
        OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                   AND NOT a.attisdropped AND a.attname = %(column)s))
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


def reachable(conn: Connection[Any], subject_oid: int, cfg: RlsConfig) -> list[TenantTable]:
    """Every relation the subject (and every role it can become) holds a privilege on."""
    rels = []
    for r in fetch_rows(
        conn,
        _RELATIONS_SQL,
        {
            "app": subject_oid,
            "privs": list(PRIVILEGES),
            "column": cfg.tenant_column,
            "root": cfg.root_table,
        },
    ):
        if not r[10]:
            continue
        root = bool(r[12])
        rels.append(
            TenantTable(
                oid=r[0],
                schema=r[1],
                name=r[2],
                display=r[3],
                kind=r[4],
                enabled=r[5],
                forced=r[6],
                owner=r[7],
                partition=r[8],
                invoker=r[9],
                privileges=frozenset(r[10]),
                column=cfg.root_column if root else (cfg.tenant_column if r[11] else None),
                root=root,
            )
        )
    return with_policies(conn, subject_oid, rels)


def with_policies(
    conn: Connection[Any], subject_oid: int, rels: list[TenantTable]
) -> list[TenantTable]:
    policies: dict[int, list[Policy]] = {}
    for r in fetch_rows(conn, _POLICIES_SQL, {"app": subject_oid, "oids": [t.oid for t in rels]}):
        policies.setdefault(r[0], []).append(
            Policy(r[1], r[2], r[3], tuple(r[4]), r[5], r[6], r[7])
        )
    return [replace(t, policies=tuple(policies.get(t.oid, ()))) for t in rels]


def tenant_functions(conn: Connection[Any], cfg: RlsConfig) -> frozenset[str]:
    """Functions without arguments whose body reads the tenant setting: "the current tenant"."""
    rows = fetch_rows(
        conn,
        """
        SELECT lower(p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE p.pronargs = 0 AND p.prokind = 'f' AND NOT p.proretset
           AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
           AND position(%s IN p.prosrc) > 0
        """,
        (f"'{cfg.tenant_setting}'",),
    )
    return frozenset(r[0] for r in rows)


def tenant_by_name(conn: Connection[Any], cfg: RlsConfig) -> set[int]:
    return {
        r[0]
        for r in fetch_rows(
            conn, _TENANT_BY_NAME_SQL, {"column": cfg.tenant_column, "root": cfg.root_table}
        )
    }
