"""Connection-pool and query metrics, counted per engine.

Rare pool events (connect, invalidate) come from SQLAlchemy's public pool events.
Checkouts are counted by wrapping the engine's own ``raw_connection`` (the one method
every ``Engine.connect()``, Session and AsyncEngine goes through) on the instance: the
wrapper times the wait, counts ``sqlalchemy.exc.TimeoutError`` as a pool timeout, and
survives ``engine.dispose()``. SQLAlchemy has no event *before* a checkout starts
waiting, and a timeout never reaches the ``checkout`` event.

The hot path pays one wrapper call and one lock per checkout, nothing per check-in:
``checkout``/``checkin`` listeners cost two event dispatches per operation (measured
~1/3 of the whole instrumentation), and what they told — checked-out connections,
check-ins, overflow — the pool itself knows (``checkedout()``) when a snapshot asks.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotelbot_cli.percentiles import percentile

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: Samples kept per histogram (the most recent ones); counts, sums and maxima are exact.
RESERVOIR = 10_000


@dataclass(frozen=True)
class HistogramSnapshot:
    """Summary of one timing distribution, in milliseconds."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float


class Histogram:
    """A thread-safe timing histogram over the last :data:`RESERVOIR` samples."""

    def __init__(self, size: int = RESERVOIR) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._count = 0
        self._sum = 0.0
        self._max = 0.0
        self._lock = threading.Lock()

    def record(self, value_ms: float) -> None:
        with self._lock:
            self._samples.append(value_ms)
            self._count += 1
            self._sum += value_ms
            self._max = max(self._max, value_ms)

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            samples = sorted(self._samples)
            count, total, peak = self._count, self._sum, self._max
        if not samples:
            return HistogramSnapshot(0, 0.0, 0.0, 0.0, 0.0, 0.0)

        def pct(q: float) -> float:
            return round(percentile(samples, q), 3)

        return HistogramSnapshot(
            count=count,
            mean=round(total / count, 3),
            p50=pct(50),
            p95=pct(95),
            p99=pct(99),
            max=round(peak, 3),
        )


@dataclass(frozen=True)
class PoolSnapshot:
    """Point-in-time view of one engine's pool and queries (what bench and logs show)."""

    pool_class: str
    size: int | None  # configured pool_size; None for pools without one (NullPool)
    max_overflow: int | None
    checked_out: int
    peak_checked_out: int
    overflow: int  # connections open beyond pool_size right now
    peak_overflow: int
    connects: int  # new DBAPI connections opened
    connect_errors: int
    checkouts: int
    checkins: int
    invalidations: int
    overflow_connects: int  # connections opened beyond pool_size
    timeouts: int  # pool checkouts that gave up waiting (sqlalchemy.exc.TimeoutError)
    queries: int
    slow_queries: int
    query_errors: int
    checkout_wait_ms: HistogramSnapshot
    query_ms: HistogramSnapshot


