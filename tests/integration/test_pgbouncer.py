"""Through a real PgBouncer in transaction mode: seed, bench, rls-check and tenant isolation.

``HOTELBOT_POOL=null`` is how the README says to run behind PgBouncer: no client pool and
no server-side prepared statements (PgBouncer 1.18 cannot follow them between
transactions). Server connections are shared by clients, so nothing may rely on session
state: the tenant travels signed, per transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from rls_support import Tenant
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from hotelbot_cli.db.engine import make_app_engine
from hotelbot_cli.db.tenant import tenant_session
from hotelbot_cli.settings import Settings, libpq_url
from tests.pgbouncer import BOT_LOGIN, BOT_PASSWORD, PgBouncer

BEHIND_PGBOUNCER = Settings.from_env({"HOTELBOT_POOL": "null"})


@pytest.fixture
def through(pgbouncer: PgBouncer, db_url: URL, server_url: URL) -> URL:
    """The owner's URL of this test's database, through PgBouncer."""
    assert db_url.database
    return pgbouncer.url(server_url, db_url.database)


@pytest.fixture
def bot_through(
    pgbouncer: PgBouncer, db_url: URL, server_url: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The bot's engine through PgBouncer, logging in as a dedicated member of app_user."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BOT_LOGIN,)).fetchone():
            conn.execute(
                f"CREATE ROLE {BOT_LOGIN} LOGIN PASSWORD '{BOT_PASSWORD}' IN ROLE app_user"
            )
        key = conn.execute("SELECT encode(key, 'hex') FROM hotelbot_private.tenant_key").fetchone()
    assert key is not None and db_url.database
    monkeypatch.setenv("HOTELBOT_TENANT_KEY", key[0])
    engine = make_app_engine(
        pgbouncer.url(server_url, db_url.database, BOT_LOGIN, BOT_PASSWORD), BEHIND_PGBOUNCER
    )
    yield engine
    engine.dispose()


def test_seed_bench_and_rls_check_through_pgbouncer(
    cli,
    through: URL,
    monkeypatch: pytest.MonkeyPatch,
    pgbouncer: PgBouncer,
    bot_through: Engine,
) -> None:
    monkeypatch.setenv("HOTELBOT_POOL", "null")
    # The bench's tenant side logs in as the bot does, through PgBouncer too.
    bot_url = bot_through.url.render_as_string(hide_password=False)
    monkeypatch.setenv("HOTELBOT_APP_DATABASE_URL", bot_url)
    code, _, err = cli("seed", "--hotels", "3", "--guests-per-hotel", "20", url=through)
    assert code == 0, err + pgbouncer.log()
    code, out, err = cli("bench", "--iterations", "40", "--no-reference", "--json", url=through)
    assert code == 0, err
    report = json.loads(out)
    errors = {op["name"]: op["errors"] for op in report["operations"]}
    assert errors and not any(errors.values()), errors
    code, out, err = cli("rls-check", url=through)
    assert code == 0, out + err


def test_tenant_context_never_crosses_clients_through_pgbouncer(
    bot_through: Engine, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, b = two_hotels
    with bot_through.connect() as conn:  # no prepared statements behind PgBouncer
        raw = conn.connection.driver_connection
        assert raw is not None and raw.prepare_threshold is None
    for _ in range(3):  # several clients, few server connections: state would leak here
        with tenant_session(a.hotel_id, _factory(bot_through)) as s:
            hotels = {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))}
            assert hotels == {a.hotel_id}
            # injected, session-level: it stays on the server connection PgBouncer reuses
            s.execute(text(f"SELECT set_config('app.current_hotel_id', '{b.hotel_id}', false)"))
            s.execute(text("SELECT set_config('app.tenant_signature', 'forged', false)"))
            assert s.execute(text("SELECT count(*) FROM guests")).scalar() == 0
        with bot_through.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM guests")).scalar() == 0
        with tenant_session(b.hotel_id, _factory(bot_through)) as s:
            hotels = {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))}
            assert hotels == {b.hotel_id}
        for _ in range(6):  # past psycopg's prepare threshold: nothing to lose between pools
            with tenant_session(b.hotel_id, _factory(bot_through)) as s:
                s.execute(text("SELECT count(*) FROM guests WHERE phone = :p"), {"p": "+1"})


def _factory(engine: Engine):  # type: ignore[no-untyped-def]
    from hotelbot_cli.db.engine import session_factory

    return session_factory(engine)
