"""Live probes: act as the app role for probe tenant A and try to reach probe tenant B.

The caller holds one transaction that is always rolled back. Two probe tenants get a row
in every probed table (generated from the catalog, so new tables are covered). Tenant
rows other than the root are written BY THE APP ROLE for that tenant, through the normal
tables, so triggers and rules fire as in production (the owner writes only what the app
may not). B's rows carry canary values. Each probe runs in a savepoint as the app role
with the tenant bound by :func:`hotelbot_cli.db.tenant.tenant_statements`, and is rolled
back to that savepoint. Keys are compared with their own types (never text against a
JSON rendering), and every UPDATE/DELETE probe is checked, as the owner, to really match
B's row. An error is a refusal unless it is an integrity error (class 23): those come
after rows were reached. A non-superuser owner inserts the probe rows after
``ALTER TABLE … NO FORCE ROW LEVEL SECURITY`` (rolled back with everything else).
The prober is :mod:`hotelbot_cli.rls.prober`, its fixture :mod:`hotelbot_cli.rls.fixture`;
the rows it writes, :mod:`hotelbot_cli.rls.rows`. Token and canary values never leave these modules.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import Connection, sql

from hotelbot_cli.db.tenant import TENANT_SETTING
from hotelbot_cli.db.tenant_cache import REMEMBER_TENANT, VERIFIED_TENANTS, registered_signatures
from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.fixture import build_fixture, remove_fixture
from hotelbot_cli.rls.outcome import Outcome, describe_outcome, first_line, refused
from hotelbot_cli.rls.prober import Prober, in_savepoint
from hotelbot_cli.rls.report import CheckResult
from hotelbot_cli.rls.rows import (
    Fixture,
    ProbeError,
    Shape,
    fresh_row,
    ident,
    insert_sql,
    param,
    row_filter,
    updatable_column,
)

#: How long ago the probe's expired signature ran out: past any clock skew.
EXPIRED_BY_S = 3600


def verdict(check_id: str, display: str, ok: bool, detail: str, fix: str) -> CheckResult:
    """A probe's pass, or its failure with the fix."""
    return CheckResult(
        check_id, "probe", display, "pass" if ok else "fail", detail, None if ok else fix
    )


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
        results.append(verdict(check_id, t.display, ok, detail, fix))

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


def _setup_failed(detail: str, fix: str) -> list[CheckResult]:
    """The probes cannot start: one failed ``probe-setup`` result says why."""
    return [CheckResult("probe-setup", "probe", None, "fail", detail, fix)]


def run_probes(conn: Connection[Any], cfg: RlsConfig, found: Any) -> list[CheckResult]:
    """Build the fixture and run every probe; the caller rolls the transaction back.

    On a distributed schema the fixture is committed and removed here, at the end.
    """
    can = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    bypass = bool(can and can[0])
    switch = in_savepoint(
        conn,
        lambda: conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(cfg.app_role))),
    )
    if isinstance(switch, psycopg.Error):
        return _setup_failed(
            f"cannot act as {cfg.app_role}: {first_line(switch)}",
            f"GRANT {cfg.app_role} TO <the role in DATABASE_URL> (migration 007 does it)",
        )
    prober = Prober(conn, cfg)
    if prober.distributed and not bypass:
        return _setup_failed(
            "on a distributed schema the probe rows are committed (and removed): that"
            " needs a role that bypasses row level security",
            "run rls-check on the Citus coordinator as a superuser or a BYPASSRLS role",
        )
    if not prober.distributed:
        return _probe(prober, found, bypass)
    conn.rollback()
    try:
        return _probe(prober, found, bypass)
    finally:
        remove_fixture(prober)


