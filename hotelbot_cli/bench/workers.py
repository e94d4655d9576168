"""The main run's workers: sync threads or asyncio tasks, each with its own tally.

A worker runs the plan's operations (every one ``warmup`` times, then weighted picks until
the stop condition says the run is over), each through a pooled connection checked out and
in around it, as the bot does. Samples are kept per worker and merged by the runner.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hotelbot_cli.bench import driver
from hotelbot_cli.bench.options import BenchOptions
from hotelbot_cli.bench.targets import TargetPicker
from hotelbot_cli.bench.workload import Context, Operation, Target
from hotelbot_cli.db.engine import leave_untouched
from hotelbot_cli.observability import instrument_driver, raw_connection

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Tally:
    """Samples of one worker (merged at the end; no locking on the hot path)."""

    samples: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_text: dict[str, str] = field(default_factory=dict)
    done: int = 0
    failed: int = 0

    def ok(self, name: str, ns: int) -> None:
        self.samples.setdefault(name, []).append(ns)
        self.done += 1

    def fail(self, name: str, exc: BaseException) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1
        self.error_text.setdefault(name, f"{type(exc).__name__}: {str(exc).strip()[:200]}")
        self.failed += 1


@dataclass(frozen=True)
class Plan:
    """What every worker runs: the operations, on which targets, as whom, how long."""

    ops: list[Operation]
    targets: list[Target]
    ctx: Context
    #: The role each tenant transaction switches to (None: the login already acts as it).
    role: str | None
    options: BenchOptions


class Stop:
    """Shared stop condition: a deadline or a number of iterations."""

    def __init__(self, options: BenchOptions) -> None:
        self.deadline = time.perf_counter() + options.duration if options.duration else None
        self.limit = options.iterations
        self._counter = itertools.count()

    def more(self) -> bool:
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return False
        return self.limit is None or next(self._counter) < self.limit


# --- what a worker runs next -------------------------------------------------------------------


def weighted_cycle(ops: Sequence[Operation], rng: random.Random) -> Callable[[], Operation]:
    """A picker of operations with the bot's relative frequencies."""
    weights = [op.weight for op in ops]
    population = list(ops)

    def pick() -> Operation:
        return rng.choices(population, weights)[0]

    return pick


def schedule(
    plan: Plan, rng: random.Random, stop: Stop | None
) -> Iterator[tuple[Operation, Target]]:
    """What one worker runs next: during warm-up (``stop`` None) every operation
    ``warmup`` times, then weighted picks until ``stop`` says the run is over."""
    picker = TargetPicker(plan.targets, rng)
    if stop is None:
        for op in [op for op in plan.ops for _ in range(plan.options.warmup)][::-1]:
            yield op, picker.pick()
        return
    pick_op = weighted_cycle(plan.ops, rng)
    while stop.more():
        yield pick_op(), picker.pick()


# --- sync workers ------------------------------------------------------------------------------


def sync_worker(engine: Engine, plan: Plan, index: int, tally: Tally, stop: Stop | None) -> None:
    rng = random.Random(plan.options.seed * 1000 + index)
    perf = time.perf_counter_ns
    for op, target in schedule(plan, rng, stop):
        start = perf()
        try:
            raw = raw_connection(engine)
            try:
                driver.run_operation(
                    raw.driver_connection, op, target, rng, plan.ctx, tenant=True, role=plan.role
                )
                if driver.runs_bare(op, plan.role):
                    leave_untouched(raw)
            finally:
                raw.close()
        except Exception as exc:
            tally.fail(op.name, exc)
            continue
        tally.ok(op.name, perf() - start)


def run_threads(
    engine: Engine, plan: Plan, tallies: list[Tally], stop: Stop | None, first: int = 0
) -> None:
    threads = [
        threading.Thread(
            target=sync_worker, args=(engine, plan, first + i, tallies[i], stop), daemon=True
        )
        for i in range(len(tallies))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- async workers -----------------------------------------------------------------------------


async def async_worker(
    aengine: AsyncEngine, plan: Plan, index: int, tally: Tally, stop: Stop | None
) -> None:
    rng = random.Random(plan.options.seed * 1000 + index)
    perf = time.perf_counter_ns
    for op, target in schedule(plan, rng, stop):
        start = perf()
        try:
            async with aengine.connect() as conn:
                pooled = await conn.get_raw_connection()
                raw = instrument_driver(pooled.driver_connection)
                await driver.run_operation_async(
                    raw, op, target, rng, plan.ctx, tenant=True, role=plan.role
                )
                if driver.runs_bare(op, plan.role):
                    leave_untouched(pooled)
        except Exception as exc:
            tally.fail(op.name, exc)
            continue
        tally.ok(op.name, perf() - start)
        await asyncio.sleep(0)


def run_async(aengine: AsyncEngine, plan: Plan, tallies: list[Tally], stop: Stop | None) -> None:
    async def main() -> None:
        await asyncio.gather(
            *(async_worker(aengine, plan, i, tallies[i], stop) for i in range(len(tallies)))
        )

    asyncio.run(main())
