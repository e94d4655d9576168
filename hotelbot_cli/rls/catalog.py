"""The reachability audit: every object the app role can reach, and whether it is tenant-bound.

Tenant data is not found by name. The audit starts from the app role and every role it can
become (memberships, SET ROLE targets; PUBLIC through the ``has_*_privilege`` functions)
and enumerates every relation they hold any privilege on, column-level privileges
included: tables, partitions, views, materialized views, foreign tables, sequences. Each
reachable relation must be tenant-bound (row security enabled and forced, the effective
policy of every command it may run bound to the current tenant) or declared non-tenant in
``[tool.hotelbot.rls-check] non-tenant`` with a reason. The other paths (functions,
triggers, rules, large objects, schemas, catalogs, role attributes) are in
:mod:`hotelbot_cli.rls.paths`. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.policy import Context, Judgement, judge
from hotelbot_cli.rls.report import CheckResult, Status

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
PRIVILEGES = (*COMMANDS, "TRUNCATE", "REFERENCES", "TRIGGER")
_POLCMD = {"r": ("SELECT",), "a": ("INSERT",), "w": ("UPDATE",), "d": ("DELETE",), "*": COMMANDS}
KIND = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}


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


def _rows(conn: Connection[Any], query: str, params: Any = None) -> list[tuple[Any, ...]]:
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
    for r in _rows(
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
    for r in _rows(conn, _POLICIES_SQL, {"app": subject_oid, "oids": [t.oid for t in rels]}):
        policies.setdefault(r[0], []).append(
            Policy(r[1], r[2], r[3], tuple(r[4]), r[5], r[6], r[7])
        )
    return [TenantTable(**{**t.__dict__, "policies": tuple(policies.get(t.oid, ()))}) for t in rels]


def tenant_functions(conn: Connection[Any], cfg: RlsConfig) -> frozenset[str]:
    """Functions without arguments whose body reads the tenant setting: "the current tenant"."""
    rows = _rows(
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


def effective_check(policy: Policy) -> str | None:
    """WITH CHECK, or USING where PostgreSQL falls back to it (ALL and UPDATE policies)."""
    if policy.check is None and policy.command in {"*", "w"}:
        return policy.using
    return policy.check


def _combine(rel: TenantTable, command: str, side: str, ctx: Context) -> Judgement:
    """OR of the permissive policies, AND of the restrictive ones, for one side of a command."""

    def expr(p: Policy) -> str | None:
        return p.using if side == "using" else effective_check(p)

    applying = [p for p in rel.policies if p.applies and command in _POLCMD[p.command]]
    permissive = [judge(expr(p), rel.column, ctx) for p in applying if p.permissive and expr(p)]
    restrictive = [judge(expr(p), rel.column, ctx) for p in applying if not p.permissive]
    if not [p for p in applying if p.permissive]:
        return Judgement("bound", "statement", "no permissive policy: nothing is admitted")
    if side == "check" and not permissive:
        return Judgement("unbound", why="a permissive policy has no WITH CHECK")
    narrowed = next((r for r in restrictive if r.verdict == "bound"), None)
    if permissive and all(p.verdict == "bound" for p in permissive):
        return max(permissive, key=lambda p: p.cost == "row")
    if narrowed is not None:
        return narrowed
    if not permissive:
        return Judgement("bound", "statement", "no permissive policy admits a row")
    why = next((p.why for p in permissive if p.verdict != "bound"), "")
    if any(p.verdict == "unbound" for p in permissive) and not any(
        r.verdict == "unsure" for r in restrictive
    ):
        return Judgement("unbound", why=why)
    return Judgement("unsure", why=why)


def command_judgements(rel: TenantTable, ctx: Context) -> dict[str, Judgement]:
    """The effective judgement of every command ``rel``'s subject may run (both sides)."""
    out: dict[str, Judgement] = {}
    for command in COMMANDS:
        if command not in rel.privileges:
            continue
        sides = {"SELECT": ("using",), "DELETE": ("using",), "INSERT": ("check",)}.get(
            command, ("using", "check")
        )
        parts = [_combine(rel, command, s, ctx) for s in sides]
        out[command] = next(
            (p for p in parts if p.verdict == "unbound"),
            next((p for p in parts if p.verdict == "unsure"), max(parts, key=_row_first)),
        )
    return out


def _row_first(j: Judgement) -> bool:
    return j.cost == "row"


def _result(  # noqa: PLR0917 - the shape every check shares
    check_id: str, table: str | None, ok: bool, detail: str, fix: str, warn: bool = False
) -> CheckResult:
    status: Status = "pass" if ok else ("warn" if warn else "fail")
    return CheckResult(check_id, "audit", table, status, detail, None if ok else fix)


def _tenant_fix(t: TenantTable, cfg: RlsConfig) -> str:
    column = t.column or "<tenant column>"
    return (
        f"CREATE POLICY {t.name}_tenant_isolation ON {t.display} FOR ALL TO {cfg.app_role} USING "
        f"({column} = (SELECT NULLIF(current_setting('{cfg.tenant_setting}', true),"
        f" '')::uuid)) WITH CHECK (same)"
    )


