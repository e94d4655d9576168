"""The measured phase: warm-up, then the mixed workload under a progress monitor.

The workers (:mod:`hotelbot_cli.bench.workers`: threads or asyncio tasks, or
:mod:`hotelbot_cli.bench.processes`) run through the measured pool; pg_stat_database is
read before and after. Their samples and the pool's metrics become the report's
operation rows and pool line.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from hotelbot_cli.bench.counters import difference, settled_counters
from hotelbot_cli.bench.options import Progress, ProgressFn
from hotelbot_cli.bench.report import DbCounters, OpStats, PoolStats
from hotelbot_cli.bench.stats import ratio, summarize
from hotelbot_cli.bench.workers import Plan, Stop, Tally, run_async, run_threads

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hotelbot_cli.bench.reference import Reference
    from hotelbot_cli.bench.workload import Operation
    from hotelbot_cli.observability.metrics import PoolSnapshot
    from hotelbot_cli.settings import Settings


@dataclass(frozen=True)
class MeasuredRun:
    """What the measured phase left: every worker's samples, the pool, the database."""

    elapsed_s: float
    tallies: list[Tally]
    pool: PoolSnapshot
    db: DbCounters  # pg_stat_database over the phase


class _Drive(NamedTuple):
    """How the workers run: threads on the sync engine, or tasks on an async twin of it."""

    run: Callable[[list[Tally], Stop | None], None]
    pool_engine: Engine | AsyncEngine  # whose pool is measured
    aengine: AsyncEngine | None  # made for the run, disposed after it


def _drive(engine: Engine, plan: Plan, overrides: dict[str, Any], settings: Settings) -> _Drive:
    from hotelbot_cli.db.engine import make_async_engine

    if plan.options.engine == "async":
        aengine = make_async_engine(engine.url, settings, **overrides)
        return _Drive(partial(run_async, aengine, plan), aengine, aengine)
    return _Drive(partial(run_threads, engine, plan), engine, None)


def run_measured(
    admin: psycopg.Connection[Any],
    engine: Engine,
    plan: Plan,
    *,
    url: URL,
    overrides: dict[str, Any],
    settings: Settings,
    progress: ProgressFn | None,
) -> MeasuredRun:
    """Warm up, then run ``plan`` on ``engine`` (made for ``url`` with ``overrides``).

    ``engine`` is disposed afterwards: its backends flush their counters as they exit,
    before the second reading on ``admin``.
    """
    from hotelbot_cli.observability.metrics import metrics_for

    options = plan.options
    tallies = [Tally() for _ in range(options.concurrency)]
    drive = _drive(engine, plan, overrides, settings)
    if progress:
        progress(Progress(phase="warm-up"))
    drive.run([Tally() for _ in tallies], None)
    metrics = metrics_for(drive.pool_engine)
    metrics.reset()
    before = settled_counters(admin)
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

            split = processes.run(
                url.render_as_string(hide_password=False), overrides, plan, options.processes
            )
            elapsed, tallies = split.elapsed_s, split.tallies
            snap = processes.merge_snapshots(split.snapshots)
        else:
            drive.run(tallies, stop)
    finally:
        done.set()
        watcher.join()
    if options.processes == 1:
        elapsed = time.perf_counter() - t0
        snap = metrics.snapshot()
    if drive.aengine is not None:
        asyncio.run(drive.aengine.dispose())
    engine.dispose()
    after = settled_counters(admin, before)
    return MeasuredRun(elapsed, tallies, snap, difference(after, before))


def operation_stats(
    ops: Sequence[Operation], run: MeasuredRun, reference: Reference | None
) -> list[OpStats]:
    """Each operation over every worker; ``reference``: pgbench at the run's concurrency."""
    tallies, elapsed = run.tallies, run.elapsed_s
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
                ref_ratio=ratio(summary.p50_ms, reference.latency_ms)
                if reference and reference.latency_ms
                else None,
                error_sample=next(
                    (t.error_text[op.name] for t in tallies if op.name in t.error_text),
                    None,
                ),
            )
        )
    return op_stats


def pool_stats(snap: PoolSnapshot, pre_ping: bool) -> PoolStats:
    """The report's pool line from the pool's metrics over the phase."""
    return PoolStats(
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
        pre_ping=pre_ping,
    )
