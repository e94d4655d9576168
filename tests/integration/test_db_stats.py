"""The monitoring snapshot sees tables, flagged indexes and a real blocking chain."""

from __future__ import annotations

import json
import threading
import time
from importlib import resources

import jsonschema
import psycopg
from sqlalchemy import Engine, text

from hotelbot_cli.observability import monitor
from hotelbot_cli.observability.db_stats import to_document
from hotelbot_cli.settings import libpq_url


def _schema() -> dict:
    return json.loads(
        resources.files("hotelbot_cli.observability").joinpath("stats.schema.json").read_text()
    )


def test_blocking_chain_indexes_and_schema(engine: Engine) -> None:
    url = libpq_url(engine.url)
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX hb_dup_a ON guests (hotel_id, phone)"))
        conn.execute(
            text("INSERT INTO hotels (name, whatsapp_number) VALUES ('H', '+74951112233')")
        )
    holder = psycopg.connect(url)
    holder.execute("UPDATE hotels SET name = 'A'")  # row locks held, idle in transaction now
    waiter = psycopg.connect(url, autocommit=True)
    thread = threading.Thread(target=lambda: waiter.execute("UPDATE hotels SET name = 'B'"))
    thread.start()
    try:
        for _ in range(100):
            stats = monitor.snapshot(engine, long_running_s=0)
            if stats.blocking:
                break
            time.sleep(0.05)
        (chain,) = stats.blocking
        assert chain.chain == [waiter.info.backend_pid, holder.info.backend_pid]
        assert chain.root_state == "idle in transaction" and "hotels" in (chain.blocked_query or "")
        assert any(s.pid == holder.info.backend_pid for s in stats.idle_in_transaction)
        assert any(s.pid == waiter.info.backend_pid for s in stats.long_running)
        assert any(not lk.granted for lk in stats.locks)
    finally:
        holder.rollback()
        thread.join()
        holder.close()
        waiter.close()
    assert {"hotels", "guests", "messages"} <= {t.name for t in stats.tables}
    dup = next(i for i in stats.indexes if i.name == "hb_dup_a")
    assert dup.duplicate_of and dup.unused
    assert stats.connections and stats.connections.max_connections > 0
    assert stats.cache and stats.counters and stats.counters.deadlocks >= 0
    assert not stats.statements.available and "shared_preload_libraries" in (
        stats.statements.note or ""
    )
    jsonschema.validate(to_document(stats), _schema())


def test_non_superuser_degrades_with_a_note(engine: Engine) -> None:
    with engine.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'hb_monitor_test'"))
        if exists.first() is None:
            conn.execute(text("CREATE ROLE hb_monitor_test LOGIN"))
    from hotelbot_cli.db.engine import make_engine

    weak = make_engine(engine.url.set(username="hb_monitor_test"))
    stats = monitor.snapshot(weak)
    weak.dispose()
    assert any("pg_read_all_stats" in note for note in stats.notes)
    jsonschema.validate(to_document(stats), _schema())