def _probe(prober: Prober, found: Any, bypass: bool) -> list[CheckResult]:
    from hotelbot_cli.rls.effects import effect_probes

    fixture, shapes = build_fixture(prober.conn, found.tenant_tables, bypass, prober)
    prober.observer = fixture.hotel_b or None
    results: list[CheckResult] = []
    root = next((s for s in shapes if s.table.root), None)
    ready = []
    for shape in shapes:
        t = shape.table
        if t.oid in fixture.broken or not fixture.hotel_b:
            results.append(
                CheckResult(
                    "probe-setup",
                    "probe",
                    t.display,
                    "fail",
                    fixture.broken.get(t.oid, "no probe tenants"),
                    "see the detail; add a value for the column in hotelbot_cli/rls/rows.py"
                    " or --ignore probe-setup:<table> with a reason",
                )
            )
            continue
        ready.append(shape)
        results += probe_table(prober, shape, fixture, functools.partial(fresh_row, shape, fixture))
    if root is not None and fixture.hotel_b and root.table.oid not in fixture.broken:
        results.append(probe_token(prober, fixture, root))
    if fixture.hotel_b:
        results += effect_probes(prober, found, ready, fixture, bypass)
    return results


def signature_probes(
    prober: Prober,
    display: str,
    a: str,
    b: str,
    *,
    query: sql.Composed,
    params: list[Any],
    reads_cache: bool,
) -> list[CheckResult]:
    """What SQL inside a tenant's transaction can do against the signed tenant: name
    another hotel, use an expired signature, plant a made-up one in the cache.

    ``query`` counts tenant B's probe row (``params`` its key); ``reads_cache``: every
    policy that admits the app role reads the cache of verified signatures (revision 013),
    so the table has chosen signed tenants."""
    results: list[CheckResult] = []

    def _add(check_id: str, ok: bool, detail: str, fix: str) -> None:
        results.append(verdict(check_id, display, ok, detail, fix))

    forged = prober.run(a, query, params, forge=b)
    seen = forged.count
    # A warning, not a failure: honest code never forges its tenant (the threat model
    # of the other probes); SQL injected into a request can, unless the tenant is signed.
    results.append(
        CheckResult(
            "probe-forged-tenant",
            "probe",
            display,
            "pass" if seen == 0 else "warn",
            f"tenant A's transaction setting {prober.cfg.tenant_setting} to tenant B by"
            f" hand sees {seen} of B's row(s)",
            None
            if seen == 0
            else f"compare the policies on {display} with the signature-verifying"
            " hotelbot_current_hotel_id() (revision 009), not the bare setting",
        )
    )
    if seen == 0 and forged.error is None:
        # The policies verify signatures: a signature of B's own that has expired (one
        # that leaked an hour ago, say) must open nothing either.
        stale = prober.run(b, query, params, ttl=-EXPIRED_BY_S)
        opened = stale.count
        _add(
            "probe-expired-signature",
            opened == 0,
            f"tenant B bound with its own signature, expired {EXPIRED_BY_S} s ago,"
            f" sees {opened} of B's row(s)",
            "hotelbot_current_hotel_id() must return NULL for an expired signature:"
            " re-create it with revision 011's body (its expires < now() test)",
        )
    if reads_cache and registered_signatures(prober.conn) is not None:
        # Where every admitting policy reads the cache of verified signatures (013), a
        # made-up signature opens nothing, whatever the forging probe found: SQL in A's
        # transaction writes one for B into the cache, or hands it to the registering
        # function, then binds B with it. It fails where the forging probe only warns: a
        # policy that reads the cache has chosen signed tenants.
        planted = prober.run(a, query, params, plant=b)
        _add(
            "probe-planted-signature",
            planted.count == 0,
            "tenant A's transaction planting a made-up signature of tenant B in the"
            f" cache of verified signatures, then binding B with it, sees"
            f" {planted.count} of B's row(s)",
            f"REVOKE INSERT, UPDATE ON {VERIFIED_TENANTS} FROM the app role and every role it"
            f" can become; {REMEMBER_TENANT}() must store only a signature that verifies"
            f" (revision 013's body); the policy on {display} must find the digest of the bound"
            " hotel and signature, else ask hotelbot_current_hotel_id() (revision 013)",
        )
    return results
