"""The seeder against a real server: consistency, determinism, modes, catalog, RLS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migration_check, migrations, rls
from hotelbot_cli.db.tenant import tenant_statements
from hotelbot_cli.errors import NotAtHead, UsageError
from hotelbot_cli.seed import Mode, SeedOptions, seed
from hotelbot_cli.seed.loader import our_tables
from hotelbot_cli.settings import libpq_url

REF = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
SMALL = {
    "hotels": 3,
    "guests_per_hotel": 20,
    "conversations_per_guest": 2,
    "messages_per_conversation": 12,
    "triggers_per_hotel": 7,
    "reference_time": REF,
}


def _rows(url: URL, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(query, params).fetchall()


def _scalar(url: URL, query: str) -> Any:
    return _rows(url, query)[0][0]


def checksums(url: URL) -> dict[str, str]:
    return {
        t: _scalar(
            url, f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x.id), '')) FROM {t} x"
        )
        for t in our_tables()
    }


CATALOG = """
SELECT c.conrelid::regclass::text || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'
UNION ALL SELECT indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'
UNION ALL SELECT relname || ' rls ' || relrowsecurity || ' force ' || relforcerowsecurity
FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
ORDER BY 1
"""


def test_small_dataset_is_consistent(engine: Engine, db_url: URL) -> None:
    report = seed(engine, SeedOptions(**SMALL))
    plan = SeedOptions(**SMALL).planned_rows()
    for table in ("hotels", "guests", "triggers", "conversations", "messages"):
        assert report.rows[table] == plan[table] == _scalar(db_url, f"SELECT count(*) FROM {table}")
    assert report.rows["staff_notifications"] == _scalar(
        db_url, "SELECT count(*) FROM staff_notifications"
    )
    assert report.rebuilt_indexes  # an empty table: rebuilding after the load is faster
    # last_message_at is the last message; last_interaction the guest's last conversation
    assert (
        _scalar(
            db_url,
            """
        SELECT count(*) FROM conversations c
        WHERE c.last_message_at IS DISTINCT FROM
              (SELECT max(created_at) FROM messages m WHERE m.conversation_id = c.id)
           OR c.created_at IS DISTINCT FROM
              (SELECT min(created_at) FROM messages m WHERE m.conversation_id = c.id)""",
        )
        == 0
    )
    assert (
        _scalar(
            db_url,
            """
        SELECT count(*) FROM guests g WHERE g.last_interaction IS DISTINCT FROM
          (SELECT max(last_message_at) FROM conversations c WHERE c.guest_id = g.id)""",
        )
        == 0
    )
    # sentiment only on guest messages, score within its type's band
    assert (
        _scalar(
            db_url,
            """
        SELECT count(*) FROM messages
        WHERE (message_type = 'incoming') <> (sentiment_type IS NOT NULL)
          OR (sentiment_type = 'positive' AND sentiment_score < 0.3)
          OR (sentiment_type IN ('negative', 'requires_attention') AND sentiment_score > -0.3)
          OR (sentiment_type = 'neutral' AND abs(sentiment_score) > 0.2)""",
        )
        == 0
    )
    kinds = dict(_rows(db_url, "SELECT sentiment_type::text, count(*) FROM messages GROUP BY 1"))
    assert kinds["neutral"] > kinds["positive"] > kinds["negative"] > 0
    assert kinds["requires_attention"] > 0
    # every negative/urgent guest message has its notification; timestamps follow the status
    assert (
        _scalar(
            db_url,
            """
        SELECT count(*) FROM messages m WHERE m.sentiment_type IN ('negative', 'requires_attention')
          AND NOT EXISTS (SELECT 1 FROM staff_notifications n WHERE n.message_id = m.id)""",
        )
        == 0
    )
    statuses = {
        r[0] for r in _rows(db_url, "SELECT DISTINCT status::text FROM staff_notifications")
    }
    assert {"acknowledged", "sent"} <= statuses
    assert (
        _scalar(
            db_url,
            """SELECT count(*) FROM staff_notifications
        WHERE (status = 'acknowledged') <> (acknowledged_at IS NOT NULL)
           OR (status IN ('sent', 'acknowledged')) <> (sent_at IS NOT NULL)
           OR acknowledged_at < sent_at OR sent_at < created_at""",
        )
        == 0
    )
    types = {r[0] for r in _rows(db_url, "SELECT DISTINCT trigger_type::text FROM triggers")}
    assert types == {"time_based", "condition_based", "event_based"}
    assert _scalar(db_url, "SELECT bool_and(message_template LIKE '%{guest_name}%') FROM triggers")
    # everything before the reference time, types alternate, several languages
    assert _scalar(db_url, "SELECT max(created_at) FROM messages") <= REF
    first = _rows(
        db_url,
        """SELECT message_type::text FROM messages WHERE conversation_id =
        (SELECT id FROM conversations ORDER BY id LIMIT 1) ORDER BY created_at""",
    )
    assert [r[0] for r in first[:4]] == ["incoming", "outgoing", "incoming", "outgoing"]
    assert first[9][0] == "system"
    langs = {r[0] for r in _rows(db_url, "SELECT DISTINCT preferences->>'language' FROM guests")}
    assert {"ru", "en"} <= langs


def test_same_seed_same_rows_and_rebuild_keeps_catalog(
    create_database: Callable[..., URL], template_db: str
) -> None:
    urls = [create_database(template=template_db) for _ in range(3)]
    catalog = _rows(urls[0], CATALOG)
    engines = [create_engine(u, poolclass=NullPool) for u in urls]
    seed(engines[0], SeedOptions(**SMALL, seed=7, rebuild_indexes=True))
    seed(engines[1], SeedOptions(**SMALL, seed=7, rebuild_indexes=False))
    seed(engines[2], SeedOptions(**SMALL, seed=8))
    assert _rows(urls[0], CATALOG) == catalog
    assert checksums(urls[0]) == checksums(urls[1])
    assert all(
        a != b
        for a, b in zip(checksums(urls[0]).values(), checksums(urls[2]).values(), strict=True)
    )
    assert migration_check.check(engines[0]).ok
    for e in engines:
        e.dispose()


def test_forked_and_threaded_generators_write_the_same_rows(
    create_database: Callable[..., URL], template_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the platform cannot fork, the generator runs in a thread: the same bytes."""
    from hotelbot_cli.seed import forked

    urls = [create_database(template=template_db) for _ in range(2)]
    engines = [create_engine(u, poolclass=NullPool) for u in urls]
    options = SeedOptions(**SMALL, seed=5, chunk_messages=200)  # several chunks
    assert forked.available()
    seed(engines[0], options)
    monkeypatch.setattr(forked, "available", lambda: False)
    seed(engines[1], options)
    assert checksums(urls[0]) == checksums(urls[1])
    assert _scalar(urls[1], "SELECT count(*) FROM messages") == 3 * 20 * 2 * 12
    for e in engines:
        e.dispose()


