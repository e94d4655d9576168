"""``hotelbot bench`` as a managed-PostgreSQL owner (no superuser, no BYPASSRLS): issue 11.

The owner baseline needs a role that bypasses row level security; without one the run still
measures the tenant side and says, in one line and in ``--json``, that the baseline was skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

import hotelbot_cli
from hotelbot_cli import migrations
from hotelbot_cli.settings import libpq_url

OWNER = "hb_bench_owner"


def _plain_owner(server_url: URL, create_database: Callable[..., URL]) -> URL:
    """As on managed PostgreSQL: CREATEROLE, not superuser, not BYPASSRLS, app_user's admin."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER,)).fetchone() is None:
            conn.execute(f"CREATE ROLE {OWNER} LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE")
        conn.execute(f"GRANT app_user TO {OWNER} WITH ADMIN OPTION")
        conn.execute(f"GRANT hotelbot_tenant_verifier TO {OWNER}")
    url = create_database(owner=OWNER).set(username=OWNER, password=None)
    engine = create_engine(url, poolclass=NullPool)
    migrations.upgrade(engine, "head")
    engine.dispose()
    return url


def test_bench_as_a_plain_owner_skips_the_owner_baseline_and_says_why(
    cli, server_url: URL, create_database: Callable[..., URL], template_db: str
) -> None:
    url = _plain_owner(server_url, create_database)
    code, _, err = cli("seed", "--hotels", "2", "--guests-per-hotel", "5", "-q", url=url)
    assert code == 0, err
    args = ("bench", "--iterations", "60", "--no-reference", "--no-explain")
    code, out, err = cli(*args, url=url)
    assert code == 0, err
    assert "Traceback" not in err and "owner baseline skipped" in err
    assert "Cost of tenant isolation" not in out + err
    code, out, err = cli(*args, "--json", url=url)
    assert code == 0, err
    doc = json.loads(out)
    schema = Path(hotelbot_cli.__file__).parent / "bench" / "report.schema.json"
    jsonschema.validate(doc, json.loads(schema.read_text()))
    assert "bypasses no row level security" in doc["isolation_skipped"]
    assert doc["isolation"] == []
    assert doc["total_ops"] == 60 and all(o["errors"] == 0 for o in doc["operations"])
    assert doc["dataset"]["hotels"] == 2  # read as the owner, FORCE lifted and rolled back
    code, out, _ = cli(*args, "--no-isolation", "--json", url=url)
    assert code == 0 and json.loads(out)["isolation_skipped"] is None
