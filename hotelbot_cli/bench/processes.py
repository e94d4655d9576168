"""The main run in several processes (``bench --processes N``): past the client's GIL.

One Python process drives about one core's worth of lookups whatever its thread count (the
GIL); pgbench's C client does not have that limit. With ``--processes N`` the
``--concurrency`` workers are split over N processes (spawned: nothing of the parent's
pool or threads is inherited), each with its own engine and pool. Every process warms up,
then all start together at a barrier and run for the same duration (or their share of
``--iterations``); their samples and pool counters are merged by the parent.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

    from hotelbot_cli.bench.workers import Plan, Tally
    from hotelbot_cli.observability.metrics import PoolSnapshot

#: Seconds a process may take to start, import and warm up before the run gives up on it.
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class _Job:
    """What one process runs: its share of the workers, numbered from ``first``."""

    url: str
    overrides: dict[str, Any]  # the engine's keyword arguments
    plan: Plan
    first: int
    workers: int
    iterations: int | None  # its share of --iterations; None: the run's duration


class _Outcome(NamedTuple):
    """What one process sends back."""

    elapsed_s: float
    tallies: list[Tally]
    snapshot: PoolSnapshot | None
    error: str | None = None  # set when the process failed (no samples then)


class ProcessRun(NamedTuple):
    """The main phase over every process."""

    elapsed_s: float  # the slowest process's
    tallies: list[Tally]  # every worker's, in worker order
    snapshots: list[PoolSnapshot]  # one per process


def shares(total: int, processes: int) -> list[int]:
    """``total`` workers split over ``processes`` as evenly as possible (none empty)."""
    processes = max(1, min(processes, total))
    base, extra = divmod(total, processes)
    return [base + (1 if i < extra else 0) for i in range(processes)]


def _child(job: _Job, barrier: Barrier, results: Queue[_Outcome]) -> None:  # pragma: no cover
    """One process of the run (spawned: coverage does not follow; its results are tested)."""
    from hotelbot_cli.bench.workers import Stop, Tally, run_threads
    from hotelbot_cli.db.engine import make_engine
    from hotelbot_cli.observability.metrics import metrics_for

    plan, first, workers = job.plan, job.first, job.workers
    try:
        engine = make_engine(job.url, **{**job.overrides, "pool_size": workers})
        options = replace(plan.options, iterations=job.iterations)
        plan = replace(plan, options=options)
        tallies = [Tally() for _ in range(workers)]
        run_threads(engine, plan, [Tally() for _ in tallies], None, first)
        metrics = metrics_for(engine)
        metrics.reset()
        barrier.wait(START_TIMEOUT)
        started = time.perf_counter()
        run_threads(engine, plan, tallies, Stop(options), first)
        elapsed = time.perf_counter() - started
        snap = metrics.snapshot()
        engine.dispose()
        results.put(_Outcome(elapsed, tallies, snap))
    except BaseException as exc:
        barrier.abort()
        results.put(_Outcome(0.0, [], None, f"{type(exc).__name__}: {exc}"))


def run(url: str, overrides: dict[str, Any], plan: Plan, processes: int) -> ProcessRun:
    """Run the main phase in ``processes`` processes, each with its own engine at ``url``."""
    from hotelbot_cli.errors import HotelbotError

    options = plan.options
    split = shares(options.concurrency, processes)
    per_process = shares(options.iterations, len(split)) if options.iterations is not None else None
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(split) + 1)
    results: Queue[_Outcome] = ctx.Queue()
    children = []
    first = 0
    for i, workers in enumerate(split):
        iterations = per_process[i] if per_process else None
        child = ctx.Process(
            target=_child,
            args=(_Job(url, overrides, plan, first, workers, iterations), barrier, results),
            daemon=True,
        )
        child.start()
        children.append(child)
        first += workers
    try:
        # a child that failed breaks the barrier: its message (below) says why
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(START_TIMEOUT)
        outcomes = [results.get(timeout=START_TIMEOUT + (options.duration or 3600)) for _ in split]
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():  # pragma: no cover - a child that hangs
                child.kill()
    failed = [o.error for o in outcomes if o.error is not None]
    if failed:
        raise HotelbotError(f"a bench process failed: {failed[0]}")
    return ProcessRun(
        elapsed_s=max(o.elapsed_s for o in outcomes),
        tallies=[t for o in outcomes for t in o.tallies],
        snapshots=[o.snapshot for o in outcomes if o.snapshot is not None],
    )


def merge_snapshots(snaps: list[PoolSnapshot]) -> PoolSnapshot:
    """One pool snapshot for the run: counts summed, sizes summed, waits at their worst
    (p50 the median of the processes')."""
    import statistics

    first = snaps[0]
    waits = [s.checkout_wait_ms for s in snaps]
    wait = replace(
        first.checkout_wait_ms,
        count=sum(w.count for w in waits),
        p50=statistics.median(w.p50 for w in waits),
        p95=max(w.p95 for w in waits),
        p99=max(w.p99 for w in waits),
        max=max(w.max for w in waits),
    )
    total = {
        field: sum(getattr(s, field) for s in snaps)
        for field in (
            "checked_out", "peak_checked_out", "overflow", "peak_overflow", "connects",
            "connect_errors", "checkouts", "checkins", "invalidations", "overflow_connects",
            "timeouts", "queries", "slow_queries", "query_errors",
        )
    }  # fmt: skip
    sizes = [s.size for s in snaps if s.size is not None]
    size = sum(sizes) if len(sizes) == len(snaps) else None
    return replace(first, size=size, checkout_wait_ms=wait, **total)
