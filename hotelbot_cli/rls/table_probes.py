"""The probes of one tenant table: as tenant A, read, write, re-point and insert at B's rows.

Each probe runs as the app role for a tenant (see :class:`~hotelbot_cli.rls.prober.Prober`)
and is rolled back. Keys are compared with their own types (never text against a JSON
rendering), and every UPDATE/DELETE probe is checked, as the owner, to really match B's
row. An error is a refusal unless it is an integrity error (class 23): those come after
rows were reached. With no tenant, an empty or a malformed one nothing may be visible or
writable; the root table's green_api_token of B must stay unreadable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import Connection, sql

from hotelbot_cli.db.tenant import TENANT_SETTING
from hotelbot_cli.db.tenant_cache import VERIFIED_TENANTS
from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.outcome import Outcome, describe_outcome, refused
from hotelbot_cli.rls.prober import Prober, in_savepoint
from hotelbot_cli.rls.report import CheckResult, probe_result
from hotelbot_cli.rls.rows import (
    Fixture,
    ProbeError,
    Shape,
    ident,
    insert_sql,
    param,
    row_filter,
    updatable_column,
)
from hotelbot_cli.rls.signature_probes import signature_probes


def matched_rows(
    conn: Connection[Any], table: TenantTable, where: sql.Composable, params: list[Any]
) -> int:
    """Rows a probe's key matches as the checker (owner or bypass): proves the probe aims."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE ").format(ident(table)) + where
    outcome = in_savepoint(conn, lambda: conn.execute(query, params).fetchone())
    return -1 if isinstance(outcome, psycopg.Error) or outcome is None else int(outcome[0])


def probe_table(
    prober: Prober, shape: Shape, fixture: Fixture, fixture_for: Callable[[str], dict[str, Any]]
) -> list[CheckResult]:
    """Every probe for one table; fixture_for(tenant) makes a fresh row's values."""
    t = shape.table
    assert t.column is not None
    a, b = fixture.hotel_a, fixture.hotel_b
    row_a = fixture.rows[(t.oid, a)]
    row_b = fixture.rows[(t.oid, b)]
    table = ident(t)
    col = sql.Identifier(t.column)
    key = shape.pk or [t.column]
    wa, pa = row_filter(shape, row_a, key)
    wb, pb = row_filter(shape, row_b, key)
    results: list[CheckResult] = []

    def add(check_id: str, ok: bool, detail: str, fix: str) -> None:
        results.append(probe_result(check_id, t.display, ok, detail, fix))

    count = sql.SQL("SELECT count(*) FROM {} WHERE ").format(table)
    own = prober.run(a, count + wa, pa)
    add(
        "probe-read-own",
        own.error is None and own.value == 1,
        "tenant A reads its own row: "
        + (describe_outcome(own) if own.error is not None else str(own.value)),
        f"GRANT SELECT ON {t.display} TO {prober.app_role} and check the USING clause",
    )
    other = prober.run(
        a,
        count
        + sql.SQL("{} <> %s::{} OR (").format(col, sql.SQL(shape.type_of(t.column)))
        + wb
        + sql.SQL(")"),
        [a, *pb],
    )
    leaked = other.error is None and other.value > 0
    add(
        "probe-read-other",
        not leaked,
        f"tenant A sees {other.value} row(s) of other tenants"
        if leaked
        else "tenant A sees no row of another tenant",
        f"ENABLE and FORCE row level security on {t.display} with a tenant-bound USING",
    )
    if prober.cfg.tenant_setting == TENANT_SETTING:  # the library signs its tenant
        # every permissive policy that lets the app role in reads the cache: signed tenants
        admitting = [p for p in t.policies if p.applies and p.permissive]
        reads_cache = bool(admitting) and all(
            VERIFIED_TENANTS in f"{p.using} {p.check}" for p in admitting
        )
        results += signature_probes(
            prober, t.display, a, b, query=count + wb, params=pb, reads_cache=reads_cache
        )
    writable = updatable_column(prober, shape)
    touch = sql.SQL("UPDATE {} SET {} = {} WHERE ").format(
        table, sql.Identifier(writable), sql.Identifier(writable)
    )
    for check_id, query in (
        ("probe-update-other", touch + wb),
        ("probe-delete-other", sql.SQL("DELETE FROM {} WHERE ").format(table) + wb),
    ):
        outcome = prober.run(a, query, pb)
        matched = matched_rows(prober.conn, t, wb, pb)
        word = "UPDATE" if "update" in check_id else "DELETE"
        if matched != 1:
            add(
                check_id,
                False,
                f"{word} probe is void: its key matches {matched} row(s) of tenant B as the"
                " checker, so it proves nothing",
                "report this: the probe could not address tenant B's row",
            )
        else:
            add(
                check_id,
                refused(outcome),
                f"{word} of tenant B's row: {describe_outcome(outcome)}",
                f"bind USING on {t.display} to the current tenant",
            )
    new_key = b if not t.root else str(uuid.uuid4())
    repoint = prober.run(
        a,
        sql.SQL("UPDATE {} SET {} = %s::{} WHERE ").format(
            table, col, sql.SQL(shape.type_of(t.column))
        )
        + wa,
        [new_key, *pa],
    )
    add(
        "probe-repoint",
        refused(repoint),
        f"moving tenant A's row to another tenant: {describe_outcome(repoint)}",
        f"REVOKE UPDATE ({t.column}) ON {t.display} FROM {prober.app_role}; bind WITH CHECK",
    )
    try:
        values = fixture_for(b)
        ins = prober.run(a, insert_sql(shape, values), list(values.values()))
        add(
            "probe-insert-other",
            ins.error is not None,
            f"INSERT of a row for tenant B: {describe_outcome(ins)}",
            f"bind WITH CHECK on {t.display} to the current tenant",
        )
    except ProbeError as exc:
        add("probe-insert-other", False, str(exc), "add a probe value for this column")
    results += _cross_reference(
        prober, shape=shape, fixture=fixture, fixture_for=fixture_for, wa=wa, pa=pa
    )
    results += _no_tenant(prober, shape=shape, row_a=row_a, wa=wa, pa=pa, fixture_for=fixture_for)
    return results


