"""A fresh database on a real Citus cluster per test module (HOTELBOT_TEST_CITUS_URL).

``HOTELBOT_TEST_CITUS_URL`` names a database on a Citus coordinator (a superuser URL) whose
workers are added. Each module gets its own database, created on the coordinator and on
every worker with the citus extension, the workers added; dropped at the end. Without the
variable every test here is skipped: CI has no Citus.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

CITUS_URL = os.environ.get("HOTELBOT_TEST_CITUS_URL", "")

pytestmark = pytest.mark.skipif(not CITUS_URL, reason="HOTELBOT_TEST_CITUS_URL is not set")


def _conn(url: URL) -> psycopg.Connection:
    from hotelbot_cli.settings import libpq_url

    return psycopg.connect(libpq_url(url), autocommit=True)


def _nodes(url: URL) -> list[tuple[str, int]]:
    with _conn(url) as conn:
        rows = conn.execute(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE isactive"
            " AND noderole = 'primary' AND groupid <> 0 ORDER BY nodeid"
        ).fetchall()
    return [(str(h), int(p)) for h, p in rows]


@pytest.fixture(scope="module")
def citus_db() -> Iterator[Callable[[], URL]]:
    """Factory: a new database on the coordinator and every worker, the workers added."""
    if not CITUS_URL:
        pytest.skip("HOTELBOT_TEST_CITUS_URL is not set")
    base = make_url(CITUS_URL).set(drivername="postgresql+psycopg")
    workers = _nodes(base)
    made: list[str] = []

    def create() -> URL:
        name = f"hb_citus_{uuid.uuid4().hex[:8]}"
        for host, port in [(base.host or "localhost", base.port or 5432), *workers]:
            node = base.set(host=host, port=port)
            with _conn(node) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with _conn(node.set(database=name)) as conn:
                conn.execute("CREATE EXTENSION citus")
        url = base.set(database=name)
        with _conn(url) as conn:
            conn.execute(
                "SELECT citus_set_coordinator_host(%s, %s)", (base.host or "localhost", base.port)
            )
            for host, port in workers:
                conn.execute("SELECT citus_add_node(%s, %s)", (host, port))
        made.append(name)
        return url

    yield create
    for name in made:
        for host, port in [(base.host or "localhost", base.port or 5432), *workers]:
            with _conn(base.set(host=host, port=port)) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def app_login_on_workers(url: URL) -> None:
    """What `db distribute` tells the operator: app_user may log in on the workers."""
    with _conn(url) as conn:
        for host, port in _nodes(url):
            with _conn(url.set(host=host, port=port)) as worker:
                worker.execute("SET citus.enable_ddl_propagation = off")
                worker.execute("ALTER ROLE app_user LOGIN")
        conn.execute("SELECT 1")
