"""The bot's real path: its own login (made with plain SQL, as a DBA would), the library's
engine and ``tenant_session()``. Injected SQL cannot switch hotels, nothing a request does
reaches the next checkout, and owner or autocommit engines never widen a tenant session."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from rls_support import ONE_CONNECTION, Tenant, signing_key_of
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migrations
from hotelbot_cli.db import engine as engine_module
from hotelbot_cli.db.engine import (
    UnsafeLogin,
    make_app_engine,
    make_async_engine,
    make_engine,
    session_factory,
)
from hotelbot_cli.db.lookup import find_hotel
from hotelbot_cli.db.tenant import (
    async_tenant_session,
    sign,
    tenant_session,
    tenant_statements,
)
from hotelbot_cli.errors import ConfigError, UsageError
from hotelbot_cli.settings import Settings, libpq_url

ONE = ONE_CONNECTION


def _guest_hotels(session) -> set[str]:
    return {str(r[0]) for r in session.execute(text("SELECT hotel_id FROM guests"))}


INJECTIONS = [
    "SELECT set_config('app.current_hotel_id', '{b}', false)",
    "SELECT set_config('app.current_hotel_id', '{b}', true)",
    "SET LOCAL app.current_hotel_id = '{b}'",
    "SET app.current_hotel_id = '{b}'",
]


@pytest.mark.parametrize("injected", INJECTIONS)
def test_an_injected_tenant_switch_reads_nothing_of_the_other_hotel(
    bot: Engine, two_hotels: tuple[Tenant, Tenant], injected: str
) -> None:
    a, b = two_hotels
    factory = session_factory(bot)
    with tenant_session(a.hotel_id, factory) as s:
        assert _guest_hotels(s) == {a.hotel_id}
        s.execute(text(injected.format(b=b.hotel_id)))
        assert _guest_hotels(s) == set()
        for table in ("hotels", "messages", "triggers", "conversations", "staff_notifications"):
            assert s.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0
        # A's signature copied next to B's id is no good either.
        sig = s.execute(text("SELECT current_setting('app.tenant_signature')")).scalar()
        s.execute(text(f"SET LOCAL app.tenant_signature = '{sig}'"))
        assert _guest_hotels(s) == set()
    # the next checkout, outside a tenant session, has no tenant left and reads nothing
    with bot.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM guests")).scalar() == 0
        assert not conn.execute(
            text("SELECT current_setting('app.current_hotel_id', true)")
        ).scalar()
    with tenant_session(b.hotel_id, factory) as s:
        assert _guest_hotels(s) == {b.hotel_id}


def test_forged_or_expired_signatures_read_nothing(
    bot: Engine, db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, b = two_hotels
    key = signing_key_of(db_url)
    with bot.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None

        def count(statements: list[str]) -> int:
            for statement in statements:
                raw.execute(statement)
            n = raw.execute("SELECT count(*) FROM guests").fetchone()
            raw.rollback()
            return n[0] if n else -1

        assert count(tenant_statements(a.hotel_id, "app_user")) == 1
        assert count(tenant_statements(a.hotel_id, "app_user", ttl=-5)) == 0  # expired
        assert count(tenant_statements(a.hotel_id, "app_user", key=b"x" * 32)) == 0  # wrong key
        signed_a = sign(uuid.UUID(a.hotel_id), 2**33, key)
        forged = [
            f"SET LOCAL app.current_hotel_id = '{b.hotel_id}'",
            f"SET LOCAL app.tenant_signature = '{signed_a}'",
        ]
        assert count(forged) == 0
        assert count(["SET LOCAL app.tenant_signature = 'garbage'"]) == 0


def test_next_checkout_has_no_tenant_no_role_no_session_state(
    bot: Engine, db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_hotels
    login = bot.url.username
    # TEMP given back, as a clone or a restore without privileges does (rls-check's
    # temp-tables fails then): the reset must still drop what a request leaves.
    with psycopg.connect(libpq_url(db_url), autocommit=True) as owner:
        owner.execute(f'GRANT TEMPORARY ON DATABASE "{db_url.database}" TO app_user')
    with tenant_session(a.hotel_id, session_factory(bot)) as s:
        s.execute(text("SELECT set_config('app.current_hotel_id', :h, false)"), {"h": a.hotel_id})
        s.execute(text("SET SESSION ROLE app_user"))
        s.execute(text("SET search_path = pg_temp, public"))
        s.execute(text("LISTEN hotel_events"))
        s.execute(text("PREPARE planted AS SELECT 1"))
        s.execute(text("SELECT pg_advisory_lock(4242), set_config('app.is_admin', 'on', false)"))
        s.execute(text("DECLARE held CURSOR WITH HOLD FOR SELECT 1"))
        s.execute(text("CREATE TEMP TABLE triggers (LIKE public.triggers)"))
    with bot.connect() as conn:
        state = conn.execute(
            text(
                "SELECT current_setting('app.current_hotel_id', true), current_user,"
                " current_setting('search_path'),"
                " (SELECT count(*) FROM pg_prepared_statements),"
                " (SELECT count(*) FROM pg_listening_channels()),"
                " to_regclass('pg_temp.triggers'),"
                " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid()),"
                " (SELECT count(*) FROM pg_cursors),"
                " current_setting('app.is_admin', true)"
            )
        ).one()
    assert (state[0] or "", state[1], state[3], state[4], state[5]) == ("", login, 0, 0, None)
    assert (state[6], state[7], state[8] or "") == (0, 0, "")
    assert "pg_temp" not in state[2]


def _last_statement(superuser: psycopg.Connection, engine: Engine) -> str:
    """What the pooled connection of ``engine`` (one, idle) sent last, as the server saw it."""
    row = superuser.execute(
        "SELECT query FROM pg_stat_activity WHERE usename = %s AND state = 'idle'",
        (engine.url.username,),
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_the_whatsapp_lookup_leaves_its_connection_as_it_found_it(
    bot: Engine, two_hotels: tuple[Tenant, Tenant], superuser_conn: psycopg.Connection
) -> None:
    """One statement outside a transaction: its check-in sends nothing (the server's last
    statement from that connection is the lookup); any other checkout, or a failed lookup,
    is reset."""
    a, b = two_hotels
    with tenant_session(a.hotel_id, session_factory(bot)) as s:
        assert _guest_hotels(s) == {a.hotel_id}
    assert "CLOSE ALL" in _last_statement(superuser_conn, bot)  # a tenant checkout: reset
    assert find_hotel(a.whatsapp, bot) == uuid.UUID(a.hotel_id)
    assert find_hotel(b.whatsapp, bot) == uuid.UUID(b.hotel_id)
    assert find_hotel("+15559999999", bot) is None
    with pytest.raises(UsageError, match=r"E\.164"):
        find_hotel("12345", bot)
    assert _last_statement(superuser_conn, bot).startswith("SELECT hotelbot_hotel_id_for_whatsapp(")
    superuser_conn.execute(
        "REVOKE EXECUTE ON FUNCTION hotelbot_hotel_id_for_whatsapp(text) FROM app_user"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        find_hotel(a.whatsapp, bot)
    assert "CLOSE ALL" in _last_statement(superuser_conn, bot)  # a failed lookup is reset
    with tenant_session(a.hotel_id, session_factory(bot)) as s:  # not left in autocommit
        assert _guest_hotels(s) == {a.hotel_id}


def test_checkin_drops_temp_tables_and_keeps_psycopgs_prepared_statements(db_url: URL) -> None:
    """Superusers may still make temp tables: the pool drops them on check-in. The
    statements psycopg prepared stay (protocol-level: no request can make or change one
    without the census seeing it), so the next checkout needs no planning."""
    engine = make_engine(db_url, ONE)
    query = text("SELECT count(*) FROM hotels WHERE id = :i")
    first = True
    try:
        for _ in range(4):  # psycopg's statement stays prepared, on both sides
            with engine.connect() as conn:
                assert conn.execute(text("SELECT to_regclass('pg_temp.planted')")).scalar() is None
                assert _prepared(conn) == (0, 0 if first else 1)
                conn.execute(text("CREATE TEMP TABLE planted (x int)"))
                for _ in range(8):  # psycopg prepares on the 5th run
                    conn.execute(query, {"i": uuid.uuid4()})
                conn.commit()
            first = False
    finally:
        engine.dispose()


def _prepared(conn: Any) -> tuple[int, int]:
    """(statements PREPAREd in SQL, statements psycopg prepared) on this connection."""
    return tuple(
        conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE from_sql), count(*) FILTER (WHERE NOT from_sql)"
                " FROM pg_prepared_statements"
            )
        ).one()
    )


@pytest.mark.parametrize(
    "tamper",
    [
        "DEALLOCATE {name}",
        "DEALLOCATE {name}; PREPARE {name} AS SELECT 42",
        "DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$",
    ],
)
def test_a_tampered_prepared_statement_is_never_reused(db_url: URL, tamper: str) -> None:
    """A request that drops or replaces one of psycopg's statements in SQL: the next user
    of the connection gets psycopg's own statement, prepared again, and the right answer."""
    engine = make_engine(db_url, ONE)
    query = text("SELECT count(*) + 0 FROM hotels WHERE id = :i")
    try:
        with engine.connect() as conn:
            for _ in range(6):
                conn.execute(query, {"i": uuid.uuid4()})
            (name,) = conn.execute(
                text("SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
            ).one()
            conn.execute(text(tamper.format(name=name)))
            conn.commit()  # a rollback would make psycopg deallocate everything itself
        with engine.connect() as conn:
            assert _prepared(conn)[0] == 0
            for _ in range(8):
                assert conn.execute(query, {"i": uuid.uuid4()}).scalar() == 0
    finally:
        engine.dispose()


def test_statements_prepared_in_a_pipeline_survive_many_checkins(db_url: URL) -> None:
    """The bench's (and the bot's) shape: one pipelined transaction per checkout."""
    engine = make_engine(db_url, ONE, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(15):  # psycopg alone lost track every 7th checkout
            raw = engine.raw_connection()
            conn = raw.driver_connection
            assert conn is not None
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute("SELECT count(*) FROM hotels WHERE id = %s", (uuid.uuid4(),))
                conn.execute("COMMIT")
            raw.close()
    finally:
        engine.dispose()


@pytest.mark.parametrize("answered", [True, False], ids=["after-the-reset", "before-it"])
def test_a_pooled_connection_killed_while_idle_is_replaced_at_checkout(
    db_url: URL, answered: bool
) -> None:
    """A server connection that died in the pool (before or after its check-in reset) is
    replaced by the pre-ping, never handed out."""
    engine = make_engine(db_url, ONE)  # pre-ping on: the default
    admin = psycopg.connect(libpq_url(db_url), autocommit=True)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            conn.commit()
            if not answered:  # killed with the reset still to come
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        if answered:
            raw = engine.raw_connection()  # read the reset's answer, then put it back
            raw.close()
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        admin.close()
        engine.dispose()


def _pid(engine: Engine) -> int:
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        conn.commit()
    assert isinstance(pid, int)
    return pid


def test_a_connection_in_use_is_checked_out_without_a_ping(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pre-ping on (the default): a connection checked in moments ago is polled on its
    socket, not pinged (SELECT 1 at every checkout doubled the WhatsApp lookup)."""
    engine = make_engine(db_url, ONE)
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", pings.append)
    try:
        pids = {_pid(engine) for _ in range(5)}
        assert len(pids) == 1 and pings == []
        monkeypatch.setattr(engine_module, "PING_IDLE_AFTER", 0.0)  # idle "long enough"
        assert _pid(engine) in pids
        assert len(pings) == 1  # and pinged once: a firewall may drop a quiet connection
    finally:
        engine.dispose()


def test_a_connection_that_fails_its_ping_is_replaced(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(db_url, ONE)

    def dropped(_connection: object) -> bool:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    try:
        first = _pid(engine)
        monkeypatch.setattr(engine_module, "PING_IDLE_AFTER", 0.0)
        monkeypatch.setattr(engine.dialect, "do_ping", dropped)
        assert _pid(engine) != first  # a new connection (a fresh one is not pinged)
    finally:
        engine.dispose()


def test_without_pre_ping_a_dead_connection_is_handed_out(db_url: URL) -> None:
    """HOTELBOT_POOL_PRE_PING=false: no check at all, the first statement meets the loss."""
    engine = make_engine(db_url, ONE, pool_pre_ping=False)
    admin = psycopg.connect(libpq_url(db_url), autocommit=True)
    try:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (_pid(engine),))
        with pytest.raises(Exception, match="terminating connection"), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        admin.close()
        engine.dispose()


def test_async_engine_replaces_a_connection_killed_while_idle(db_url: URL) -> None:
    async def go() -> tuple[int, int]:
        engine = make_async_engine(db_url, ONE)
        pid = text("SELECT pg_backend_pid()")
        try:
            async with engine.connect() as conn:
                first = (await conn.execute(pid)).scalar_one()
            with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))
            async with engine.connect() as conn:
                return first, (await conn.execute(pid)).scalar_one()
        finally:
            await engine.dispose()

    first, second = asyncio.run(go())
    assert second != first


def test_async_engine_is_reset_on_checkin_too(db_url: URL, two_hotels) -> None:
    a, _ = two_hotels

    async def go() -> tuple[int, str, set[int]]:
        engine = make_async_engine(db_url, ONE)
        pid = text("SELECT pg_backend_pid()")
        try:
            async with async_tenant_session(a.hotel_id, engine) as s:
                n = (await s.execute(text("SELECT count(*) FROM guests"))).scalar_one()
                await s.execute(text("SET SESSION app.planted = 'yes'"))
                pids = {(await s.execute(pid)).scalar_one()}
            async with engine.connect() as conn:
                left = (
                    await conn.execute(text("SELECT current_setting('app.planted', true)"))
                ).scalar()
            for _ in range(6):  # the reset itself is never prepared, nor the connection lost
                async with engine.connect() as conn:
                    pids.add((await conn.execute(pid)).scalar_one())
            return n, left or "", pids
        finally:
            await engine.dispose()

    n, left, pids = asyncio.run(go())
    assert (n, left, len(pids)) == (1, "", 1)


def test_tenant_session_on_the_owner_url_runs_as_app_user(
    db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, b = two_hotels
    owner = make_engine(db_url, ONE)  # the superuser postgres
    try:
        with tenant_session(a.hotel_id, session_factory(owner)) as s:
            assert s.execute(text("SELECT current_user")).scalar() == "app_user"
            assert _guest_hotels(s) == {a.hotel_id}
            s.execute(text(f"SELECT set_config('app.current_hotel_id', '{b.hotel_id}', false)"))
            assert _guest_hotels(s) == set()
    finally:
        owner.dispose()


def test_a_tenant_session_refuses_an_autocommit_engine(
    db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_hotels
    engine = make_engine(db_url, ONE, isolation_level="AUTOCOMMIT")
    seen: list[set[str]] = []
    try:
        with (
            pytest.raises(UsageError, match="autocommit"),
            tenant_session(a.hotel_id, session_factory(engine)) as s,
        ):
            seen.append(_guest_hotels(s))
    finally:
        engine.dispose()
    assert seen == []


def test_the_bot_engine_refuses_logins_that_could_bypass_rls(db_url: URL) -> None:
    engine = make_app_engine(db_url, ONE)  # the superuser
    try:
        with pytest.raises(UnsafeLogin, match="superuser"):
            engine.connect()
    finally:
        engine.dispose()


def test_app_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, bot_url: URL) -> None:
    monkeypatch.delenv("HOTELBOT_APP_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="HOTELBOT_APP_DATABASE_URL"):
        engine_module.app_url()
    monkeypatch.setenv("HOTELBOT_APP_DATABASE_URL", bot_url.render_as_string(hide_password=False))
    monkeypatch.setattr(engine_module, "_default_app_engine", None)
    assert engine_module.app_url().username == bot_url.username
    engine = engine_module.get_app_engine()
    try:
        assert engine.url.username == bot_url.username
        assert engine_module.get_app_engine() is engine
    finally:
        engine.dispose()
        monkeypatch.setattr(engine_module, "_default_app_engine", None)


def test_a_bot_without_the_key_is_told_to_set_it(
    bot_url: URL, two_hotels: tuple[Tenant, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTELBOT_TENANT_KEY", raising=False)
    engine = make_app_engine(bot_url, ONE)
    try:
        with (
            pytest.raises(ConfigError, match="HOTELBOT_TENANT_KEY"),
            tenant_session(two_hotels[0].hotel_id, session_factory(engine)),
        ):
            pass
    finally:
        engine.dispose()


def test_the_tenant_function_runs_once_per_statement(
    db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    """Even over a sequential scan with a filter, the signature is checked once, not per row."""
    a, _ = two_hotels
    with psycopg.connect(libpq_url(db_url)) as conn:
        conn.execute(
            "INSERT INTO guests (hotel_id, phone, name)"
            " SELECT %s, '+7917' || lpad(i::text, 7, '0'), 'G' || i"
            " FROM generate_series(1, 2000) i",
            (a.hotel_id,),
        )
        conn.commit()
        conn.execute("SET track_functions = 'all'")
        for statement in tenant_statements(a.hotel_id, "app_user"):
            conn.execute(statement)
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        n = conn.execute("SELECT count(*) FROM guests WHERE name LIKE 'G1%'").fetchone()
        calls = conn.execute(
            "SELECT pg_stat_get_xact_function_calls('hotelbot_current_hotel_id()'::regprocedure)"
        ).fetchone()
    assert n is not None and n[0] == 1111
    assert calls is not None and calls[0] == 1


def test_no_server_side_prepares_when_pooling_externally(db_url: URL) -> None:
    settings = Settings.from_env({"HOTELBOT_POOL": "null"})
    engine = make_engine(db_url, settings)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None and raw.prepare_threshold is None
    finally:
        engine.dispose()
    engine = make_engine(db_url, Settings.from_env({}), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None and raw.prepare_threshold == 5
    finally:
        engine.dispose()


def test_the_migration_takes_temp_away_from_the_bot(empty_db_url: URL) -> None:
    engine = make_engine(empty_db_url, poolclass=NullPool)
    check = text("SELECT has_database_privilege('app_user', current_database(), 'TEMP')")
    try:
        migrations.upgrade(engine, "008")
        with engine.connect() as conn:
            assert conn.execute(check).scalar() is True
        migrations.upgrade(engine, "head")
        with engine.connect() as conn:
            assert conn.execute(check).scalar() is False
            assert (
                conn.execute(text("SELECT count(*) FROM hotelbot_private.tenant_key")).scalar() == 1
            )
        migrations.downgrade(engine, "008")
        with engine.connect() as conn:
            assert conn.execute(check).scalar() is True
            assert conn.execute(text("SELECT to_regnamespace('hotelbot_private')")).scalar() is None
    finally:
        engine.dispose()


def test_a_binding_replaced_in_sql_never_carries_a_hotel_into_the_next_request(
    bot: Engine, two_hotels: tuple[Tenant, Tenant]
) -> None:
    """Hotel A's request replaces psycopg's prepared tenant binding with one that binds A
    (its own valid signature, read from its session): hotel B's next request on that
    pooled connection must still see B's rows only."""
    a, b = two_hotels
    factory = session_factory(bot)
    for _ in range(6):  # psycopg prepares the binding statement on its 5th run
        with tenant_session(a.hotel_id, factory) as s:
            s.execute(text("SELECT 1"))
    with tenant_session(a.hotel_id, factory) as s:
        signature = s.execute(text("SELECT current_setting('app.tenant_signature')")).scalar()
        names = s.execute(
            text("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%set_config%'")
        ).scalars()
        for name in names:
            s.execute(
                text(
                    f"DEALLOCATE {name}; PREPARE {name}(text, text) AS SELECT"
                    f" set_config('app.current_hotel_id', '{a.hotel_id}', true),"
                    f" set_config('app.tenant_signature', '{signature}', true)"
                )
            )
    with tenant_session(b.hotel_id, factory) as s:
        assert _guest_hotels(s) == {b.hotel_id}
