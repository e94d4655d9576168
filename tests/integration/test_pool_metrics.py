"""Pool metrics count real pool events: checkouts, overflow, invalidation, timeouts."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from hotelbot_cli.db.engine import make_async_engine, make_engine
from hotelbot_cli.observability import metrics_for
from hotelbot_cli.observability.metrics import Histogram


def test_checkouts_overflow_invalidation_and_timeouts(db_url: URL) -> None:
    engine = make_engine(db_url, pool_size=1, max_overflow=1, pool_timeout=0.2)
    metrics = metrics_for(engine)
    with engine.connect() as a, engine.connect() as b:
        a.execute(text("SELECT 1"))
        b.execute(text("SELECT 2"))
        with pytest.raises(PoolTimeoutError):
            engine.connect()
        snap = metrics.snapshot()
        assert snap.checked_out == 2 and snap.overflow == 1
    with engine.connect() as c:
        c.invalidate()
    snap = metrics.snapshot()
    assert snap.pool_class == "QueuePool" and snap.size == 1 and snap.max_overflow == 1
    assert snap.timeouts == 1 and snap.peak_checked_out == 2 and snap.peak_overflow == 1
    assert snap.overflow_connects == 1 and snap.invalidations >= 1
    assert snap.checkouts == snap.checkins == 3 and snap.checked_out == 0
    assert snap.queries == 2 and snap.query_ms.count == 2 and snap.query_ms.max > 0
    assert snap.checkout_wait_ms.count == 4 and snap.checkout_wait_ms.max >= 200
    engine.dispose()  # the pool is recreated: metrics keep counting on the same engine
    with engine.connect() as d:
        d.execute(text("SELECT 3"))
    assert metrics.snapshot().queries == 3
    metrics.reset()
    snap = metrics.snapshot()
    assert snap.queries == 0 and snap.query_ms.count == 0 and snap.checkout_wait_ms.p95 == 0.0
    engine.dispose()


def test_connect_errors_are_counted(db_url: URL) -> None:
    engine = make_engine(db_url.set(database="hb_no_such_db"), pool_size=1)
    with pytest.raises(sa_exc.OperationalError, match="hb_no_such_db"):
        engine.connect()
    assert metrics_for(engine).snapshot().connect_errors == 1


def test_async_engine_shares_the_metrics_api(db_url: URL) -> None:
    engine = make_async_engine(db_url)

    async def work() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        await engine.dispose()

    asyncio.run(work())
    assert metrics_for(engine) is metrics_for(engine.sync_engine)
    assert metrics_for(engine).snapshot().queries == 1


def test_histogram_percentiles() -> None:
    hist = Histogram(size=100)
    for value in range(1, 201):
        hist.record(float(value))
    snap = hist.snapshot()
    # the reservoir keeps the last 100 (101..200); interpolated as the bench's percentiles
    assert snap.count == 200 and snap.max == 200 and snap.p50 == 150.5 and snap.p95 == 195.05


def test_null_pool_counts_its_connections_itself(db_url: URL) -> None:
    from sqlalchemy.pool import NullPool

    engine = make_engine(db_url, poolclass=NullPool)
    metrics = metrics_for(engine)
    with engine.connect() as a, engine.connect() as b:
        a.execute(text("SELECT 1"))
        b.execute(text("SELECT 2"))
        assert metrics.snapshot().checked_out == 2
    snap = metrics.snapshot()
    assert snap.pool_class == "NullPool" and snap.size is None and snap.peak_overflow == 0
    assert snap.checkouts == snap.checkins == 2 and snap.peak_checked_out == 2
    assert snap.checked_out == 0
    engine.dispose()
