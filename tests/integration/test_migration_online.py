"""Migrations on a live, populated database: bounded lock waits, resumable, no stalled bot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from online_support import Traffic, check_hotel_ids, populate_005
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migration_check, migration_steps, migrations
from hotelbot_cli.errors import DatabaseError
from hotelbot_cli.settings import libpq_url

LOCK_TIMEOUT = 1.0
#: Added to the lock timeout for what is not a lock wait: the two cores are shared with the
#: migration's own work (batched UPDATEs, index builds) and with other test processes, so a
#: 1 ms query can take a few hundred ms. Before this work 006 alone held ACCESS EXCLUSIVE on
#: messages for several seconds at this size, well past the bound.
MARGIN = 1.5


@pytest.fixture
def at_005(create_database: Callable[..., URL]) -> Iterator[URL]:
    url = create_database()
    engine = create_engine(url, poolclass=NullPool)
    migrations.upgrade(engine, "005")
    engine.dispose()
    yield url


@pytest.fixture
def lock_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTELBOT_MIGRATION_LOCK_TIMEOUT", str(LOCK_TIMEOUT))


def _engine(url: URL) -> Engine:
    return create_engine(url, poolclass=NullPool)


@pytest.mark.slow
def test_005_to_head_with_200k_messages_never_stalls_the_bot(at_005: URL, lock_env: None) -> None:
    dsn = libpq_url(at_005)
    populate_005(dsn, 200_000)
    engine = _engine(at_005)
    with Traffic(dsn) as traffic:
        time.sleep(0.5)
        result = migrations.upgrade(engine)
        time.sleep(0.5)
    engine.dispose()
    assert result.after == migrations.heads()
    assert traffic.count() > 100, "the bot's traffic did not run"
    assert not traffic.failures, traffic.failures[:3]
    assert traffic.worst() < LOCK_TIMEOUT + MARGIN, (
        f"a bot statement waited {traffic.worst():.2f} s"
    )
    total, wrong = check_hotel_ids(dsn)
    assert total >= 200_000 and wrong == 0
    assert migration_check.check(engine).ok


def _hold(dsn: str, seconds: float, started: threading.Event) -> threading.Thread:
    """A transaction that keeps ACCESS SHARE on messages open for ``seconds``."""

    def run() -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT count(*) FROM messages")
            started.set()
            time.sleep(seconds)
            conn.rollback()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    return thread


def test_upgrade_waits_in_bounded_steps_and_succeeds_when_the_blocker_ends(
    at_005: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTELBOT_MIGRATION_LOCK_TIMEOUT", "0.3")
    monkeypatch.setenv("HOTELBOT_MIGRATION_LOCK_RETRIES", "8")
    dsn = libpq_url(at_005)
    populate_005(dsn, 2_000, hotels=2)
    holder = _hold(dsn, 2.0, threading.Event())
    engine = _engine(at_005)
    seen: list[str] = []
    result = migrations.upgrade(engine, progress=seen.append)
    holder.join()
    engine.dispose()
    assert result.after == migrations.heads()
    assert result.waits, "the upgrade never waited for the open transaction"
    assert all("006: waited 0.3 s for a lock" in w for w in result.waits)
    assert [w for w in seen if "waited" in w] == list(result.waits)  # reported as they happen
    assert "oldest open transaction: pid" in result.waits[0]


def test_upgrade_gives_up_with_exit_3_and_stays_at_the_last_good_revision(
    at_005: URL, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., tuple[int, str, str]]
) -> None:
    monkeypatch.setenv("HOTELBOT_MIGRATION_LOCK_TIMEOUT", "0.2")
    monkeypatch.setenv("HOTELBOT_MIGRATION_LOCK_RETRIES", "1")
    dsn = libpq_url(at_005)
    populate_005(dsn, 2_000, hotels=2)
    holder = _hold(dsn, 4.0, threading.Event())
    code, _out, err = cli("db", "upgrade", url=at_005)
    holder.join()
    assert code == 3
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "stopped at 006" in lines[0] and "at 005" in lines[0]
    engine = _engine(at_005)
    assert migrations.current(engine) == ("005",)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('uq_messages_hotel_id_id')")) is None
    engine.dispose()


def test_killed_during_the_backfill_then_rerun_reaches_head_with_correct_data(
    at_005: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = libpq_url(at_005)
    populate_005(dsn, 60_000, hotels=3)
    env = {
        **os.environ,
        "DATABASE_URL": at_005.render_as_string(hide_password=False),
        "HOTELBOT_MIGRATION_SMALL_TABLE_BYTES": "0",
        "HOTELBOT_MIGRATION_BATCH_ROWS": "500",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotelbot_cli", "db", "upgrade"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline and proc.poll() is None:
            has_column = conn.execute(
                "SELECT 1 FROM pg_attribute WHERE attrelid = 'messages'::regclass"
                " AND attname = 'hotel_id'"
            ).fetchone()
            if has_column:
                done = conn.execute(
                    "SELECT count(*) FROM messages WHERE hotel_id IS NOT NULL"
                ).fetchone()[0]
                if done >= 5_000:
                    break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        remaining = conn.execute("SELECT count(*) FROM messages WHERE hotel_id IS NULL").fetchone()
    assert done >= 5_000 and remaining[0] > 0, "not killed in the middle of the backfill"
    engine = _engine(at_005)
    assert migrations.current(engine) == ("005",)
    monkeypatch.setattr(migration_steps, "SMALL_TABLE_BYTES", 0)
    result = migrations.upgrade(engine)
    assert result.after == migrations.heads()
    assert check_hotel_ids(dsn) == (60_000, 0)
    assert migration_check.check(engine).ok
    with engine.connect() as conn:
        invalid = conn.scalar(text("SELECT count(*) FROM pg_index WHERE NOT indisvalid"))
        leftovers = conn.scalar(
            text(
                "SELECT count(*) FROM pg_proc WHERE proname = 'hotelbot_006_fill_message_hotel_id'"
            )
        )
    engine.dispose()
    assert invalid == 0 and leftovers == 0


def test_the_online_path_builds_the_same_schema_as_the_fast_path(
    at_005: URL, create_database: Callable[..., URL], monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_migrations import catalog

    fast = _engine(create_database())
    migrations.upgrade(fast)
    populate_005(libpq_url(at_005), 2_000, hotels=2)
    monkeypatch.setattr(migration_steps, "SMALL_TABLE_BYTES", 0)
    slow = _engine(at_005)
    migrations.upgrade(slow)
    try:
        assert catalog(slow) == catalog(fast)
    finally:
        fast.dispose()
        slow.dispose()


def test_an_invalid_index_left_by_an_interrupted_build_is_rebuilt(
    at_005: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = libpq_url(at_005)
    populate_005(dsn, 2_000, hotels=2)
    engine = _engine(at_005)
    migrations.upgrade(engine, "007")
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Two active conversations for one guest: a CONCURRENTLY unique build fails, invalid.
        conn.execute(
            "INSERT INTO conversations (hotel_id, guest_id, status)"
            " SELECT hotel_id, guest_id, 'active' FROM conversations LIMIT 1"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY uq_conversations_hotel_id_guest_id_active"
                " ON conversations (hotel_id, guest_id) WHERE status = 'active'"
            )
    monkeypatch.setattr(migration_steps, "SMALL_TABLE_BYTES", 0)
    seen: list[str] = []
    migrations.upgrade(engine, progress=seen.append)
    with engine.connect() as conn:
        valid = conn.scalar(
            text(
                "SELECT indisvalid FROM pg_index"
                " WHERE indexrelid = 'uq_conversations_hotel_id_guest_id_active'::regclass"
            )
        )
    engine.dispose()
    assert valid is True
    assert any(
        "dropping invalid index uq_conversations_hotel_id_guest_id_active" in s for s in seen
    )


def test_the_failing_revision_is_named(at_005: URL) -> None:
    """Issue 11: a failure in 007 said 006 (the last revision that had been applied)."""
    with psycopg.connect(libpq_url(at_005), autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION hotelbot_hotel_id_for_whatsapp(text) RETURNS int"
            " LANGUAGE sql AS 'SELECT 1'"
        )
    engine = _engine(at_005)
    with pytest.raises(DatabaseError, match="upgrade failed at 007") as caught:
        migrations.upgrade(engine)
    assert "still at 005" in str(caught.value)
    engine.dispose()


def test_a_createrole_owner_migrates_when_app_user_was_made_by_another_role(
    server_url: URL, create_database: Callable[..., URL], template_db: str
) -> None:
    """Issue 11: app_user exists (the template made it); the owner may not grant it to itself."""
    name = "hb_createrole_only"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None:
            conn.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE")
        conn.execute(f"REVOKE app_user FROM {name}")
        version = conn.execute("SHOW server_version_num").fetchone()[0]
    url = create_database(owner=name).set(username=name, password=None)
    engine = _engine(url)
    seen: list[str] = []
    result = migrations.upgrade(engine, progress=seen.append)
    engine.dispose()
    assert result.after == migrations.heads()
    if int(version) >= 160000:  # CREATEROLE grants only the roles it administers
        assert any(s.startswith("warning:") and "GRANT app_user TO" in s for s in seen), seen
        assert any(s.startswith("warning:") and "hotelbot_tenant_verifier" in s for s in seen), seen


def test_two_concurrent_upgrades_of_a_populated_database_migrate_once(at_005: URL) -> None:
    """Two `hotelbot db upgrade` processes: the lock is per transaction (PgBouncer-safe), so
    between one's transactions the other may step in, yet every revision is recorded once
    and no lock is left behind."""
    dsn = libpq_url(at_005)
    populate_005(dsn, 20_000, hotels=2)
    env = {
        **os.environ,
        "DATABASE_URL": at_005.render_as_string(hide_password=False),
        "HOTELBOT_MIGRATION_SMALL_TABLE_BYTES": "0",
        "HOTELBOT_MIGRATION_BATCH_ROWS": "500",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hotelbot_cli", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    applied = sorted(
        line.split()[1]
        for _out, err in outputs
        for line in err.splitlines()
        if line.startswith("->")
    )
    after_005 = [r.revision for r in reversed(migrations.history())]
    assert applied == after_005[after_005.index("005") + 1 :], outputs
    assert check_hotel_ids(dsn) == (20_000, 0)
    engine = _engine(at_005)
    assert migrations.current(engine) == migrations.heads()
    with engine.connect() as conn:
        locks = conn.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
        invalid = conn.scalar(text("SELECT count(*) FROM pg_index WHERE NOT indisvalid"))
    engine.dispose()
    assert locks == 0 and invalid == 0


def test_plain_alembic_runs_the_online_steps_too(
    at_005: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without hotelbot's runner (``alembic upgrade``), steps fall back to autocommit_block."""
    from alembic import command

    dsn = libpq_url(at_005)
    populate_005(dsn, 2_000, hotels=2)
    monkeypatch.setattr(migration_steps, "SMALL_TABLE_BYTES", 0)
    command.upgrade(migrations.make_config(url=at_005), "head")
    engine = _engine(at_005)
    assert migrations.current(engine) == migrations.heads()
    assert check_hotel_ids(dsn) == (2_000, 0)
    assert migration_check.check(engine).ok
    engine.dispose()
