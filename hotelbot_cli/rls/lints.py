"""Performance lints: the tenant setting read once per statement, and an index led by hotel_id.

``hotel_id = current_setting(...)::uuid`` is evaluated per row when a query has no
explicit hotel_id filter; ``(SELECT …)`` turns it into one InitPlan per statement
(PERFORMANCE.md: 6.2 ms vs 1.4 ms). Policies filter on the tenant column, so every
tenant table needs an index whose first column is that column.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from hotelbot_cli.rls.catalog import TenantTable, effective_check
from hotelbot_cli.rls.expr import binding
from hotelbot_cli.rls.report import CheckResult


def lint_policies(tables: list[TenantTable]) -> list[CheckResult]:
    """Flag policies that bind the tenant per row instead of once per statement."""
    results = []
    for t in tables:
        per_row = sorted(
            {
                p.name
                for p in t.policies
                for expr in (p.using, effective_check(p))
                if binding(expr, t.column) == "row"
            }
        )
        results.append(
            CheckResult(
                "policy-per-row",
                "lint",
                t.display,
                "fail" if per_row else "pass",
                f"{', '.join(per_row)} evaluate current_setting() for every row"
                if per_row
                else "the tenant setting is evaluated once per statement",
                "wrap the setting in a sub-select: "
                f"{t.column} = (SELECT NULLIF(current_setting('app.current_hotel_id', true),"
                " '')::uuid)"
                if per_row
                else None,
            )
        )
    return results


def lint_indexes(conn: Connection[Any], tables: list[TenantTable]) -> list[CheckResult]:
    """Flag tenant tables where no index has the tenant column first."""
    led = {
        row[0]
        for row in conn.execute(
            """
            SELECT i.indrelid FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = ANY(%s) AND a.attname = (CASE WHEN EXISTS (
                   SELECT 1 FROM pg_attribute h WHERE h.attrelid = i.indrelid
                      AND h.attname = 'hotel_id' AND NOT h.attisdropped) THEN 'hotel_id'
                   ELSE 'id' END)
            """,
            ([t.oid for t in tables],),
        ).fetchall()
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
