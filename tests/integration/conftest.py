"""Fixtures of the integration tests: committed two-hotel data, a non-superuser owner, and
SIGINT raised as KeyboardInterrupt (the seed's interrupt tests)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from rls_support import (
    APP_ROLE,
    ONE_CONNECTION,
    OWNER_ROLE,
    Tenant,
    insert_tenant,
    signing_key_of,
)
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migrations
from hotelbot_cli.db.engine import make_app_engine
from hotelbot_cli.settings import libpq_url


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt here, whatever handler the test runner installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def two_hotels(db_url: URL) -> tuple[Tenant, Tenant]:
    """Hotels A and B, committed in ``db_url`` (a fresh database at head)."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        a = insert_tenant(conn, "+15550001001", "token-a-" + uuid.uuid4().hex)
        b = insert_tenant(conn, "+15550002002", "token-b-" + uuid.uuid4().hex)
    return a, b


@pytest.fixture
def superuser_conn(db_url: URL) -> Iterator[psycopg.Connection]:
    """An autocommit superuser connection on ``db_url``."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def owner_role(server_url: URL, template_db: str) -> str:
    """A login role like a managed-PostgreSQL admin: not superuser, not BYPASSRLS, CREATEROLE.

    ``app_user`` already exists (the template created it), so an administrator grants it
    to the owner, as the migration's error message asks.
    """
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER_ROLE,))
        if exists.fetchone() is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE").format(
                    sql.Identifier(OWNER_ROLE)
                )
            )
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), sql.Identifier(OWNER_ROLE))
        )
        conn.execute(f"GRANT hotelbot_tenant_verifier TO {OWNER_ROLE}")  # made by 009
    return OWNER_ROLE


@pytest.fixture
def owner_db_url(create_database: Callable[..., URL], owner_role: str) -> URL:
    """An empty database owned by the non-superuser owner, as that owner's URL."""
    return create_database(owner=owner_role).set(username=owner_role, password=None)


@pytest.fixture
def owner_engine(owner_db_url: URL) -> Iterator[Engine]:
    """Engine as the non-superuser owner on a database it migrated to head."""
    engine = create_engine(owner_db_url, poolclass=NullPool)
    migrations.upgrade(engine, "head")
    yield engine
    engine.dispose()


@pytest.fixture
def bot_url(db_url: URL) -> Iterator[URL]:
    """A dedicated login made the way a DBA would: LOGIN, member of app_user, nothing else."""
    name = f"hb_bot_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'bot-secret' IN ROLE app_user")
    yield db_url.set(username=name, password="bot-secret")
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,)
        )
        conn.execute(f"DROP ROLE {name}")


@pytest.fixture
def bot(bot_url: URL, db_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The bot's engine (one pooled connection) with the key in HOTELBOT_TENANT_KEY."""
    monkeypatch.setenv("HOTELBOT_TENANT_KEY", signing_key_of(db_url).hex())
    engine = make_app_engine(bot_url, ONE_CONNECTION)
    yield engine
    engine.dispose()
