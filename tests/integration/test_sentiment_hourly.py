"""The hourly sentiment counts (revision 014) always say what the messages say.

Every way a message can come, change or go — the bot's inserts, updates and deletes in a
tenant session, cascades, the owner's multi-row INSERT, COPY and TRUNCATE, the seed's bulk
load with the triggers paused, the migration's recount while the bot keeps writing — must
leave ``BREAKDOWN`` (counts + the partial first hour) equal to the plain count of the
messages, for every hotel and for windows that do and do not end inside an hour.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from rls_support import Tenant
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migration_steps, migrations
from hotelbot_cli.db.deletes import delete_conversation
from hotelbot_cli.db.engine import session_factory
from hotelbot_cli.db.sentiment import (
    BREAKDOWN,
    COUNT_NEW_HOTELS,
    HOURLY,
    RAW_BREAKDOWN,
    TRIGGERS,
    for_window,
)
from hotelbot_cli.db.tenant import tenant_session
from hotelbot_cli.seed import Mode, SeedOptions, seed
from hotelbot_cli.settings import libpq_url

WINDOWS = ("7 days", "1 day", "90 minutes", "36 hours 17 minutes", "10000 days")


def _disagreements(conn: psycopg.Connection) -> list[tuple[str, str, list, list]]:
    """(hotel, window, from the counts, from the messages) wherever the two differ."""
    found = []
    hotels = [row[0] for row in conn.execute("SELECT id FROM hotels")]
    for hotel in hotels:
        for window in WINDOWS:
            params = {"hid": hotel, "window": window}
            counted = sorted(conn.execute(BREAKDOWN, params).fetchall(), key=str)
            raw = sorted(conn.execute(RAW_BREAKDOWN, params).fetchall(), key=str)
            fixed = sorted(conn.execute(for_window(BREAKDOWN, window), params).fetchall(), key=str)
            if not counted == fixed == raw:
                found.append((str(hotel), window, counted, raw))
    return found


def _total(conn: psycopg.Connection) -> int:
    row = conn.execute(f"SELECT coalesce(sum(messages), 0) FROM {HOURLY}").fetchone()
    return int(row[0]) if row else -1


@pytest.fixture
def seeded(db_url: URL) -> Iterator[psycopg.Connection]:
    """Three seeded hotels (messages over ~90 days, every hour boundary crossed); a superuser
    connection to them."""
    engine = create_engine(db_url, poolclass=NullPool)
    seed(engine, SeedOptions(hotels=3, guests_per_hotel=20, messages_per_conversation=12))
    engine.dispose()
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


def test_the_seed_counts_every_message_and_turns_the_triggers_back_on(
    seeded: psycopg.Connection,
) -> None:
    messages = seeded.execute("SELECT count(*) FROM messages WHERE created_at IS NOT NULL")
    assert _total(seeded) == messages.fetchone()[0] > 0
    assert _disagreements(seeded) == []
    states = seeded.execute(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'messages'::regclass"
        " AND tgname = ANY(%s)",
        (list(TRIGGERS),),
    ).fetchall()
    assert sorted(states) == sorted((name, "O") for name in TRIGGERS)


def test_the_counts_built_from_the_conversations_are_those_of_the_messages(
    seeded: psycopg.Connection,
) -> None:
    """The seed builds its counts from the conversations, on the generating connection:
    row for row, ids included, what counting the written messages gives."""
    rows = f"SELECT id, hotel_id, hour, sentiment_type, messages FROM {HOURLY} ORDER BY 1"
    built = seeded.execute(rows).fetchall()
    hotels = [row[0] for row in seeded.execute("SELECT id FROM hotels")]
    with seeded.transaction(force_rollback=True):
        seeded.execute(f"DELETE FROM {HOURLY}")
        seeded.execute(COUNT_NEW_HOTELS, {"hotels": [str(h) for h in hotels]})
        assert seeded.execute(rows).fetchall() == built
    assert len(built) > 100


@pytest.mark.parametrize("rebuild", [False, True], ids=["keep-indexes", "rebuild-indexes"])
def test_a_seed_appended_to_live_counts_counts_only_its_own_hotels(
    db_url: URL, seeded: psycopg.Connection, rebuild: bool
) -> None:
    seeded.execute(
        "INSERT INTO messages (hotel_id, conversation_id, message_type, content,"
        " sentiment_type) SELECT hotel_id, id, 'incoming', 'live', 'positive' FROM conversations"
    )
    before = dict(
        seeded.execute(f"SELECT hotel_id, sum(messages) FROM {HOURLY} GROUP BY 1").fetchall()
    )
    engine = create_engine(db_url, poolclass=NullPool)
    seed(
        engine,
        SeedOptions(
            hotels=2, guests_per_hotel=5, mode=Mode.APPEND, seed=7, rebuild_indexes=rebuild
        ),
    )
    engine.dispose()
    after = dict(
        seeded.execute(f"SELECT hotel_id, sum(messages) FROM {HOURLY} GROUP BY 1").fetchall()
    )
    assert {h: after[h] for h in before} == before  # the hotels there before: untouched
    assert len(after) == len(before) + 2
    assert _disagreements(seeded) == []


def test_the_bots_writes_keep_its_counts_and_reach_no_other_hotel(
    bot: Engine, two_hotels: tuple[Tenant, Tenant], superuser_conn: psycopg.Connection
) -> None:
    a, b = two_hotels
    factory = session_factory(bot)
    with tenant_session(a.hotel_id, factory) as s:
        for offset, sentiment in (
            ("0 minutes", "positive"),
            ("59 minutes", None),
            ("3 hours", "negative"),
            ("7 days 30 minutes", "neutral"),  # in the partial first hour of a 7-day window
            ("8 days", "positive"),
        ):
            s.execute(
                text(
                    "INSERT INTO messages (hotel_id, conversation_id, message_type, content,"
                    " sentiment_type, created_at) VALUES (:h, :c, 'incoming', 'hi',"
                    " CAST(:s AS sentiment_type), now() - CAST(:o AS interval))"
                ),
                {"h": a.hotel_id, "c": a.row_id("conversations"), "s": sentiment, "o": offset},
            )
        s.execute(
            text(
                "INSERT INTO messages (hotel_id, conversation_id, message_type, content)"
                " SELECT :h, :c, 'outgoing', 'x' || g FROM generate_series(1, 5) g"
            ),
            {"h": a.hotel_id, "c": a.row_id("conversations")},
        )
        s.execute(
            text(
                "UPDATE messages SET sentiment_type = 'requires_attention'"
                " WHERE hotel_id = :h AND sentiment_type = 'positive'"
            ),
            {"h": a.hotel_id},
        )
        s.execute(
            text(
                "DELETE FROM messages WHERE hotel_id = :h AND id IN (SELECT id FROM messages"
                " WHERE hotel_id = :h AND message_type = 'outgoing' LIMIT 2)"
            ),
            {"h": a.hotel_id},
        )
        # what the bot may do to the counts is its own hotel's: B's stay out of reach
        assert (
            s.execute(
                text(f"SELECT count(*) FROM {HOURLY} WHERE hotel_id = :b"), {"b": b.hotel_id}
            ).scalar()
            == 0
        )
        changed = s.execute(
            text(f"UPDATE {HOURLY} SET messages = messages + 100 WHERE hotel_id = :b"),
            {"b": b.hotel_id},
        )
        assert changed.rowcount == 0
    assert _disagreements(superuser_conn) == []
    # a conversation's deletion cascades to its messages, and to their counts
    with tenant_session(a.hotel_id, factory) as s:
        assert delete_conversation(s, a.hotel_id, a.row_id("conversations"))
    assert _disagreements(superuser_conn) == []
    by_hotel = dict(
        superuser_conn.execute(
            f"SELECT hotel_id::text, sum(messages) FROM {HOURLY} GROUP BY 1"
        ).fetchall()
    )
    assert by_hotel.get(a.hotel_id, 0) == 0
    assert by_hotel[b.hotel_id] == 1  # B's own message, untouched


def test_bulk_writes_by_the_owner_are_counted(
    seeded: psycopg.Connection,
) -> None:
    seeded.execute(
        "INSERT INTO messages (hotel_id, conversation_id, message_type, content,"
        " sentiment_type, created_at)"
        " SELECT hotel_id, id, 'incoming', 'again', 'negative', now() - interval '2 hours'"
        " FROM conversations"
    )
    targets = seeded.execute("SELECT hotel_id, id FROM conversations LIMIT 10").fetchall()
    with seeded.cursor().copy(
        "COPY messages (hotel_id, conversation_id, message_type, content, created_at) FROM STDIN"
    ) as copy:
        for hotel, conversation in targets:
            copy.write_row((hotel, conversation, "outgoing", "copied", "2026-01-01 10:30+00"))
    seeded.execute(
        "UPDATE messages SET created_at = created_at - interval '1 hour' WHERE content = 'again'"
    )
    assert _disagreements(seeded) == []
    seeded.execute("DELETE FROM hotels WHERE id = (SELECT id FROM hotels ORDER BY id LIMIT 1)")
    assert _disagreements(seeded) == []


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE messages CASCADE",
        "TRUNCATE hotels CASCADE",  # reaches the counts and messages in one statement
        f"TRUNCATE messages, {HOURLY} CASCADE",
    ],
)
def test_truncate_empties_the_counts(seeded: psycopg.Connection, statement: str) -> None:
    assert _total(seeded) > 0
    seeded.execute(statement)
    assert seeded.execute(f"SELECT count(*) FROM {HOURLY}").fetchone()[0] == 0
    assert _disagreements(seeded) == []


def _write_while(url: URL, stop: threading.Event, hotel: uuid.UUID, errors: list[str]) -> int:
    written = 0
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conversation = conn.execute(
            "SELECT id FROM conversations WHERE hotel_id = %s LIMIT 1", (hotel,)
        ).fetchone()[0]
        while not stop.is_set():
            try:
                conn.execute(
                    "INSERT INTO messages (hotel_id, conversation_id, message_type, content,"
                    " sentiment_type) VALUES (%s, %s, 'incoming', 'meanwhile', 'positive')",
                    (hotel, conversation),
                )
                written += 1
            except psycopg.Error as exc:  # pragma: no cover - reported by the assertion
                errors.append(str(exc))
                return written
    return written


@pytest.mark.parametrize("one_transaction", [True, False], ids=["small", "per-hotel"])
def test_the_migration_recounts_exactly_while_the_bot_writes(
    db_url: URL, seeded: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, one_transaction
) -> None:
    if not one_transaction:  # as on a big database: one hotel per transaction
        monkeypatch.setattr(migration_steps, "SMALL_TABLE_BYTES", 0)
    engine = create_engine(db_url, poolclass=NullPool)
    migrations.downgrade(engine, "013")
    assert seeded.execute(f"SELECT to_regclass('{HOURLY}')").fetchone()[0] is None
    hotel = seeded.execute("SELECT id FROM hotels ORDER BY id DESC LIMIT 1").fetchone()[0]
    stop, errors, counts = threading.Event(), [], []
    writer = threading.Thread(
        target=lambda: counts.append(_write_while(db_url, stop, hotel, errors)), daemon=True
    )
    writer.start()
    try:
        migrations.upgrade(engine, "head")
        migrations.upgrade(engine, "head")  # at head: nothing to redo
    finally:
        stop.set()
        writer.join(timeout=30)
    engine.dispose()
    assert errors == []
    assert counts and counts[0] > 0
    assert _disagreements(seeded) == []


def test_a_non_superuser_owner_recounts_through_its_own_force(
    owner_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(owner_engine, SeedOptions(hotels=2, guests_per_hotel=10))
    migrations.downgrade(owner_engine, "013")
    with owner_engine.connect() as conn:
        forced = (
            conn.execute(
                text(
                    "SELECT relname FROM pg_class WHERE relname IN ('hotels', 'messages')"
                    " AND relforcerowsecurity"
                )
            )
            .scalars()
            .all()
        )
    assert sorted(forced) == ["hotels", "messages"]
    monkeypatch.setattr(migration_steps, "SMALL_TABLE_BYTES", 0)  # one hotel per transaction
    migrations.upgrade(owner_engine, "head")
    with owner_engine.connect() as conn:
        again = (
            conn.execute(
                text(
                    "SELECT relname FROM pg_class WHERE relname IN ('hotels', 'messages', :t)"
                    " AND relforcerowsecurity"
                ),
                {"t": HOURLY},
            )
            .scalars()
            .all()
        )
        assert sorted(again) == sorted(["hotels", "messages", HOURLY])
        conn.execute(text("ALTER TABLE hotels NO FORCE ROW LEVEL SECURITY"))
        conn.execute(text("ALTER TABLE messages NO FORCE ROW LEVEL SECURITY"))
        conn.execute(text(f"ALTER TABLE {HOURLY} NO FORCE ROW LEVEL SECURITY"))
        raw = conn.connection.driver_connection
        assert raw is not None
        assert _disagreements(raw) == []
        conn.rollback()


def test_a_failure_while_the_counts_are_built_cancels_them_and_keeps_the_database(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts are built on the generating connection in a thread: when the load fails
    meanwhile, that query is cancelled before the connection is closed, and nothing of the
    seed is left."""
    import time

    from hotelbot_cli.seed import loader

    real = loader.generated_counts

    def slow(gen: psycopg.Connection, params: dict) -> list[bytes]:
        gen.execute("SELECT pg_sleep(30)")
        return real(gen, params)

    def broken(*_args: object, **_kwargs: object) -> None:
        time.sleep(0.3)  # the counting query is running by now
        raise RuntimeError("the index build failed")

    monkeypatch.setattr(loader, "generated_counts", slow)
    monkeypatch.setattr(loader, "restore", broken)
    engine = create_engine(db_url, poolclass=NullPool)
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="index build failed"):
        seed(engine, SeedOptions(hotels=2, guests_per_hotel=5, messages_per_conversation=4))
    assert time.perf_counter() - started < 20  # cancelled, not waited for
    engine.dispose()
    with psycopg.connect(libpq_url(db_url)) as conn:
        assert conn.execute("SELECT count(*) FROM hotels").fetchone() == (0,)
        assert conn.execute(f"SELECT count(*) FROM {HOURLY}").fetchone() == (0,)
        running = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'"
        ).fetchone()
        assert running == (0,)