def audit_relation(
    t: TenantTable, cfg: RlsConfig, ctx: Context, tenant_by_name: set[int]
) -> list[CheckResult]:
    """One reachable relation: tenant-bound, declared non-tenant, or a failure naming the fix."""
    name = t.display
    privs = ", ".join(sorted(t.privileges))
    declared = cfg.declared(name)
    if declared is not None:
        return [
            CheckResult(
                "non-tenant-declared",
                "audit",
                name,
                "pass",
                f"declared non-tenant: {declared.reason} (the canary search checks it)",
            )
        ]
    declare = (
        f'or declare it: [tool.hotelbot.rls-check] non-tenant = [{{object = "{name}",'
        ' reason = "…"}]'
    )
    if t.kind == "v":
        return [
            _result(
                "view-security-invoker",
                name,
                t.invoker,
                "security_invoker: the reader's policies apply"
                if t.invoker
                else f"{cfg.app_role} can read it and it runs as its owner {t.owner}, around"
                " the policies",
                f"ALTER VIEW {name} SET (security_invoker = true) {declare}",
            )
        ]
    if t.kind == "m":
        return [
            _result(
                "materialized-view",
                name,
                False,
                f"{cfg.app_role} can read ({privs}) this materialized view: it has no row security",
                f"REVOKE ALL ON {name} FROM {cfg.app_role}, PUBLIC {declare}",
            )
        ]
    if t.kind == "S":
        return [
            _result(
                "sequence-shared",
                name,
                False,
                f"{cfg.app_role} can use ({privs}) this sequence: one counter shared by every"
                " tenant shows and steers the others' activity",
                f"REVOKE ALL ON SEQUENCE {name} FROM {cfg.app_role}, PUBLIC (use uuid keys or"
                f" identity columns) {declare}",
            )
        ]
    if t.column is None and not t.enabled and t.oid not in tenant_by_name:
        return [
            _result(
                "unbound-relation",
                name,
                False,
                f"{cfg.app_role} can {privs} this {KIND[t.kind]}; it has no row security, no"
                f" {cfg.tenant_column} column and is not declared non-tenant",
                f"ENABLE and FORCE row level security with a tenant-bound policy, REVOKE ALL ON"
                f" {name} FROM {cfg.app_role}, {declare}",
            )
        ]
    return _audit_tenant(t, cfg, ctx)


def _audit_tenant(t: TenantTable, cfg: RlsConfig, ctx: Context) -> list[CheckResult]:
    name = t.display
    results = [
        _result(
            "rls-enabled",
            name,
            t.enabled,
            "row level security is enabled"
            if t.enabled
            else "row level security is DISABLED: every row is visible",
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
        ),
        _result(
            "rls-forced",
            name,
            t.forced,
            "row level security is forced"
            if t.forced
            else f"not FORCED: the owner {t.owner} bypasses the policies",
            f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY",
        ),
    ]
    applying = [p for p in t.policies if p.applies]
    missing = [
        c
        for c in COMMANDS
        if c in t.privileges and not any(p.permissive and c in _POLCMD[p.command] for p in applying)
    ]
    results.append(
        _result(
            "policy-coverage",
            name,
            not missing,
            f"{cfg.app_role} may {'/'.join(missing)} but no permissive policy admits a row"
            if missing
            else "every command it may run has a permissive policy",
            _tenant_fix(t, cfg),
        )
    )
    judged = command_judgements(t, ctx)
    bad = {c: j for c, j in judged.items() if j.verdict == "unbound"}
    unsure = {c: j for c, j in judged.items() if j.verdict == "unsure"}
    if bad:
        detail = "; ".join(f"{c}: {j.why}" for c, j in bad.items())
        results.append(
            _result(
                "policy-bound",
                name,
                False,
                f"the effective policy (permissive OR-ed, restrictive AND-ed) admits other"
                f" tenants' rows: {detail}",
                "drop or rewrite the policy: permissive policies are OR-ed, one loose policy"
                " opens the table; a RESTRICTIVE tenant policy narrows them",
            )
        )
    elif unsure:
        detail = "; ".join(f"{c}: {j.why}" for c, j in unsure.items())
        results.append(
            _result(
                "policy-bound",
                name,
                False,
                f"not judged statically ({detail}); the live probes decide",
                "run without --no-probes; if the probes pass this is sound",
                warn=True,
            )
        )
    else:
        results.append(
            _result(
                "policy-bound",
                name,
                True,
                "the effective policy of every command binds the current tenant",
                "",
            )
        )
    risky = sorted(t.privileges & {"TRUNCATE", "REFERENCES", "TRIGGER"})
    results.append(
        _result(
            "table-privileges",
            name,
            not risky,
            f"{cfg.app_role} has {', '.join(risky)}: TRUNCATE ignores policies, REFERENCES"
            " probes other tenants' keys, TRIGGER runs code on their writes"
            if risky
            else "no TRUNCATE, REFERENCES or TRIGGER",
            f"REVOKE {', '.join(risky) or 'TRUNCATE'} ON {name} FROM {cfg.app_role}",
        )
    )
    return results


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
            _result(
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
        if dict(zip(cols, refcols, strict=True)).get(col) != col:
            loose.setdefault(src, []).append(name)
    return [
        _result(
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
    rows = _rows(
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
        _result(
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


def tenant_by_name(conn: Connection[Any], cfg: RlsConfig) -> set[int]:
    return {
        r[0]
        for r in _rows(
            conn, _TENANT_BY_NAME_SQL, {"column": cfg.tenant_column, "root": cfg.root_table}
        )
    }
