"""Integration: transactions, rollback, the pool, tenant sessions, engines from the environment."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool

from hotelbot_cli.db import (
    async_session_factory,
    async_tenant_session,
    get_db,
    make_async_engine,
    make_engine,
    parse_hotel_id,
    session_factory,
    tenant_session,
)
from hotelbot_cli.db import engine as engine_module
from hotelbot_cli.db.errors import translate
from hotelbot_cli.errors import ConnectionFailed, DatabaseError, PoolTimeout, UsageError
from hotelbot_cli.models import Guest, Hotel
from hotelbot_cli.settings import Settings
from tests import factories as f

CURRENT_TENANT = text("SELECT current_setting('app.current_hotel_id', true)")


def url_text(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def test_commit_persists_and_rollback_discards(engine: Engine) -> None:
    factory = sessionmaker(engine)
    with factory() as session, session.begin():
        session.add(f.hotel(name="Kept"))
    with factory() as session:
        session.begin()
        session.add(f.hotel(name="Discarded"))
        session.flush()
        session.rollback()
    with factory() as session:
        assert session.scalars(select(Hotel.name)).all() == ["Kept"]


def test_failed_statement_rolls_back_the_whole_transaction(engine: Engine) -> None:
    factory = sessionmaker(engine)
    number = f.phone("+7495")
    with pytest.raises(IntegrityError), factory() as session, session.begin():
        session.add(f.hotel(whatsapp_number=number))
        session.flush()
        session.add(f.hotel(whatsapp_number=number))
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Hotel)) == 0


def test_savepoint_rollback_keeps_outer_work(session: Session) -> None:
    hotel = f.hotel()
    session.add(hotel)
    session.flush()
    nested = session.begin_nested()
    f.guest(hotel, phone="+79161111111")
    session.flush()
    nested.rollback()
    assert session.get(Hotel, hotel.id) is not None
    assert session.scalar(select(func.count()).select_from(Guest)) == 0


def test_engine_from_env_uses_a_real_queue_pool(db_url: URL) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": url_text(db_url),
            "HOTELBOT_POOL_SIZE": "2",
            "HOTELBOT_MAX_OVERFLOW": "1",
            "HOTELBOT_POOL_TIMEOUT": "0.3",
            "HOTELBOT_POOL_PRE_PING": "false",
        }
    )
    engine = make_engine(settings=settings)
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 2 and engine.url.drivername == "postgresql+psycopg"
        held = [engine.connect() for _ in range(3)]  # size + overflow
        assert pool.overflow() == 1
        with pytest.raises(PoolTimeoutError) as caught:
            engine.connect()
        error = translate(caught.value)
        assert isinstance(error, PoolTimeout) and "HOTELBOT_POOL_SIZE" in str(error)
        for conn in held:
            conn.close()
        with engine.connect() as conn:  # the pool recovers once connections come back
            assert conn.scalar(text("SELECT 1")) == 1
    finally:
        engine.dispose()


def test_null_pool_for_pgbouncer(db_url: URL) -> None:
    settings = Settings.from_env({"DATABASE_URL": url_text(db_url), "HOTELBOT_POOL": "null"})
    engine = make_engine(settings=settings)
    assert isinstance(engine.pool, NullPool)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT current_setting('application_name')")) == "hotelbot"
    engine.dispose()


def test_debug_true_echoes_sql(db_url: URL) -> None:
    settings = Settings.from_env({"DATABASE_URL": url_text(db_url), "DEBUG": "true"})
    engine = make_engine(settings=settings)
    assert engine.echo is True
    engine.dispose()


def test_tenant_is_transaction_local_on_a_pooled_connection(db_url: URL) -> None:
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    hotel_id = uuid.uuid4()
    try:
        factory = session_factory(engine)
        with tenant_session(hotel_id, factory) as session:
            assert session.scalar(CURRENT_TENANT) == str(hotel_id)
        # The same (only) pooled connection, next transaction: no tenant left behind.
        with factory() as session:
            assert session.scalar(CURRENT_TENANT) in (None, "")
    finally:
        engine.dispose()


def test_tenant_session_rolls_back_on_error(engine: Engine) -> None:
    factory = session_factory(engine)
    with factory() as session, session.begin():
        hotel = f.hotel()
        session.add(hotel)
    # tenant code runs as app_user (the default role): it may add a guest of its own hotel
    with pytest.raises(RuntimeError), tenant_session(hotel.id, factory) as session:
        session.add(Guest(hotel_id=hotel.id, phone=f.phone(), name="Guest"))
        session.flush()
        raise RuntimeError("boom")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Guest)) == 0


def test_tenant_session_can_assume_a_role(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hb_probe_role')"
            " THEN CREATE ROLE hb_probe_role NOLOGIN; END IF; END $$"
        )
    with tenant_session(uuid.uuid4(), session_factory(engine), role="hb_probe_role") as session:
        assert session.scalar(text("SELECT current_user")) == "hb_probe_role"
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT current_user")) == engine.url.username


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "1; DROP TABLE hotels", None, 42])
def test_tenant_id_is_validated(bad: object) -> None:
    with pytest.raises(UsageError, match="not a UUID"):
        parse_hotel_id(bad)


def test_tenant_id_accepts_text_and_uuid() -> None:
    value = uuid.uuid4()
    assert parse_hotel_id(str(value)) == value == parse_hotel_id(value)


def test_async_engine_tenant_session_and_get_db(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    hotel_id = uuid.uuid4()

    async def scenario() -> tuple[str | None, int]:
        engine = make_async_engine(db_url)
        try:
            async with async_tenant_session(hotel_id, engine) as session:
                seen = (await session.execute(CURRENT_TENANT)).scalar()
            async with async_session_factory(engine)() as session:
                count = (await session.execute(select(func.count()).select_from(Hotel))).scalar()
            return seen, int(count or 0)
        finally:
            await engine.dispose()

    seen, count = asyncio.run(scenario())
    assert seen == str(hotel_id) and count == 0

    monkeypatch.setenv("DATABASE_URL", url_text(db_url))
    monkeypatch.setattr(engine_module, "_default_async_engine", None)

    async def dependency() -> int:
        agen = get_db()
        session = await agen.__anext__()
        value = (await session.execute(text("SELECT 41 + 1"))).scalar()
        await agen.aclose()
        assert engine_module._default_async_engine is not None
        await engine_module._default_async_engine.dispose()
        return int(value or 0)

    assert asyncio.run(dependency()) == 42


def test_default_engine_is_built_once_from_env(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url_text(db_url))
    monkeypatch.setattr(engine_module, "_default_engine", None)
    first = engine_module.get_engine()
    try:
        assert engine_module.get_engine() is first
        with tenant_session(uuid.uuid4()) as session:  # default factory
            assert session.scalar(text("SELECT 1")) == 1
    finally:
        first.dispose()
        monkeypatch.setattr(engine_module, "_default_engine", None)


def test_concurrent_transactions_do_not_see_uncommitted_rows(engine: Engine) -> None:
    factory = sessionmaker(engine)
    inserted = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with factory() as session, session.begin():
            session.add(f.hotel())
            session.flush()
            inserted.set()
            release.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    inserted.wait(5)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Hotel)) == 0
    release.set()
    thread.join()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Hotel)) == 1


def test_unreachable_server_is_a_connection_error() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/x", poolclass=NullPool)
    with pytest.raises(sa_exc.OperationalError) as caught:
        engine.connect()
    error = translate(caught.value)
    assert isinstance(error, ConnectionFailed)
    assert "127.0.0.1" in error.message and "\n" not in error.message


def test_missing_database_is_a_connection_error(server_url: URL) -> None:
    engine = make_engine(server_url.set(database="no_such_db_here"), poolclass=NullPool)
    with pytest.raises(sa_exc.OperationalError) as caught:
        engine.connect()
    assert isinstance(translate(caught.value), ConnectionFailed)


def test_database_errors_are_translated(session: Session) -> None:
    with pytest.raises(sa_exc.DataError) as caught:
        session.execute(text("SELECT 'x'::uuid"))
    assert isinstance(translate(caught.value), UsageError)
    session.rollback()
    with pytest.raises(sa_exc.ProgrammingError) as caught:
        session.execute(text("SELECT * FROM no_such_table"))
    assert isinstance(translate(caught.value), DatabaseError)
    assert translate(ValueError("not a database error")) is None
