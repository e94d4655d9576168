"""Runs the workload: sync threads or asyncio tasks through the project's pooled engine.

Phases: index check (EXPLAIN) → pgbench reference → warm-up → measured mixed workload
(with pool metrics and pg_stat_database deltas) → tenant-vs-owner isolation cost at
concurrency 1. Each phase reports progress through an optional callback; nothing here
prints. What to run is :mod:`hotelbot_cli.bench.options`; the main run's threads and tasks
are :mod:`hotelbot_cli.bench.workers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from hotelbot_cli.bench import explain, reference, workload
from hotelbot_cli.bench.options import BenchOptions, Progress, ProgressFn
from hotelbot_cli.bench.report import (
    BenchReport,
    DbCounters,
    IsolationRow,
    OpStats,
    PoolStats,
)
from hotelbot_cli.bench.stats import ratio, summarize
from hotelbot_cli.bench.workers import Plan, Stop, Tally, run_async, run_threads
from hotelbot_cli.errors import HotelbotError, UsageError
from hotelbot_cli.observability import raw_connection

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from hotelbot_cli.settings import Settings


class EmptyDatabase(HotelbotError):
    """There is nothing to benchmark."""


# --- database helpers ----------------------------------------------------------------------------

_COUNTERS_SQL = (
    "SELECT xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched,"
    " tup_inserted, tup_updated, tup_deleted, deadlocks"
    " FROM pg_stat_database WHERE datname = current_database()"
)


def _counters(conn: Any) -> tuple[int, ...]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(_COUNTERS_SQL).fetchone()
    return tuple(int(v or 0) for v in row) if row else (0,) * 10


def _settled_counters(conn: Any, previous: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Counters once closed backends have flushed theirs (they do so as they exit)."""
    last = _counters(conn)
    for _ in range(20):
        time.sleep(0.05)
        now = _counters(conn)
        if now == last and now != previous:
            return now
        last = now
    return last


def _dataset(conn: Any) -> dict[str, int]:
    counts = {}
    for table in ("hotels", "guests", "conversations", "messages", "triggers"):
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def _bypasses_rls(conn: Any) -> bool:
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])


#: The tables bench reads its targets and row counts from.
_TARGET_TABLES = ("hotels", "guests", "conversations", "messages", "triggers")


def _read_without_force(conn: Any, per_hotel: int) -> tuple[dict[str, int], list[Any]]:
    """Row counts and targets as the tables' owner, FORCE lifted in a rolled-back transaction.

    As ``hotelbot seed`` does; the ALTERs wait at most 2 s for their locks and are undone.
    Not the owner either: a UsageError saying which role bench needs.
    """
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL lock_timeout = '2s'")
            for table in _TARGET_TABLES:
                conn.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            return _dataset(conn), workload.load_targets(conn, per_hotel)
    except psycopg.errors.InsufficientPrivilege:
        raise UsageError(
            "bench reads its targets as the tables' owner, a superuser or a BYPASSRLS role",
            "connect as the role that ran `hotelbot db upgrade`",
        ) from None


def _app_role(conn: Any) -> str | None:
    row = conn.execute(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
        (workload.APP_ROLE,),
    ).fetchone()
    return workload.APP_ROLE if row and row[0] else None


# --- phases --------------------------------------------------------------------------------------


