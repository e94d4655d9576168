"""The tenant column in keys: not updatable, part of every reference and writable unique key.

A row whose tenant column the app role may UPDATE can be moved to another tenant; a
foreign key without it lets a row point at another tenant's row by a guessed id (foreign
keys do not see row security); a unique key without it answers "does another tenant hold
this value?" with a unique violation.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.catalog import ROLES_CTE, TenantTable, fetch_rows
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.report import CheckResult, audit_result


def column_updatable(conn: Connection[Any], app_oid: int, t: TenantTable) -> bool:
    row = conn.execute(
        f"WITH {ROLES_CTE} SELECT EXISTS (SELECT 1 FROM roles r"
        " WHERE has_column_privilege(r.oid, %(t)s, %(c)s, 'UPDATE'))",
        {"app": app_oid, "t": t.oid, "c": t.column},
    ).fetchone()
    return bool(row and row[0])


def audit_tenant_columns(
    conn: Connection[Any], app_oid: int, rels: list[TenantTable], cfg: RlsConfig
) -> list[CheckResult]:
    """The tenant column must not be updatable: a row could be moved to another tenant."""
    out = []
    for t in rels:
        if t.column is None or t.kind not in "rpf" or cfg.declared(t.display):
            continue
        bad = column_updatable(conn, app_oid, t)
        out.append(
            audit_result(
                "tenant-column-update",
                t.display,
                not bad,
                f"{cfg.app_role} may UPDATE {t.column}: rows can be re-pointed (only WITH CHECK"
                " stands in the way)"
                if bad
                else f"{t.column} is not updatable",
                f"REVOKE UPDATE ON {t.display} FROM {cfg.app_role}; GRANT UPDATE (<other"
                f" columns>) ON {t.display} TO {cfg.app_role}",
            )
        )
    return out


def audit_foreign_keys(
    conn: Connection[Any], rels: list[TenantTable], cfg: RlsConfig
) -> list[CheckResult]:
    """A reference between two tenant tables must include the tenant column on both sides."""
    col = cfg.tenant_column
    tenant = {t.oid: t for t in rels if t.column == col and not t.root and t.kind in "rp"}
    rows = fetch_rows(
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
        if dict(zip(cols, refcols, strict=True)).get(col) != col:
            loose.setdefault(src, []).append(name)
    return [
        audit_result(
            "foreign-key-tenant",
            t.display,
            t.oid not in loose,
            f"{', '.join(loose[t.oid])} does not include {col}: a row can point at another"
            " tenant's row by a guessed id (foreign keys do not see RLS)"
            if t.oid in loose
            else f"every reference to a tenant table includes {col}",
            f"make the key composite: FOREIGN KEY ({col}, x_id) REFERENCES x ({col}, id)",
        )
        for t in tenant.values()
    ]


def audit_unique_oracles(
    conn: Connection[Any], app_oid: int, rels: list[TenantTable], cfg: RlsConfig
) -> list[CheckResult]:
    """A unique key without the tenant column that the app may write answers "does another
    tenant have this value?" (a unique violation). Keys made only of uuids are not guessable;
    GENERATED ALWAYS columns cannot be written."""
    targets = {
        t.oid: t for t in rels if t.column and t.kind in "rp" and not cfg.declared(t.display)
    }
    rows = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT i.indrelid, i.indexrelid::regclass::text,
               ARRAY(SELECT a.attname FROM unnest(i.indkey) k(n)
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n)
          FROM pg_index i
         WHERE i.indisunique AND i.indrelid = ANY(%(oids)s) AND 0 <> ALL(i.indkey)
           AND EXISTS (SELECT 1 FROM unnest(i.indkey) k(n)
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
                        WHERE a.atttypid <> 'uuid'::regtype AND a.attidentity <> 'a'
                          AND a.attgenerated = '' AND EXISTS (
                              SELECT 1 FROM roles r WHERE
                              has_column_privilege(r.oid, i.indrelid, a.attnum, 'INSERT')
                              OR has_column_privilege(r.oid, i.indrelid, a.attnum, 'UPDATE')))
         ORDER BY 2
        """,
        {"app": app_oid, "oids": list(targets)},
    )
    bad: dict[int, list[str]] = {}
    for rel, index, cols in rows:
        if targets[rel].column not in cols:
            bad.setdefault(rel, []).append(f"{index} ({', '.join(cols)})")
    return [
        audit_result(
            "unique-oracle",
            t.display,
            t.oid not in bad,
            f"{', '.join(bad[t.oid])} is unique across tenants and {cfg.app_role} may write it:"
            " a unique violation tells whether another tenant holds a value"
            if t.oid in bad
            else f"every writable unique key includes {t.column}",
            f"include {t.column} in the key (UNIQUE ({t.column}, …)) or REVOKE INSERT/UPDATE of"
            " its columns",
        )
        for t in targets.values()
    ]