def _cross_reference(
    prober: Prober,
    *,
    shape: Shape,
    fixture: Fixture,
    fixture_for: Callable[[str], dict[str, Any]],
    wa: sql.Composable,
    pa: list[Any],
) -> list[CheckResult]:
    t = shape.table
    a, b = fixture.hotel_a, fixture.hotel_b
    results = []
    for name, cols, ref_oid, ref_cols in shape.refs:
        own_cols = [c for c in cols if c != t.column]
        target = fixture.rows.get((ref_oid, b))
        if not own_cols or target is None:
            continue
        values = [param(target[ref_cols[cols.index(c)]]) for c in own_cols]
        assign = sql.SQL(", ").join(
            sql.SQL("{} = %s::{}").format(sql.Identifier(c), sql.SQL(shape.type_of(c)))
            for c in own_cols
        )
        upd = prober.run(
            a,
            sql.SQL("UPDATE {} SET ").format(ident(t)) + assign + sql.SQL(" WHERE ") + wa,
            [*values, *pa],
        )
        try:
            row = fixture_for(a)
            row.update(dict(zip(own_cols, values, strict=True)))
            ins = prober.run(a, insert_sql(shape, row), list(row.values()))
        except ProbeError:
            ins = Outcome()
        ok = refused(upd, "23503") and (ins.error is not None or ins.rowcount == 0)
        results.append(
            CheckResult(
                "probe-cross-reference",
                "probe",
                t.display,
                "pass" if ok else "fail",
                f"{name}: pointing tenant A's row at tenant B's: update {describe_outcome(upd)},"
                f" insert {describe_outcome(ins)}",
                None
                if ok
                else f"make {name} composite: FOREIGN KEY ({t.column}, …) REFERENCES"
                f" …({t.column}, id)",
            )
        )
    return results


def _no_tenant(
    prober: Prober,
    *,
    shape: Shape,
    row_a: dict[str, Any],
    wa: sql.Composable,
    pa: list[Any],
    fixture_for: Callable[[str], dict[str, Any]],
) -> list[CheckResult]:
    """With no tenant (or an empty one) nothing is visible or writable; errors are refusals."""
    t = shape.table
    assert t.column is not None
    table = ident(t)
    results = []
    a = str(row_a[t.column])
    writable = updatable_column(prober, shape)
    for label, tenant in (("unset", None), ("empty", "")):
        seen = prober.run(tenant, sql.SQL("SELECT count(*) FROM {}").format(table))
        upd = prober.run(
            tenant,
            sql.SQL("UPDATE {} SET {} = {} WHERE ").format(
                table, sql.Identifier(writable), sql.Identifier(writable)
            )
            + wa,
            pa,
        )
        dele = prober.run(tenant, sql.SQL("DELETE FROM {} WHERE ").format(table) + wa, pa)
        try:
            values = fixture_for(a)
            ins = prober.run(tenant, insert_sql(shape, values), list(values.values()))
        except ProbeError:
            ins = Outcome()
        rows = seen.count
        ok = rows == 0 and refused(upd) and refused(dele) and refused(ins)
        results.append(
            CheckResult(
                f"probe-no-tenant-{label}",
                "probe",
                t.display,
                "pass" if ok else "fail",
                f"tenant {label}: sees {rows} row(s); update {describe_outcome(upd)},"
                f" delete {describe_outcome(dele)}, insert {describe_outcome(ins)}"
                " (an error is a refusal)",
                None
                if ok
                else f"policies must compare with NULLIF(current_setting("
                f"'{prober.cfg.tenant_setting}', true), '') so that no tenant means no rows",
            )
        )
    bad = prober.run("not-a-uuid", sql.SQL("SELECT count(*) FROM {}").format(table))
    ok = bad.error is not None or bad.value == 0
    results.append(
        CheckResult(
            "probe-malformed-tenant",
            "probe",
            t.display,
            "pass" if ok else "fail",
            "tenant 'not-a-uuid': "
            + (describe_outcome(bad) if bad.error is not None else str(bad.value))
            + " (an error or no rows is right)",
            None if ok else "cast the setting to the tenant column's type in the policy",
        )
    )
    return results


def probe_token(prober: Prober, fixture: Fixture, root: Shape) -> CheckResult:
    """Tenant A cannot read tenant B's green_api_token by any filter on the root table."""
    if not any(c.name == "green_api_token" for c in root.columns):
        return CheckResult(
            "probe-token", "probe", root.table.display, "skip", "no green_api_token column"
        )
    found = prober.run(
        fixture.hotel_a,
        sql.SQL("SELECT count(*) FROM {} WHERE green_api_token = %s").format(ident(root.table)),
        [fixture.token_b],
    )
    ok = found.error is not None or found.value == 0
    return CheckResult(
        "probe-token",
        "probe",
        root.table.display,
        "pass" if ok else "fail",
        "tenant A cannot read tenant B's green_api_token"
        if ok
        else "tenant A can read tenant B's green_api_token",
        None
        if ok
        else "bind the root policy to id = current tenant, or REVOKE SELECT"
        " (green_api_token) from the app role",
    )