def test_refuse_append_truncate(engine: Engine, db_url: URL) -> None:
    opts = {**SMALL, "hotels": 2, "guests_per_hotel": 5}
    seed(engine, SeedOptions(**opts))
    with pytest.raises(UsageError, match="already holds 2 hotel"):
        seed(engine, SeedOptions(**opts))
    report = seed(engine, SeedOptions(**opts, mode=Mode.APPEND))
    assert report.hotels_before == 2
    assert _scalar(db_url, "SELECT count(*) FROM hotels") == 4
    assert _scalar(db_url, "SELECT count(DISTINCT whatsapp_number) FROM hotels") == 4
    small = seed(engine, SeedOptions(**{**opts, "hotels": 1}, mode=Mode.APPEND))
    assert not small.rebuilt_indexes  # a little beside a lot: keep the indexes
    assert _scalar(db_url, "SELECT count(*) FROM hotels") == 5
    before = checksums(db_url)
    dry = seed(engine, SeedOptions(**opts, mode=Mode.TRUNCATE, dry_run=True))
    assert dry.dry_run and dry.hotels_before == 5 and checksums(db_url) == before
    seed(engine, SeedOptions(**{**opts, "hotels": 1}, mode=Mode.TRUNCATE))
    assert _scalar(db_url, "SELECT count(*) FROM hotels") == 1


def test_refuses_a_database_not_at_head(empty_db_url: URL) -> None:
    engine = create_engine(empty_db_url, poolclass=NullPool)
    with pytest.raises(NotAtHead, match="hotelbot db upgrade"):
        seed(engine, SeedOptions(hotels=1))
    engine.dispose()


def test_non_superuser_owner_under_force_rls(
    server_url: URL, create_database: Callable[..., URL]
) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'hb_seed_owner'").fetchone()
        if not exists:
            conn.execute("CREATE ROLE hb_seed_owner LOGIN NOSUPERUSER NOBYPASSRLS")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'app_user'").fetchone():
            conn.execute("CREATE ROLE app_user NOLOGIN NOSUPERUSER NOBYPASSRLS")
        conn.execute("GRANT app_user TO hb_seed_owner")
        if not conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = 'hotelbot_tenant_verifier'"
        ).fetchone():
            conn.execute("CREATE ROLE hotelbot_tenant_verifier NOLOGIN")
        conn.execute("GRANT hotelbot_tenant_verifier TO hb_seed_owner")  # revision 009
    url = create_database(owner="hb_seed_owner").set(username="hb_seed_owner", password=None)
    engine = create_engine(url, poolclass=NullPool)
    migrations.upgrade(engine, "head")
    forced = _rows(
        url,
        "SELECT relname, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)"
        " AND relnamespace = 'public'::regnamespace ORDER BY 1",
        (our_tables(),),
    )
    report = seed(engine, SeedOptions(**SMALL, rebuild_indexes=True))
    assert report.rows["hotels"] == 3
    assert (
        _rows(
            url,
            "SELECT relname, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)"
            " AND relnamespace = 'public'::regnamespace ORDER BY 1",
            (our_tables(),),
        )
        == forced
    )
    # as the app role each tenant sees exactly its own rows
    with psycopg.connect(libpq_url(server_url.set(database=url.database))) as conn:
        hotels = [r[0] for r in conn.execute("SELECT id FROM hotels ORDER BY id")]
        total = conn.execute("SELECT count(*) FROM messages").fetchone()
        assert total is not None
        seen = 0
        for hotel in hotels:
            for statement in tenant_statements(str(hotel), "app_user"):
                conn.execute(statement)
            rows = conn.execute("SELECT hotel_id, count(*) FROM messages GROUP BY 1").fetchall()
            assert [r[0] for r in rows] == [hotel]
            seen += rows[0][1]
            conn.rollback()
        assert seen == total[0]
    assert rls.check(engine).ok
    engine.dispose()


