"""The cost of tenant isolation: each operation as the tenant and as the owner, concurrency 1."""

from __future__ import annotations

import dataclasses
import random
import time
from typing import TYPE_CHECKING, Any

from hotelbot_cli.bench import driver
from hotelbot_cli.bench.options import Progress, ProgressFn
from hotelbot_cli.bench.report import IsolationRow
from hotelbot_cli.bench.stats import ratio, summarize
from hotelbot_cli.bench.targets import TargetPicker
from hotelbot_cli.bench.workers import Plan

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

    from hotelbot_cli.bench.reference import Reference
    from hotelbot_cli.settings import Settings


def measure_isolation(
    conn: psycopg.Connection[Any],
    plan: Plan,
    iterations: int,
    progress: ProgressFn | None,
    tenant_conn: psycopg.Connection[Any] | None = None,
) -> list[IsolationRow]:
    """Each operation as tenant and as owner, alternating, at concurrency 1.

    The owner runs on ``conn``; the tenant on ``tenant_conn`` (the bot's login) or, without
    one, on ``conn`` too with the role switched in each transaction. Both sides of a pair
    run on the same target (same rows, less noise), except for a state-dependent operation:
    there the first run of a pair would open what the second only finds, so each side gets
    its own target and both meet the same mix of paths.
    """
    tenant_conn = tenant_conn or conn
    _register_every_hotel(tenant_conn, plan)
    rng = random.Random(plan.options.seed)
    picker = TargetPicker(plan.targets, rng)
    rows = []
    perf = time.perf_counter_ns
    for n, op in enumerate(plan.ops):
        if progress:
            progress(Progress(phase=f"isolation {n + 1}/{len(plan.ops)}: {op.name}"))
        times: dict[bool, list[int]] = {True: [], False: []}
        for i in range(iterations + plan.options.warmup):
            pair = picker.pick()
            for tenant in (True, False) if i % 2 else (False, True):
                target = picker.pick() if op.state_dependent else pair
                start = perf()
                driver.run_operation(
                    tenant_conn if tenant else conn,
                    op,
                    target,
                    rng,
                    plan.ctx,
                    tenant=tenant,
                    role=plan.role,
                )
                if i >= plan.options.warmup:
                    times[tenant].append(perf() - start)
        tenant_s, owner_s = summarize(times[True]), summarize(times[False])
        rows.append(
            IsolationRow(
                name=op.name,
                tenant_p50_ms=tenant_s.p50_ms,
                owner_p50_ms=owner_s.p50_ms,
                ratio=ratio(tenant_s.p50_ms, owner_s.p50_ms),
                count=tenant_s.count,
            )
        )
    return rows


def _register_every_hotel(tenant_conn: psycopg.Connection[Any], plan: Plan) -> None:
    """One tenant transaction per hotel before anything is measured, so that the tenant's
    connection has registered each hotel's signature (revision 013's cache), as a bot's
    pooled connection that has been up for a while has.

    A connection registers a signature once, by one more statement in its first
    transaction for that hotel. A fresh connection meeting 50 hotels in 200 pairs did so in
    about a fifth of its samples, which moved the tenant's p50; in the main run it is one
    operation in a hundred. The transaction is a read where the plan has one.
    """
    tenant_ops = [op for op in plan.ops if op.needs_tenant]
    if not tenant_ops:
        return
    op = next((op for op in tenant_ops if not op.writes), tenant_ops[0])
    rng = random.Random(plan.options.seed)
    for target in {t.hotel_id: t for t in plan.targets}.values():
        driver.run_operation(tenant_conn, op, target, rng, plan.ctx, tenant=True, role=plan.role)


def against_reference(rows: list[IsolationRow], one_client: Reference | None) -> list[IsolationRow]:
    """The rows with each tenant p50 over pgbench's latency at one client, when there is one."""
    if not (one_client and one_client.latency_ms):
        return rows
    latency = one_client.latency_ms
    return [dataclasses.replace(r, ref_ratio=ratio(r.tenant_p50_ms, latency)) for r in rows]


def run_isolation(
    admin: psycopg.Connection[Any],
    plan: Plan,
    progress: ProgressFn | None,
    *,
    login_url: URL | None,
    settings: Settings,
    one_client: Reference | None,
) -> list[IsolationRow]:
    """The isolation phase: the owner on ``admin``, the tenant as the bot's login at
    ``login_url`` (None: on ``admin`` too, switching role); ``one_client``: pgbench at 1."""
    from sqlalchemy.pool import NullPool

    from hotelbot_cli.db.engine import make_engine
    from hotelbot_cli.observability import raw_connection

    tenant_raw = None
    if login_url is not None:  # its statements logged (and timed) as the owner's on admin are
        tenant_raw = raw_connection(
            make_engine(login_url, settings, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        )
    try:
        rows = measure_isolation(
            admin,
            plan,
            plan.options.isolation_iterations,
            progress,
            tenant_raw.driver_connection if tenant_raw is not None else None,
        )
    finally:
        if tenant_raw is not None:
            tenant_raw.close()
    return against_reference(rows, one_client)
