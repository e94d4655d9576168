"""Live probes: act as the app role for probe tenant A and try to reach probe tenant B.

The caller holds one transaction that is always rolled back. Two probe tenants get a row
in every probed table (generated from the catalog, so new tables are covered; see
:mod:`hotelbot_cli.rls.fixture`). B's rows carry canary values. Each probe runs in a
savepoint as the app role with the tenant bound by
:func:`hotelbot_cli.db.tenant.tenant_statements`, and is rolled back to that savepoint
(:mod:`hotelbot_cli.rls.prober`). This module switches to the app role, builds the
fixture and runs, per table, :mod:`hotelbot_cli.rls.table_probes`, then the token probe
and the effect probes (:mod:`hotelbot_cli.rls.effects`). The rows it writes are
:mod:`hotelbot_cli.rls.rows`. Token and canary values never leave these modules.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import Connection, sql

from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.fixture import build_fixture, remove_fixture
from hotelbot_cli.rls.outcome import first_line
from hotelbot_cli.rls.prober import Prober, in_savepoint
from hotelbot_cli.rls.report import CheckResult
from hotelbot_cli.rls.rows import fresh_row
from hotelbot_cli.rls.table_probes import probe_table, probe_token

if TYPE_CHECKING:
    from hotelbot_cli.rls.audit import Audit


def _setup_failed(detail: str, fix: str) -> list[CheckResult]:
    """The probes cannot start: one failed ``probe-setup`` result says why."""
    return [CheckResult("probe-setup", "probe", None, "fail", detail, fix)]


def run_probes(conn: Connection[Any], cfg: RlsConfig, found: Audit) -> list[CheckResult]:
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


def _probe(prober: Prober, found: Audit, bypass: bool) -> list[CheckResult]:
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