def test_rebuild_keeps_comments_on_indexes_and_constraints(engine: Engine, db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("COMMENT ON INDEX ix_messages_hotel_id_created_at IS 'sentiment window'")
        conn.execute("COMMENT ON CONSTRAINT pk_messages ON messages IS 'time-ordered ids'")
    report = seed(engine, SeedOptions(**SMALL, rebuild_indexes=True))
    assert report.rebuilt_indexes
    assert _rows(
        db_url,
        "SELECT obj_description('ix_messages_hotel_id_created_at'::regclass, 'pg_class'),"
        " (SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint"
        "  WHERE conname = 'pk_messages')",
    ) == [("sentiment window", "time-ordered ids")]


def test_seed_leaves_no_vacuum_debt(engine: Engine, db_url: URL) -> None:
    """Every page of every seeded table is all-visible: readers set no hint bits and
    index-only scans visit no heap (COPY FREEZE, then VACUUM of what INSERT wrote)."""
    report = seed(engine, SeedOptions(**SMALL))
    assert "vacuum + analyze" in report.phases
    rows = _rows(
        db_url,
        "SELECT relname, relpages, relallvisible FROM pg_class"
        " WHERE relkind = 'r' AND relname = ANY(%s)",
        (list(report.rows),),
    )
    assert len(rows) == len(report.rows)
    for name, pages, visible in rows:
        assert pages > 0 and visible == pages, name


def test_seed_leaves_statistics_of_every_table(engine: Engine, db_url: URL) -> None:
    """ANALYZE (after the commit, the tables shared out between two connections) reached
    every one of our tables, after the load's row counts: the planner sees the new rows at
    once, and autovacuum finds nothing changed since (no second ANALYZE of the dataset)."""
    from hotelbot_cli.seed import loader

    report = seed(engine, SeedOptions(**SMALL))
    assert "vacuum + analyze" in report.phases and "analyze" not in report.phases
    tables = loader.our_tables()
    rows = _rows(
        db_url,
        "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s)"
        " AND last_analyze IS NOT NULL AND n_mod_since_analyze = 0 AND n_ins_since_vacuum = 0",
        (tables,),
    )
    assert sorted(r[0] for r in rows) == sorted(tables)


def test_covering_indexes_answer_without_the_heap(engine: Engine, db_url: URL) -> None:
    """Revision 010's covering indexes plus the seed's VACUUM: index-only, no heap fetch."""
    seed(engine, SeedOptions(**SMALL))
    queries = (
        "SELECT sentiment_type, count(*) FROM messages WHERE hotel_id = %(h)s"
        " AND created_at >= %(t)s::timestamptz - interval '7 days' GROUP BY sentiment_type",
        "SELECT id, phone, last_interaction FROM guests WHERE hotel_id = %(h)s"
        " AND last_interaction >= %(t)s::timestamptz - interval '30 days'"
        " ORDER BY last_interaction LIMIT 100",
    )
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        hotel = conn.execute("SELECT id FROM hotels ORDER BY id LIMIT 1").fetchone()[0]
        for query in queries:
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN (ANALYZE, COSTS OFF) " + query,
                    {"h": hotel, "t": SMALL["reference_time"]},
                )
            )
            assert "Index Only Scan" in plan and "Heap Fetches: 0" in plan, plan


def test_the_sentiment_counts_parameters_come_last_and_only_when_asked_for(db_url: URL) -> None:
    from hotelbot_cli.seed.chunks import chunks
    from hotelbot_cli.seed.encoded import CountParams, EncodedChunk, encoded_chunks

    options = SeedOptions(**SMALL, chunk_messages=200)
    with psycopg.connect(libpq_url(db_url)) as conn:
        counted = list(encoded_chunks(chunks(options, 0, set()), conn.cursor()))
        uncounted = list(encoded_chunks(chunks(options, 0, set()), conn.cursor(), counts=False))
    assert len(counted) > 2 and all(isinstance(c, EncodedChunk) for c in counted[:-1])
    assert isinstance(counted[-1], CountParams)
    assert set(counted[-1].params) == {"hotel", "t0ms", "step", "lang", "hseed", "no"}
    assert all(isinstance(c, EncodedChunk) for c in uncounted)
    assert len(uncounted) == len(counted) - 1
