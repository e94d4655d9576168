"""Performance lints: the tenant read once per statement, and an index led by the tenant column.

``hotel_id = current_setting(...)::uuid`` is evaluated per row when a query has no
explicit hotel_id filter; ``(SELECT …)`` turns it into one InitPlan per statement
(PERFORMANCE.md: 6.2 ms vs 1.4 ms). A tenant function called bare is a warning for
the same reason. Policies filter on the tenant column, so every probed tenant table
needs an index whose first column is that column.

On Citus a distributed table's policy must call the function bare (sub-selects are
refused there): that is no warning, as the tenant is an index condition of every tenant
query on the shard (the shard's indexes lead with the distribution column).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.effective_policy import POLICY_COMMANDS, effective_check
from hotelbot_cli.rls.policy import Context, judge
from hotelbot_cli.rls.report import CheckResult


def lint_policies(
    tables: list[TenantTable],
    ctx: Context,
    cfg: RlsConfig,
    distributed: frozenset[str] = frozenset(),
) -> list[CheckResult]:
    """Flag policies that read the tenant per row instead of once per statement.

    ``distributed``: tables Citus distributes (or replicates), where a bare call is required.
    """
    results = []
    for t in tables:
        costs: dict[str, set[str]] = {}
        for p in t.policies:
            if not p.applies or not any(c in t.privileges for c in POLICY_COMMANDS[p.command]):
                continue
            for expr in (p.using, effective_check(p)):
                j = judge(expr, t.column, ctx)
                if j.verdict == "bound" and j.cost in {"row", "function"}:
                    costs.setdefault(j.cost, set()).add(p.name)
        row, fn = sorted(costs.get("row", ())), sorted(costs.get("function", ()))
        once = (
            f"{t.column} = (SELECT NULLIF(current_setting('{cfg.tenant_setting}', true),"
            " '')::uuid), or (SELECT <tenant function>())"
        )
        status = "fail" if row else ("warn" if fn else "pass")
        citus = status == "warn" and t.display in distributed
        if citus:
            status = "pass"
        results.append(
            CheckResult(
                "policy-per-row",
                "lint",
                t.display,
                status,  # type: ignore[arg-type]
                f"{', '.join(row)} evaluate current_setting() for every row"
                if row
                else f"{', '.join(fn)} call the tenant function bare, as Citus requires"
                " (no sub-select in policies on its tables); on a shard it is an index"
                " condition of every tenant query"
                if citus
                else f"{', '.join(fn)} call the tenant function bare: once per row unless"
                " an index condition"
                if fn
                else "the tenant is read once per statement",
                f"wrap the tenant in a sub-select: {once}" if status != "pass" else None,
            )
        )
    return results


def lint_indexes(conn: Connection[Any], tables: list[TenantTable]) -> list[CheckResult]:
    """Flag tenant tables where no index has the tenant column first."""
    led = {
        row[0]
        for row in conn.execute(
            """
            SELECT i.indrelid, a.attname FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = ANY(%s)
            """,
            ([t.oid for t in tables],),
        ).fetchall()
        if any(t.oid == row[0] and t.column == row[1] for t in tables)
    }
    return [
        CheckResult(
            "tenant-index",
            "lint",
            t.display,
            "pass" if t.oid in led else "fail",
            f"an index leads with {t.column}"
            if t.oid in led
            else f"no index leads with {t.column}: every tenant query scans the table",
            None
            if t.oid in led
            else f"CREATE INDEX ON {t.display} ({t.column}, <the column you filter or sort by>)",
        )
        for t in tables
    ]