def _isolation(
    conn: Any, plan: Plan, iterations: int, progress: ProgressFn | None, tenant_conn: Any = None
) -> list[IsolationRow]:
    """Each operation as tenant and as owner, alternating, at concurrency 1.

    The owner runs on ``conn``; the tenant on ``tenant_conn`` (the bot's login) or, without
    one, on ``conn`` too with the role switched in each transaction. Both sides of a pair
    run on the same target (same rows, less noise), except for a state-dependent operation:
    there the first run of a pair would open what the second only finds, so each side gets
    its own target and both meet the same mix of paths.
    """
    tenant_conn = tenant_conn or conn
    rng = random.Random(plan.options.seed)
    picker = workload.TargetPicker(plan.targets, rng)
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
                workload.run_operation(
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


def run_bench(  # noqa: PLR0912, PLR0915 - the phases in order, read top to bottom
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
    from hotelbot_cli.db.engine import make_async_engine, make_engine, resolve_url
    from hotelbot_cli.db.tenant import propagates_set_local, signing_key
    from hotelbot_cli.observability.metrics import metrics_for
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
    engine: Any = None
    tenant_raw: Any = None
    stack = contextlib.ExitStack()
    notes: list[str] = []
    try:
        migrations.require_head(admin_engine)
        admin_raw = raw_connection(admin_engine)
        admin: Any = admin_raw.driver_connection
        admin.autocommit = True
        try:
            baseline_skipped = None
            if _bypasses_rls(admin):
                dataset = _dataset(admin)
                targets = workload.load_targets(admin, options.targets_per_hotel)
            else:
                # FORCE row level security hides every row from an owner that bypasses none:
                # read the targets with FORCE lifted in a rolled-back transaction; the owner
                # baseline (no RLS) cannot be measured, the tenant side can.
                dataset, targets = _read_without_force(admin, options.targets_per_hotel)
                baseline_skipped = (
                    f"{owner_url.username or 'the connecting role'} bypasses no row level"
                    " security (a superuser or BYPASSRLS role measures it)"
                )
            if dataset["hotels"] == 0:
                raise EmptyDatabase(
                    "the database has no hotels to benchmark", "run `hotelbot seed` first"
                )
            if not targets:
                raise EmptyDatabase(
                    "no active hotel has a guest with a conversation",
                    "run `hotelbot seed` first",
                )
            row = admin.execute("SHOW server_version").fetchone()
            server_version = str(row[0]) if row else ""
            role = _app_role(admin)
            if role is None:
                notes.append(
                    f"role {workload.APP_ROLE} is missing or not granted: tenant runs use the"
                    " connecting role (policies not applied)"
                )
            ctx = workload.Context(
                resolve_function=workload.find_resolve_function(admin),
                tenant_key=signing_key(admin),
                propagate=propagates_set_local(admin),
            )
            ops = workload.select_operations(options.ops)
            tenant_url, login_mode = owner_url, "set-role"
            if role is not None and options.tenant_login == "login":
                login = stack.enter_context(bot_login(admin, owner_url, role, options.app_url))
                tenant_url, login_mode = login.url, login.description
            engine = make_engine(tenant_url, settings, **overrides)
            # A login that is a member of app_user needs no role statement per transaction.
            plan = Plan(ops, targets, ctx, role if tenant_url is owner_url else None, options)
            checks = []
            if options.explain:
                if progress:
                    progress(Progress(phase="index check"))
                checks = explain.check_indexes(admin, ops, targets[0], ctx, tenant=True, role=role)
            refs = []
            if options.reference:
                if progress:
                    progress(Progress(phase="pgbench reference"))
                clients = sorted(
                    {options.concurrency, 1} if options.isolation else {options.concurrency}
                )
                refs = reference.measure(admin_engine, clients, options.reference_seconds)
                notes += [
                    f"reference at {r.clients} client(s) skipped: {r.skipped}"
                    for r in refs
                    if r.skipped
                ]

            tallies = [Tally() for _ in range(options.concurrency)]
            aengine = None
            if options.engine == "async":
                aengine = make_async_engine(engine.url, settings, **overrides)
                runner: Callable[..., None] = run_async
                pool_engine: Any = aengine
            else:
                runner = run_threads
                pool_engine = engine
            if progress:
                progress(Progress(phase="warm-up"))
            runner(pool_engine, plan, [Tally() for _ in tallies], None)
            metrics = metrics_for(pool_engine)
            metrics.reset()
            before = _settled_counters(admin)
            stop = Stop(options)
            done = threading.Event()
            t0 = time.perf_counter()

            def monitor() -> None:
                last_ops, last_t = 0, t0
                while not done.wait(0.25):
                    now = time.perf_counter()
                    ops_done = sum(t.done for t in tallies)
                    if progress:
                        progress(
                            Progress(
                                phase="run",
                                elapsed_s=now - t0,
                                ops=ops_done,
                                errors=sum(t.failed for t in tallies),
                                ops_per_s=(ops_done - last_ops) / (now - last_t),
                                planned_s=options.duration,
                                planned_ops=options.iterations,
                            )
                        )
                    last_ops, last_t = ops_done, now

            watcher = threading.Thread(target=monitor, daemon=True)
            watcher.start()
            try:
                if options.processes > 1:
                    from hotelbot_cli.bench import processes

                    elapsed, tallies, snaps = processes.run(
                        tenant_url.render_as_string(hide_password=False),
                        overrides,
                        plan,
                        options.processes,
                    )
                    snap = processes.merge_snapshots(snaps)
                else:
                    runner(pool_engine, plan, tallies, stop)
            finally:
                done.set()
                watcher.join()
            if options.processes == 1:
                elapsed = time.perf_counter() - t0
                snap = metrics.snapshot()
            if aengine is not None:
                asyncio.run(aengine.dispose())
            engine.dispose()
            after = _settled_counters(admin, before)
            db = DbCounters(*(a - b for a, b in zip(after, before, strict=True)))

            ref_n = next(
                (r for r in refs if r.clients == options.concurrency and r.latency_ms), None
            )
            ref_1 = next((r for r in refs if r.clients == 1 and r.latency_ms), None)
            op_stats = []
            for op in ops:
                samples = [s for t in tallies for s in t.samples.get(op.name, [])]
                errors = sum(t.errors.get(op.name, 0) for t in tallies)
                summary = summarize(samples)
                op_stats.append(
                    OpStats(
                        name=op.name,
                        count=summary.count,
                        errors=errors,
                        ops_per_s=summary.count / elapsed if elapsed > 0 else 0.0,
                        mean_ms=summary.mean_ms,
                        p50_ms=summary.p50_ms,
                        p95_ms=summary.p95_ms,
                        p99_ms=summary.p99_ms,
                        max_ms=summary.max_ms,
                        ref_ratio=ratio(summary.p50_ms, ref_n.latency_ms)
                        if ref_n and ref_n.latency_ms
                        else None,
                        error_sample=next(
                            (t.error_text[op.name] for t in tallies if op.name in t.error_text),
                            None,
                        ),
                    )
                )
            pool = PoolStats(
                pool_class=snap.pool_class,
                size=snap.size,
                max_overflow=snap.max_overflow,
                peak_checked_out=snap.peak_checked_out,
                peak_overflow=snap.peak_overflow,
                checkouts=snap.checkouts,
                wait_p50_ms=snap.checkout_wait_ms.p50,
                wait_p95_ms=snap.checkout_wait_ms.p95,
                wait_max_ms=snap.checkout_wait_ms.max,
                timeouts=snap.timeouts,
                pre_ping=options.pre_ping,
            )

            isolation: list[IsolationRow] = []
            if options.isolation and baseline_skipped:
                notes.append(f"owner baseline skipped: {baseline_skipped}")
            elif options.isolation:
                if tenant_url is not owner_url:
                    tenant_raw = make_engine(
                        tenant_url, settings, poolclass=NullPool, isolation_level="AUTOCOMMIT"
                    ).raw_connection()
                isolation = _isolation(
                    admin,
                    plan,
                    options.isolation_iterations,
                    progress,
                    tenant_raw.driver_connection if tenant_raw is not None else None,
                )
                if ref_1 and ref_1.latency_ms:
                    isolation = [
                        IsolationRow(
                            r.name,
                            r.tenant_p50_ms,
                            r.owner_p50_ms,
                            r.ratio,
                            r.count,
                            ratio(r.tenant_p50_ms, ref_1.latency_ms),
                        )
                        for r in isolation
                    ]
        finally:
            if tenant_raw is not None:
                tenant_raw.close()
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
        dataset=dataset,
        operations=op_stats,
        pool=pool,
        elapsed_s=elapsed,
        total_ops=sum(o.count for o in op_stats),
        isolation=isolation,
        index_checks=checks,
        db=db,
        references=refs,
        server_version=server_version,
        notes=notes,
        isolation_skipped=baseline_skipped if options.isolation else None,
    )
