"""Concurrent access through the workload's own operations: correctness under contention."""

from __future__ import annotations

import gc
import random
import threading
import tracemalloc

import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from hotelbot_cli.bench import driver
from hotelbot_cli.bench import workload as w
from hotelbot_cli.bench.options import BenchOptions
from hotelbot_cli.bench.runner import run_bench
from hotelbot_cli.bench.survey import find_resolve_function
from hotelbot_cli.bench.targets import TargetPicker, load_targets
from hotelbot_cli.db.engine import make_engine
from hotelbot_cli.db.errors import translate
from hotelbot_cli.errors import PoolTimeout
from hotelbot_cli.settings import libpq_url
from tests.load.conftest import make_dataset


@pytest.fixture
def seeded(db_url):
    make_dataset(db_url, hotels=2, guests=50, messages=3)
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        targets = load_targets(conn)
        ctx = w.Context(find_resolve_function(conn))
    return db_url, targets, ctx


def _hammer(url, n_threads, body) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def run(i: int) -> None:
        try:
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                barrier.wait()
                body(conn, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_upserts_of_one_phone_make_one_row(seeded) -> None:
    url, targets, ctx = seeded
    target = targets[0]
    new_phone = w.Target(
        target.hotel_id,
        target.whatsapp_number,
        target.guest_id,
        "+15550001234",
        target.conversation_id,
    )
    op = w.OPERATIONS["upsert_guest"]
    ids: list[object] = []

    class AlwaysKnown(random.Random):
        def random(self) -> float:  # the known-phone branch of the upsert
            return 0.0

    def body(conn, _i):
        for _ in range(20):
            ids.append(driver.run_operation(conn, op, new_phone, AlwaysKnown(), ctx))

    assert _hammer(url, 6, body) == []
    assert len(set(ids)) == 1 and len(ids) == 120
    with psycopg.connect(libpq_url(url)) as conn:
        count = conn.execute(
            "SELECT count(*) FROM guests WHERE hotel_id = %s AND phone = %s",
            (target.hotel_id, "+15550001234"),
        ).fetchone()
    assert count == (1,)


def test_concurrent_messages_into_one_conversation(seeded) -> None:
    url, targets, ctx = seeded
    target = targets[0]
    op = w.OPERATIONS["store_message"]
    with psycopg.connect(libpq_url(url)) as conn:
        (before,) = conn.execute(
            "SELECT count(*) FROM messages WHERE conversation_id = %s", (target.conversation_id,)
        ).fetchone()

    def body(conn, i):
        rng = random.Random(i)
        for _ in range(25):
            driver.run_operation(conn, op, target, rng, ctx)

    assert _hammer(url, 6, body) == []
    with psycopg.connect(libpq_url(url)) as conn:
        count, newest, last = conn.execute(
            "SELECT count(*), max(m.created_at), c.last_message_at FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.conversation_id = %s GROUP BY c.last_message_at",
            (target.conversation_id,),
        ).fetchone()
    assert count == before + 150
    assert last == newest


def test_mixed_load_has_no_deadlocks_or_errors(seeded) -> None:
    url, _, _ = seeded
    owner = make_engine(url)  # an Engine, like every library entry point (a URL works too)
    report = run_bench(
        owner,
        BenchOptions(
            duration=None,
            iterations=1500,
            concurrency=4,
            reference=False,
            isolation=False,
            explain=False,
        ),
    )
    owner.dispose()
    assert report.total_ops == 1500
    assert all(o.errors == 0 for o in report.operations), [
        o.error_sample for o in report.operations
    ]
    assert report.db is not None and report.db.deadlocks == 0
    assert report.pool is not None and report.pool.timeouts == 0
    assert report.pool.peak_checked_out <= 4


def test_pool_exhaustion_times_out_clearly_and_recovers(seeded) -> None:
    url, _, _ = seeded
    engine = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        held = engine.connect()
        with pytest.raises(sa_exc.TimeoutError) as caught:
            engine.connect()
        error = translate(caught.value)
        assert isinstance(error, PoolTimeout)
        assert "pool" in error.message and error.hint
        held.close()
        with engine.connect() as conn:  # the pool recovers once the connection is back
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()


def test_memory_stays_bounded(seeded) -> None:
    url, targets, ctx = seeded
    rng = random.Random(1)
    picker = TargetPicker(targets, rng)
    ops = [w.OPERATIONS[n] for n in ("recent_messages", "resolve_hotel", "active_triggers")]
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:

        def burst(n: int) -> None:
            for i in range(n):
                driver.run_operation(conn, ops[i % len(ops)], picker.pick(), rng, ctx)

        burst(300)  # warm caches and prepared statements
        gc.collect()
        tracemalloc.start()
        burst(300)
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        burst(1500)
        gc.collect()
        second, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # Five times the work must not hold five times the memory: a leak per call would.
    assert second - first < 512 * 1024


def test_concurrent_find_or_open_makes_one_active_conversation(seeded) -> None:
    url, targets, ctx = seeded
    target = targets[0]
    with psycopg.connect(libpq_url(url)) as conn:  # the guest has no open conversation now
        conn.execute(
            "UPDATE conversations SET status = 'closed' WHERE hotel_id = %s AND guest_id = %s",
            (target.hotel_id, target.guest_id),
        )
    op = w.OPERATIONS["open_conversation"]
    ids: list[object] = []

    def body(conn, _i):
        for _ in range(10):
            ids.append(driver.run_operation(conn, op, target, random.Random(0), ctx))

    assert _hammer(url, 6, body) == []
    assert len(ids) == 60 and len(set(ids)) == 1
    with psycopg.connect(libpq_url(url)) as conn:
        active = conn.execute(
            "SELECT count(*) FROM conversations"
            " WHERE hotel_id = %s AND guest_id = %s AND status = 'active'",
            (target.hotel_id, target.guest_id),
        ).fetchone()
    assert active == (1,)


def test_database_refuses_a_second_active_conversation(seeded) -> None:
    url, targets, _ctx = seeded
    target = targets[0]
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(
            "UPDATE conversations SET status = 'closed' WHERE hotel_id = %s AND guest_id = %s",
            (target.hotel_id, target.guest_id),
        )
        insert = "INSERT INTO conversations (hotel_id, guest_id, status) VALUES (%s, %s, 'active')"
        conn.execute(insert, (target.hotel_id, target.guest_id))
        with pytest.raises(psycopg.errors.UniqueViolation, match="guest_id_active"):
            conn.execute(insert, (target.hotel_id, target.guest_id))
