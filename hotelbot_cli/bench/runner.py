"""Runs a bench: its engines and logins, and the phases in order, into one BenchReport.

Phases: survey of the database → index check (EXPLAIN) → pgbench reference → measured
mixed workload (:mod:`hotelbot_cli.bench.measured`) → tenant-vs-owner isolation cost at
concurrency 1 (:mod:`hotelbot_cli.bench.isolation`). Each phase reports progress through an
optional callback; nothing here prints. What to run is :mod:`hotelbot_cli.bench.options`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from hotelbot_cli.bench import explain, reference
from hotelbot_cli.bench.isolation import run_isolation
from hotelbot_cli.bench.measured import operation_stats, pool_stats, run_measured
from hotelbot_cli.bench.options import BenchOptions, Progress, ProgressFn
from hotelbot_cli.bench.report import BenchReport, IsolationRow
from hotelbot_cli.bench.survey import survey
from hotelbot_cli.bench.workers import Plan
from hotelbot_cli.bench.workload import APP_ROLE, select_operations
from hotelbot_cli.observability import raw_connection

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

    from hotelbot_cli.bench.reference import Reference
    from hotelbot_cli.settings import Settings


def _references(
    admin_engine: Engine, options: BenchOptions, progress: ProgressFn | None
) -> list[Reference]:
    """pgbench at the run's concurrency, and at one client for the isolation table."""
    if not options.reference:
        return []
    if progress:
        progress(Progress(phase="pgbench reference"))
    clients = sorted({options.concurrency, 1} if options.isolation else {options.concurrency})
    return reference.measure(admin_engine, clients, options.reference_seconds)


def _with_latency(refs: list[Reference], clients: int) -> Reference | None:
    return next((r for r in refs if r.clients == clients and r.latency_ms), None)


def run_bench(  # noqa: PLR0915 - the phases in order, read top to bottom
    owner: Engine | URL | str | None = None,
    options: BenchOptions | None = None,
    progress: ProgressFn | None = None,
    settings: Settings | None = None,
) -> BenchReport:
    """Benchmark the bot's workload on the database of ``owner``: the tables' owner (or a
    superuser), as an Engine like every library entry point, or its URL (default: the
    configured database). Bench makes its own engines from that login (a NullPool admin,
    the measured pool, the async engine), so only the URL of an Engine is used."""
    from sqlalchemy.pool import NullPool

    from hotelbot_cli import migrations
    from hotelbot_cli.bench.login import bot_login
    from hotelbot_cli.db.engine import make_engine, resolve_url
    from hotelbot_cli.settings import Settings

    url = owner.url if isinstance(owner, Engine) else owner
    options = options or BenchOptions()
    options.validate()
    settings = settings or Settings.from_env()
    pool_size = options.pool_size or options.concurrency
    max_overflow = (
        options.max_overflow if options.max_overflow is not None else settings.pool.max_overflow
    )
    overrides: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_pre_ping": options.pre_ping}
    if settings.pool.kind != "null":
        overrides.update(pool_size=pool_size, max_overflow=max_overflow)
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    owner_url = resolve_url(url, settings)
    admin_engine = make_engine(owner_url, settings, poolclass=NullPool)
    engine: Engine | None = None
    stack = contextlib.ExitStack()
    notes: list[str] = []
    try:
        migrations.require_head(admin_engine)
        admin_raw = raw_connection(admin_engine)
        admin: psycopg.Connection[Any] = admin_raw.driver_connection
        admin.autocommit = True
        try:
            found = survey(admin, owner_url, options.targets_per_hotel)
            role = found.role
            if role is None:
                notes.append(
                    f"role {APP_ROLE} is missing or not granted: tenant runs use the"
                    " connecting role (policies not applied)"
                )
            ops = select_operations(options.ops)
            tenant_url, login_mode = owner_url, "set-role"
            if role is not None and options.tenant_login == "login":
                login = stack.enter_context(bot_login(admin, owner_url, role, options.app_url))
                tenant_url, login_mode = login.url, login.description
            engine = make_engine(tenant_url, settings, **overrides)
            # A login that is a member of app_user needs no role statement per transaction.
            plan = Plan(
                ops, found.targets, found.ctx, role if tenant_url is owner_url else None, options
            )
            checks = []
            if options.explain:
                if progress:
                    progress(Progress(phase="index check"))
                checks = explain.check_indexes(
                    admin, ops, found.targets[0], found.ctx, tenant=True, role=role
                )
            refs = _references(admin_engine, options, progress)
            notes += [
                f"reference at {r.clients} client(s) skipped: {r.skipped}"
                for r in refs
                if r.skipped
            ]

            run = run_measured(
                admin,
                engine,
                plan,
                url=tenant_url,
                overrides=overrides,
                settings=settings,
                progress=progress,
            )
            op_stats = operation_stats(ops, run, _with_latency(refs, options.concurrency))
            pool = pool_stats(run.pool, options.pre_ping)

            isolation: list[IsolationRow] = []
            if options.isolation and found.baseline_skipped:
                notes.append(f"owner baseline skipped: {found.baseline_skipped}")
            elif options.isolation:
                isolation = run_isolation(
                    admin,
                    plan,
                    progress,
                    login_url=tenant_url if tenant_url is not owner_url else None,
                    settings=settings,
                    one_client=_with_latency(refs, 1),
                )
        finally:
            if engine is not None:
                engine.dispose()
            stack.close()  # drops a throwaway login once its connections are closed
            admin_raw.close()
    finally:
        admin_engine.dispose()

    return BenchReport(
        started_at=started_at,
        settings={
            "duration": options.duration,
            "iterations": options.iterations,
            "concurrency": options.concurrency,
            "processes": options.processes,
            "engine": options.engine,
            "ops": [op.name for op in ops],
            "seed": options.seed,
            "pre_ping": options.pre_ping,
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "warmup": options.warmup,
            "isolation_iterations": options.isolation_iterations if options.isolation else 0,
            "tenant_role": role,
            "tenant_login": login_mode,
            "database": owner_url.database,
        },
        dataset=found.dataset,
        operations=op_stats,
        pool=pool,
        elapsed_s=run.elapsed_s,
        total_ops=sum(o.count for o in op_stats),
        isolation=isolation,
        index_checks=checks,
        db=run.db,
        references=refs,
        server_version=found.server_version,
        notes=notes,
        isolation_skipped=found.baseline_skipped if options.isolation else None,
    )
