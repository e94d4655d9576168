"""One harness for every test: a real PostgreSQL, a migrated template, isolated databases.

- ``TEST_DATABASE_URL`` (a superuser URL) selects an existing server; otherwise an
  embedded PostgreSQL is started in a temporary directory and deleted afterwards.
  The user's own embedded server and DATABASE_URL are never touched.
- The template database is migrated to head once; ``db_url`` clones it per test
  (CREATE DATABASE … TEMPLATE), ``session`` wraps a test in a rolled-back transaction.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from hotelbot_cli import embedded, migrations
from hotelbot_cli.cli.app import run
from hotelbot_cli.settings import libpq_url, normalize_url
from tests.pgbouncer import pgbouncer  # noqa: F401 - a real PgBouncer fixture (issue 10)

# Never let a test reach the developer's database or embedded server.
os.environ.pop("DATABASE_URL", None)
os.environ["HOTELBOT_DATA_DIR"] = "/nonexistent/hotelbot-tests-must-not-use-this"


def _admin(url: URL) -> psycopg.Connection:
    return psycopg.connect(libpq_url(url), autocommit=True)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A superuser URL (database ``postgres``) on a server the tests own."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield normalize_url(given)
        return
    with embedded.scratch_server(tmp_path_factory.mktemp("embedded-pg")) as raw:
        url = normalize_url(raw)
        with _admin(url) as conn:
            # Durability is not under test: make the throwaway server fast.
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
            conn.execute("SELECT pg_reload_conf()")
        yield url


@pytest.fixture(scope="session")
def create_database(server_url: URL) -> Iterator[Callable[..., URL]]:
    """Factory: a new database (empty, or cloned from ``template``); all dropped at the end."""
    made: list[str] = []

    def create(template: str | None = None, owner: str | None = None) -> URL:
        name = f"hb_test_{uuid.uuid4().hex[:10]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if owner:
            query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        with _admin(server_url) as conn:
            conn.execute(query)
            if template:  # a clone does not inherit the ACL: revoke again, as the README says
                conn.execute(
                    sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(name)
                    )
                )
        made.append(name)
        return server_url.set(database=name)

    yield create
    with _admin(server_url) as conn:
        for name in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def drop_database(server_url: URL, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_db(server_url: URL, create_database: Callable[..., URL]) -> str:
    """Name of a database migrated to head, used as the template of per-test clones."""
    url = create_database()
    engine = create_engine(url, poolclass=NullPool)
    migrations.upgrade(engine, "head")
    engine.dispose()
    assert url.database
    return url.database


@pytest.fixture
def db_url(create_database: Callable[..., URL], template_db: str) -> URL:
    """A fresh database at head, private to this test."""
    return create_database(template=template_db)


@pytest.fixture
def empty_db_url(create_database: Callable[..., URL]) -> URL:
    """A fresh, empty database private to this test (for migration tests)."""
    return create_database()


@pytest.fixture(scope="session")
def shared_engine(create_database: Callable[..., URL], template_db: str) -> Iterator[Engine]:
    """An engine on one database at head shared by transactional tests (nothing is committed)."""
    engine = create_engine(create_database(template=template_db), poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def session(shared_engine: Engine) -> Iterator[Session]:
    """A Session whose every commit lands in an outer transaction that is rolled back."""
    with shared_engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as sess:
            yield sess
        outer.rollback()


@pytest.fixture
def engine(db_url: URL) -> Iterator[Engine]:
    """An engine on a fresh database at head (for tests that commit or run concurrently)."""
    engine = create_engine(db_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``hotelbot ARGS`` in-process against ``url``; returns (exit code, stdout, stderr)."""

    def invoke(*args: str, url: URL | str | None = None) -> tuple[int, str, str]:
        if url is not None:
            text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
            monkeypatch.setenv("DATABASE_URL", text)
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