class PoolMetrics:
    """Counters and histograms of one engine; attach with :func:`attach`."""

    def __init__(self, engine: Engine) -> None:
        self._engine_ref = weakref.ref(engine)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.checkout_wait = Histogram()
        self.query_time = Histogram()
        self.reset_counters()

    def reset_counters(self) -> None:
        with self._lock:
            self.connects = self.connect_errors = 0
            self.checkouts = self.invalidations = 0
            self.overflow_connects = self.timeouts = 0
            self.queries = self.slow_queries = self.query_errors = 0
            self.peak_checked_out = 0
            #: checked out when counting started: check-ins = checkouts - (now - this)
            self.checked_out_base = 0

    def reset(self) -> None:
        """Start counting afresh (e.g. between benchmark phases)."""
        self.checkout_wait = Histogram()
        self.query_time = Histogram()
        self.reset_counters()
        out = self._pool_checked_out()
        with self._lock:
            self.checked_out_base = self.peak_checked_out = out

    def _pool(self) -> Any:
        engine = self._engine_ref()
        return None if engine is None else engine.pool

    def _pool_checked_out(self) -> int:
        pool = self._pool()
        fn = getattr(pool, "checkedout", None)
        return int(fn()) if fn else self.in_flight

    def on_checkin(self, *_: Any) -> None:
        """Only for pools that do not count their checked-out connections (NullPool)."""
        with self._lock:
            self.in_flight = max(self.in_flight - 1, 0)

    def _pool_overflow(self) -> int:
        fn = getattr(self._pool(), "overflow", None)
        return max(int(fn()), 0) if fn else 0

    # -- pool events -------------------------------------------------------------------
    def on_connect(self, *_: Any) -> None:
        overflow = self._pool_overflow()
        with self._lock:
            self.connects += 1
            if overflow > 0:
                self.overflow_connects += 1

    def record_checkout(self, elapsed_ms: float, checked_out: int | None) -> None:
        """A checkout that succeeded after ``elapsed_ms``; ``checked_out`` right after it
        (None for a pool that does not count them, e.g. NullPool: counted here instead)."""
        self.checkout_wait.record(elapsed_ms)
        with self._lock:
            self.checkouts += 1
            if checked_out is None:
                self.in_flight += 1
                checked_out = self.in_flight
            self.peak_checked_out = max(self.peak_checked_out, checked_out)

    def on_invalidate(self, *_: Any) -> None:
        with self._lock:
            self.invalidations += 1

    def record_wait(self, elapsed_ms: float, *, timed_out: bool, failed: bool) -> None:
        self.checkout_wait.record(elapsed_ms)
        if timed_out or failed:
            with self._lock:
                if timed_out:
                    self.timeouts += 1
                else:
                    self.connect_errors += 1

    def record_query(self, elapsed_ms: float, *, slow: bool) -> None:
        self.query_time.record(elapsed_ms)
        with self._lock:
            self.queries += 1
            if slow:
                self.slow_queries += 1

    def record_error(self) -> None:
        with self._lock:
            self.query_errors += 1

    def snapshot(self) -> PoolSnapshot:
        pool = self._pool()
        size_fn = getattr(pool, "size", None)
        size = int(size_fn()) if size_fn else None
        checked_out = self._pool_checked_out()
        with self._lock:
            counters = (
                self.connects,
                self.connect_errors,
                self.checkouts,
                max(self.checkouts - (checked_out - self.checked_out_base), 0),
                self.invalidations,
                self.overflow_connects,
                self.timeouts,
                self.queries,
                self.slow_queries,
                self.query_errors,
            )
            peak_out = self.peak_checked_out
        peak_over = max(peak_out - size, 0) if size is not None else 0
        max_overflow = getattr(pool, "_max_overflow", None)
        return PoolSnapshot(
            pool_class=type(pool).__name__ if pool is not None else "disposed",
            size=size,
            max_overflow=int(max_overflow) if max_overflow is not None else None,
            checked_out=checked_out,
            peak_checked_out=peak_out,
            overflow=self._pool_overflow(),
            peak_overflow=peak_over,
            connects=counters[0],
            connect_errors=counters[1],
            checkouts=counters[2],
            checkins=counters[3],
            invalidations=counters[4],
            overflow_connects=counters[5],
            timeouts=counters[6],
            queries=counters[7],
            slow_queries=counters[8],
            query_errors=counters[9],
            checkout_wait_ms=self.checkout_wait.snapshot(),
            query_ms=self.query_time.snapshot(),
        )


_registry: weakref.WeakKeyDictionary[Any, PoolMetrics] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _sync(engine: Any) -> Engine:
    return getattr(engine, "sync_engine", engine)


def attach(engine: Any) -> PoolMetrics:
    """Count ``engine``'s pool events and time its checkouts (idempotent)."""
    from sqlalchemy import event
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    sync = _sync(engine)
    with _registry_lock:
        existing = _registry.get(sync)
        if existing is not None:
            return existing
        metrics = PoolMetrics(sync)
        _registry[sync] = metrics
    # Pool events registered on the engine follow its pool across dispose()/recreate().
    event.listen(sync, "connect", metrics.on_connect)
    event.listen(sync, "invalidate", metrics.on_invalidate)
    if not hasattr(sync.pool, "checkedout"):  # NullPool: count check-ins ourselves
        event.listen(sync, "checkin", metrics.on_checkin)
    event.listen(sync, "soft_invalidate", metrics.on_invalidate)

    original = sync.raw_connection
    perf = time.perf_counter

    def raw_connection() -> Any:
        start = perf()
        try:
            conn = original()
        except PoolTimeoutError:
            metrics.record_wait((perf() - start) * 1000.0, timed_out=True, failed=False)
            raise
        except Exception:
            metrics.record_wait((perf() - start) * 1000.0, timed_out=False, failed=True)
            raise
        elapsed = perf() - start
        checkedout = getattr(sync.pool, "checkedout", None)
        metrics.record_checkout(elapsed * 1000.0, checkedout() if checkedout else None)
        return conn

    sync.raw_connection = raw_connection  # type: ignore[method-assign]
    return metrics


def metrics_for(engine: Any) -> PoolMetrics:
    """The metrics of ``engine`` (sync or async), attaching them on first use."""
    found = _registry.get(_sync(engine))
    return found if found is not None else attach(engine)
