"""The audit of each reachable relation: tenant-bound, declared non-tenant, or a failure.

Each relation the app role reaches (see :mod:`hotelbot_cli.rls.catalog`) must be
tenant-bound (row security enabled and forced, the effective policy of every command it
may run bound to the current tenant) or declared non-tenant in
``[tool.hotelbot.rls-check] non-tenant`` with a reason. Views must be security invokers;
materialized views and sequences have no row security at all. The other paths (functions,
triggers, rules, large objects, schemas, catalogs, role attributes) are in
:mod:`hotelbot_cli.rls.roles`, :mod:`hotelbot_cli.rls.objects` and
:mod:`hotelbot_cli.rls.code_paths`.
"""

from __future__ import annotations

from hotelbot_cli.rls.catalog import COMMANDS, TenantTable
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.effective_policy import POLICY_COMMANDS, command_judgements
from hotelbot_cli.rls.policy import Context
from hotelbot_cli.rls.report import CheckResult, audit_result

KIND = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}


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
            audit_result(
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
            audit_result(
                "materialized-view",
                name,
                False,
                f"{cfg.app_role} can read ({privs}) this materialized view: it has no row security",
                f"REVOKE ALL ON {name} FROM {cfg.app_role}, PUBLIC {declare}",
            )
        ]
    if t.kind == "S":
        return [
            audit_result(
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
            audit_result(
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
        audit_result(
            "rls-enabled",
            name,
            t.enabled,
            "row level security is enabled"
            if t.enabled
            else "row level security is DISABLED: every row is visible",
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
        ),
        audit_result(
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
        if c in t.privileges
        and not any(p.permissive and c in POLICY_COMMANDS[p.command] for p in applying)
    ]
    results.append(
        audit_result(
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
            audit_result(
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
            audit_result(
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
            audit_result(
                "policy-bound",
                name,
                True,
                "the effective policy of every command binds the current tenant",
                "",
            )
        )
    risky = sorted(t.privileges & {"TRUNCATE", "REFERENCES", "TRIGGER"})
    results.append(
        audit_result(
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
