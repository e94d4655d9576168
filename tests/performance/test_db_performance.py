"""Each workload operation under pytest-benchmark, and what each index buys.

Assertions are about correctness and plans (indexes used, buffers touched), never
wall-clock times: this machine is shared and noisy. Speed is judged by
``hotelbot bench`` and its ratios to pgbench measured in the same run.
"""

from __future__ import annotations

import random

import psycopg
import pytest

from hotelbot_cli.bench import driver
from hotelbot_cli.bench import workload as w
from hotelbot_cli.bench.explain import check_indexes, plan_usage
from hotelbot_cli.bench.survey import find_resolve_function
from hotelbot_cli.bench.targets import load_targets
from hotelbot_cli.db.tenant import signing_key, tenant_statements
from hotelbot_cli.settings import libpq_url
from tests.performance.conftest import make_dataset


@pytest.fixture(scope="module")
def dataset(create_database, template_db):
    url = create_database(template=template_db)
    make_dataset(url, hotels=5, guests=400, messages=5)
    return url


@pytest.fixture
def conn(dataset):
    with psycopg.connect(libpq_url(dataset), autocommit=True) as connection:
        yield connection


@pytest.fixture
def targets(conn):
    return load_targets(conn)


def _check(name: str, result, conn, target) -> None:
    if name == "resolve_hotel":
        assert result == target.hotel_id
    elif name in ("upsert_guest", "open_conversation", "store_message"):
        assert result is not None
    elif name == "notify_staff":
        row = conn.execute(
            "SELECT hotel_id, status FROM staff_notifications WHERE id = %s", (result,)
        ).fetchone()
        assert row == (target.hotel_id, "pending")
    elif name == "recent_messages":
        assert 1 <= result <= 50
    elif name == "sentiment_7d":
        assert all(count > 0 for count in result.values())
    else:
        assert result >= 0


@pytest.mark.parametrize("name", list(w.OPERATIONS))
def test_operation(benchmark, conn, targets, name) -> None:
    op = w.OPERATIONS[name]
    ctx = w.Context(find_resolve_function(conn))
    rng = random.Random(7)
    target = targets[0]
    result = benchmark(driver.run_operation, conn, op, target, rng, ctx)
    _check(name, result, conn, target)
    # Every operation leaves the connection idle, tenant and role unset.
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.execute(
        "SELECT current_user = session_user, current_setting('app.current_hotel_id', true)"
    ).fetchone() in ((True, None), (True, ""))


@pytest.mark.parametrize("name", ["open_conversation", "notify_staff"])
def test_citus_forms_do_the_same_on_one_node(conn, targets, name) -> None:
    """The single-shard statements bench sends on Citus (propagate=True) are plain SQL:
    on one node they give what the one-statement forms give (the tenant bound by SET LOCAL)."""
    op = w.OPERATIONS[name]
    target = targets[0]
    key = signing_key(conn)  # a Citus tenant is signed by the client
    ctx = w.Context(find_resolve_function(conn), tenant_key=key, propagate=True)
    result = driver.run_operation(conn, op, target, random.Random(7), ctx)
    _check(name, result, conn, target)
    if name == "open_conversation":  # the same active conversation either way
        assert result == driver.run_operation(conn, op, target, random.Random(7), w.Context())


def test_tenant_mode_sees_only_its_hotel(conn, targets) -> None:
    ctx = w.Context(find_resolve_function(conn))
    mine, other = targets[0], next(t for t in targets if t.hotel_id != targets[0].hotel_id)
    # Another hotel's conversation, asked for under my tenant: RLS returns nothing.
    crossed = w.Target(
        mine.hotel_id, mine.whatsapp_number, mine.guest_id, mine.phone, other.conversation_id
    )
    op = w.OPERATIONS["recent_messages"]
    assert driver.run_operation(conn, op, crossed, random.Random(), ctx) == 0
    spoofed = w.Target(
        other.hotel_id, mine.whatsapp_number, mine.guest_id, mine.phone, other.conversation_id
    )
    plan = op.plan(spoofed, random.Random(), ctx, True)
    batch = next(plan)
    # hotel_id in the statement says "other", the tenant says "mine": nothing is visible.
    conn.execute("BEGIN")
    for statement in tenant_statements(str(mine.hotel_id), "app_user"):
        conn.execute(statement)
    rows = conn.execute(batch.statements[0].sql, batch.statements[0].params).fetchall()
    conn.execute("ROLLBACK")
    assert rows == []


def test_every_operation_uses_its_index(conn, targets) -> None:
    ctx = w.Context(find_resolve_function(conn))
    checks = check_indexes(conn, list(w.OPERATIONS.values()), targets[0], ctx)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    large = {"guests", "conversations", "messages"}
    assert not any(large & set(c.seq_scans) for c in checks)


INDEXED = [
    # (operation, index, table, pages touched without the index / with it at least)
    ("recent_messages", "ix_messages_hotel_id_conversation_id_created_at", "messages", 2),
    # A quarter of the hotel's messages are in the window: the gain is the smaller one.
    ("sentiment_7d", "ix_messages_hotel_id_created_at", "messages", 1),
    ("due_guests", "idx_guests_last_interaction", "guests", 2),
    # Either index serves it: without both, the guest's conversations are found by a scan.
    (
        "open_conversation",
        "uq_conversations_hotel_id_guest_id_active|ix_conversations_hotel_id_guest_id_last_message_at",
        "conversations",
        2,
    ),
]


#: Operations measured by their lookup alone: find-or-open's INSERT needs the unique index
#: as its ON CONFLICT arbiter, so without it only the find half can run.
LOOKUP_ONLY = {"open_conversation": w.FIND_ACTIVE_CONVERSATION_SQL}


def _analyze(conn, sql: str, params: dict) -> tuple[set[str], set[str], int]:
    row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()
    plan = row[0][0]
    used, seq = plan_usage(plan)
    top = plan["Plan"]
    return used, seq, top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)


@pytest.mark.parametrize(("name", "index", "table", "factor"), INDEXED)
def test_with_and_without_the_index(conn, targets, name, index, table, factor) -> None:
    op = w.OPERATIONS[name]
    ctx = w.Context(find_resolve_function(conn))
    stmt = next(op.plan(targets[0], random.Random(3), ctx, False)).statements[0]
    if name in LOOKUP_ONLY:
        stmt = w.Stmt(LOOKUP_ONLY[name], stmt.params)
    names = set(index.split("|"))  # alternatives that serve the same query
    conn.execute("BEGIN")
    try:
        used, seq, with_index = _analyze(conn, stmt.sql, stmt.params)
        assert used & names and table not in seq
        for name in names:
            conn.execute(f"DROP INDEX {name}")
        used, seq, without_index = _analyze(conn, stmt.sql, stmt.params)
        assert not used & names
    finally:
        conn.execute("ROLLBACK")
    # Without its index the query touches more pages (several times more for lookups).
    assert without_index > factor * with_index, (with_index, without_index)
