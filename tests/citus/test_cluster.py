"""Every command on a real Citus cluster: upgrade, distribute, seed, rls-check, bench, stats.

One database for the module (created on the coordinator and every worker): migrated,
seeded, distributed, then used by every test in order of the README's story. Skipped
without HOTELBOT_TEST_CITUS_URL (see conftest.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from importlib import resources

import jsonschema
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli.db import sentiment
from hotelbot_cli.models import TENANT_TABLES
from hotelbot_cli.settings import libpq_url
from tests.citus.conftest import CITUS_URL, app_login_on_workers

pytestmark = pytest.mark.skipif(not CITUS_URL, reason="HOTELBOT_TEST_CITUS_URL is not set")

SMALL = ["--hotels", "8", "--guests-per-hotel", "20", "--reference-time", "2026-01-01T00:00:00Z"]


def _schema(name: str) -> dict:
    return json.loads(resources.files("hotelbot_cli").joinpath("schemas", name).read_text())


@pytest.fixture(scope="module")
def cluster(citus_db: Callable[[], URL]) -> URL:
    """A database at head on the cluster, seeded, not yet distributed."""
    from hotelbot_cli import migrations

    url = citus_db()
    engine = create_engine(url, poolclass=NullPool)
    migrations.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def run(cli, cluster: URL, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HOTELBOT_APP_DATABASE_URL", raising=False)
    return lambda *args: cli(*args, url=cluster)


def test_1_seed_then_distribute_dry_run_changes_nothing(run, cluster: URL) -> None:
    code, _, err = run("seed", *SMALL)
    assert code == 0, err
    code, out, err = run("db", "distribute", "--dry-run", "--json")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, _schema("db-distribute.schema.json"))
    assert doc["dry_run"] and doc["applied"] == 0 and len(doc["workers"]) >= 2
    assert [s["target"] for s in doc["steps"] if s["action"] == "distribute"] == list(TENANT_TABLES)
    # the sentiment counts' triggers go first (a trigger on a shard writes no other table)
    assert [s["target"] for s in doc["steps"] if s["action"] == "drop-trigger"] == list(
        sentiment.TRIGGERS
    )
    with psycopg.connect(libpq_url(cluster)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_dist_partition").fetchone() == (0,)


def test_2_distribute_moves_the_rows_and_is_idempotent(run, cluster: URL) -> None:
    with psycopg.connect(libpq_url(cluster)) as conn:
        before = conn.execute("SELECT count(*) FROM messages").fetchone()
    code, out, err = run("db", "distribute")
    assert code == 0, err
    assert "hotels: reference" in out and "messages: distributed" in out
    assert "ALTER ROLE app_user LOGIN" in err  # the operator's part, on the workers
    with psycopg.connect(libpq_url(cluster)) as conn:
        kinds = dict(
            conn.execute("SELECT table_name::text, citus_table_type FROM citus_tables").fetchall()
        )
        assert kinds["hotels"] == "reference" and kinds["messages"] == "distributed"
        colocated = conn.execute(
            "SELECT count(DISTINCT colocation_id) FROM citus_tables"
            " WHERE citus_table_type = 'distributed'"
        ).fetchone()
        assert colocated == (1,)
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == before
    code, out, err = run("db", "distribute", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [s["action"] for s in doc["steps"]] == ["worker-key"]  # only the key refreshed
    app_login_on_workers(cluster)


def test_3_migrations_after_distribution(run) -> None:
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "Already at" in out
    code, _, err = run("db", "downgrade", "-1", "--yes")
    assert code == 2 and "distributed (Citus)" in err and len(err.strip().splitlines()) == 1


def test_4_seed_appends_on_the_cluster(run, cluster: URL) -> None:
    code, _, err = run("seed", "--append", "--hotels", "2", "--guests-per-hotel", "5")
    assert code == 0, err
    with psycopg.connect(libpq_url(cluster)) as conn:
        assert conn.execute("SELECT count(*) FROM hotels").fetchone() == (10,)


def test_5_rls_check_is_clean(run, cluster: URL) -> None:
    code, out, err = run("rls-check", "--json")
    doc = json.loads(out)
    failed = [r for r in doc["checks"] if r["status"] == "fail"]
    assert code == 0 and doc["ok"] and not failed, failed or err
    with psycopg.connect(libpq_url(cluster)) as conn:  # its fixture tenants are gone
        assert conn.execute("SELECT count(*) FROM hotels").fetchone() == (10,)


def test_6_bench_has_no_errors_and_every_operation_is_single_shard(run) -> None:
    code, out, err = run("bench", "--iterations", "200", "--no-reference", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert all(op["errors"] == 0 for op in doc["operations"]), doc["operations"]
    checks = doc["index_checks"]  # on this tiny dataset the planner may prefer a scan
    assert checks and all(c["note"].startswith("single-shard") for c in checks), checks


def test_7_stats_show_every_node(run) -> None:
    code, out, err = run("db", "stats", "--json")
    assert code == 0, err
    nodes = json.loads(out)["nodes"]
    assert len([n for n in nodes if n["shards"] > 1]) >= 2


def _hotels_on_two_workers(conn: psycopg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    rows = conn.execute(
        "SELECT h.id, s.nodeport FROM hotels h JOIN citus_shards s"
        " ON s.shardid = get_shard_id_for_distribution_column('guests', h.id)"
        " AND s.table_name = 'guests'::regclass"
    ).fetchall()
    by_node: dict[int, uuid.UUID] = {}
    for hotel, port in rows:
        by_node.setdefault(port, hotel)
    assert len(by_node) >= 2, "the seeded hotels all landed on one worker"
    first, second = list(by_node.values())[:2]
    return first, second


def test_8_isolation_between_hotels_on_different_workers(
    cluster: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotelbot_cli.db import session_factory, tenant_session
    from hotelbot_cli.db.tenant import signing_key
    from hotelbot_cli.models import Guest, Hotel

    with psycopg.connect(libpq_url(cluster)) as conn:
        a, b = _hotels_on_two_workers(conn)
        key = signing_key(conn)
    assert key is not None
    monkeypatch.setenv("HOTELBOT_TENANT_KEY", key.hex())  # the bot signs: SET LOCAL
    engine = create_engine(cluster, poolclass=NullPool)
    factory = session_factory(engine)
    with tenant_session(a, factory) as session:  # a reference table: a copy on every node
        for hotel, want in ((b, 0), (a, 1)):
            changed = session.execute(
                text("UPDATE hotels SET settings = settings, updated_at = now() WHERE id = :h"),
                {"h": hotel},
            ).rowcount
            assert changed == want
    with tenant_session(a, factory) as session:
        hotels = {h.id for h in session.query(Hotel).all()}
        assert hotels == {a}
        owners = {g.hotel_id for g in session.query(Guest).all()}  # every shard, RLS-filtered
        assert owners == {a}
        assert session.query(Guest).filter(Guest.hotel_id == b).count() == 0
        # SQL injected into A's transaction names B with SET LOCAL, which reaches the
        # workers: without B's signature, B's rows stay invisible there.
        session.execute(text(f"SET LOCAL app.current_hotel_id = '{b}'"))
        forged = session.execute(
            text("SELECT count(*) FROM guests WHERE hotel_id = :b"), {"b": b}
        ).scalar()
        assert forged == 0
    with pytest.raises(Exception, match="row-level security"), tenant_session(a, factory) as s:
        s.execute(  # B's hotel_id from A's transaction: refused on B's worker
            text("INSERT INTO guests (hotel_id, phone, name) VALUES (:b, '+15550009999', 'x')"),
            {"b": b},
        )
    with tenant_session(b, factory) as session:
        assert {g.hotel_id for g in session.query(Guest).all()} == {b}
    with psycopg.connect(libpq_url(cluster)) as conn:  # the copies of A's row agree
        stamps = conn.execute(
            "SELECT DISTINCT result FROM run_command_on_placements('hotels',"
            " $$SELECT updated_at FROM %s WHERE id = '" + str(a) + "'$$)"
        ).fetchall()
        assert len(stamps) == 1
    engine.dispose()


def test_9_small_database_check_reads_the_shards(cluster: URL) -> None:
    """migration_steps sizes a distributed schema by its shards, not the coordinator's
    (empty) copies: a seeded cluster is not "a fresh database"."""
    from hotelbot_cli import migration_steps as steps

    engine = create_engine(cluster, poolclass=NullPool)
    with engine.connect() as conn:
        assert steps._on_citus(conn)
        on_shards = int(conn.scalar(text(steps._SCHEMA_BYTES_CITUS)))
        on_coordinator = int(conn.scalar(text(steps._SCHEMA_BYTES)))
    engine.dispose()
    assert on_shards > on_coordinator


def test_10_delete_helpers_null_the_notifications_on_the_shard(
    cluster: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO ACTION keys on Citus: the helpers null the references first, as app_user."""
    from hotelbot_cli.db import deletes, session_factory, tenant_session
    from hotelbot_cli.db.tenant import signing_key

    with psycopg.connect(libpq_url(cluster)) as conn:
        hotel, _ = _hotels_on_two_workers(conn)
        key = signing_key(conn)
    assert key is not None
    monkeypatch.setenv("HOTELBOT_TENANT_KEY", key.hex())
    engine = create_engine(cluster, poolclass=NullPool)
    factory = session_factory(engine)
    with tenant_session(hotel, factory) as session:
        guest, message = session.execute(
            text(
                "SELECT c.guest_id, m.id FROM messages m JOIN conversations c"
                " ON c.hotel_id = m.hotel_id AND c.id = m.conversation_id"
                " WHERE m.hotel_id = :h LIMIT 1"
            ),
            {"h": hotel},
        ).one()
        note = session.execute(
            text(
                "INSERT INTO staff_notifications (hotel_id, guest_id, message_id,"
                " notification_type, title, content)"
                " VALUES (:h, :g, :m, 'system_alert', 't', 'c') RETURNING id"
            ),
            {"h": hotel, "g": guest, "m": message},
        ).scalar()
        assert deletes.delete_guest(session, hotel, guest)
        left = session.execute(
            text(
                "SELECT guest_id, message_id FROM staff_notifications"
                " WHERE hotel_id = :h AND id = :n"
            ),
            {"h": hotel, "n": note},
        ).one()
        assert tuple(left) == (None, None)
    engine.dispose()
