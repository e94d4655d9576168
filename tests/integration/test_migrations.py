"""Migrations: reversible to the last object, no drift, locked, atomic, read-only `current`."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migration_authoring, migration_check, migrations
from hotelbot_cli.db import sentiment
from hotelbot_cli.errors import DatabaseError, LockTimeout, NotAtHead, UsageError
from hotelbot_cli.migrations import scripts as migration_scripts

#: Everything of ours a migration can create, as comparable text.
CATALOG_QUERIES = {
    "tables": """
        SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i')
        ORDER BY 1""",
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, character_maximum_length,
               numeric_precision, numeric_scale, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1""",
    "types": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = 'public'::regnamespace GROUP BY 1 ORDER BY 1""",
    "functions": """
        SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1""",
    "triggers": """
        SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1""",
    "policies": """
        SELECT tablename, policyname, cmd, roles::text, qual, with_check
        FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2""",
    # Effective privileges: a NULL ACL means the owner's default, which REVOKE spells out.
    "grants": """
        SELECT c.relname, coalesce(c.relacl, acldefault('r', c.relowner))::text FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
        ORDER BY 1""",
    "schema_grants": """
        SELECT coalesce(nspacl, acldefault('n', nspowner))::text FROM pg_namespace
        WHERE nspname = 'public'""",
}


def catalog(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            name: [tuple(row) for row in conn.execute(text(query))]
            for name, query in CATALOG_QUERIES.items()
        }


@pytest.fixture
def empty_engine(empty_db_url: URL) -> Iterator[Engine]:
    engine = create_engine(empty_db_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def test_head_base_head_leaves_an_identical_catalog(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine)
    at_head = catalog(empty_engine)
    assert at_head["tables"] and at_head["types"] and at_head["policies"]
    # updated_at is set by the writers since 012 (no trigger); one trigger empties the cache
    # of verified signatures when the key changes (013); the sentiment counts' triggers on
    # messages (014) are the ones `db distribute` drops on Citus
    assert sorted(name for name, _ in at_head["triggers"]) == sorted(
        ["forget_verified_tenants", *sentiment.TRIGGERS]
    )
    migrations.downgrade(empty_engine, "base")
    migrations.upgrade(empty_engine)
    assert catalog(empty_engine) == at_head


def test_downgrade_base_leaves_nothing_of_ours(empty_engine: Engine) -> None:
    before = catalog(empty_engine)
    migrations.upgrade(empty_engine)
    migrations.downgrade(empty_engine, "base")
    assert catalog(empty_engine) == before
    assert migrations.current(empty_engine) == ()


def test_every_revision_steps_down_and_up(empty_engine: Engine) -> None:
    revisions = [r.revision for r in reversed(migrations.history())]
    snapshots = {}
    for revision in revisions:
        migrations.upgrade(empty_engine, revision)
        snapshots[revision] = catalog(empty_engine)
    for revision in reversed(revisions[:-1]):
        migrations.downgrade(empty_engine, revision)
        assert catalog(empty_engine) == snapshots[revision], f"downgrade to {revision} differs"


def test_models_match_migrations(engine: Engine) -> None:
    report = migration_check.check(engine)
    assert report.ok, report.differences
    assert report.heads == migrations.heads()
    with engine.connect() as conn:
        assert migration_check.compare(conn) == []


def test_drift_is_reported_readably(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE guests ADD COLUMN nickname text"))
        conn.execute(text("DROP INDEX ix_messages_hotel_id_created_at"))
        conn.execute(text("ALTER TABLE hotels ALTER COLUMN name TYPE varchar(100)"))
    with engine.connect() as conn:
        diffs = migration_check.compare(conn)
    assert "remove column guests.nickname" in diffs
    assert any(d.startswith("add index ix_messages_hotel_id_created_at on messages") for d in diffs)
    assert any("modify type hotels.name" in d for d in diffs)
    assert all("<" not in d and "object at" not in d for d in diffs)


def test_current_writes_nothing(empty_engine: Engine) -> None:
    assert migrations.current(empty_engine) == ()
    with empty_engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('public.alembic_version')")) is None
    with pytest.raises(NotAtHead, match="hotelbot db upgrade"):
        migrations.require_head(empty_engine)


def test_two_concurrent_upgrades_migrate_once(empty_db_url: URL) -> None:
    engines = [create_engine(empty_db_url, poolclass=NullPool) for _ in range(2)]
    results: list[migrations.MigrationResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(engine: Engine) -> None:
        barrier.wait()
        try:
            results.append(migrations.upgrade(engine, "head", lock_timeout=30))
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert not errors
    assert sorted(len(r.steps) for r in results) == [0, len(migrations.history())]
    assert all(r.after == migrations.heads() for r in results)


def test_lock_timeout_when_another_migration_holds_the_lock(empty_engine: Engine) -> None:
    with empty_engine.connect() as holder:
        holder.execute(text(f"SELECT pg_advisory_lock({migrations.MIGRATION_LOCK_KEY})"))
        with pytest.raises(LockTimeout, match="another migration holds the lock"):
            migrations.upgrade(empty_engine, "head", lock_timeout=0.3)
        holder.execute(text(f"SELECT pg_advisory_unlock({migrations.MIGRATION_LOCK_KEY})"))
    assert migrations.current(empty_engine) == ()


def test_failing_migration_leaves_the_previous_revision(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine, "005")
    with empty_engine.begin() as conn:
        # 006 adds an E.164 CHECK: a bad number already stored makes it fail half-way.
        conn.execute(text("INSERT INTO hotels (name, whatsapp_number) VALUES ('H', 'not-e164')"))
    before = catalog(empty_engine)
    with pytest.raises(DatabaseError, match="upgrade failed") as caught:
        migrations.upgrade(empty_engine)
    assert "still at 005" in str(caught.value)
    assert migrations.current(empty_engine) == ("005",)
    assert catalog(empty_engine) == before


@pytest.mark.parametrize("revision", ["999", "nonsense", "abc:def"])
def test_unknown_revisions_are_usage_errors(empty_engine: Engine, revision: str) -> None:
    with pytest.raises(UsageError):
        migrations.upgrade(empty_engine, revision)


def test_stamp_records_without_running(empty_engine: Engine) -> None:
    migrations.stamp(empty_engine, "003")
    assert migrations.current(empty_engine) == ("003",)
    with empty_engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('public.hotels')")) is None


def test_offline_sql_both_directions() -> None:
    up = migrations.offline_sql("base:head")
    assert "CREATE TABLE hotels" in up and "CREATE TYPE trigger_type" in up
    down = migrations.offline_sql("006:005")
    assert "DROP FUNCTION hotelbot_touch_updated_at()" in down
    assert "CREATE TABLE" in migrations.offline_sql("002:003")
    head = migrations.heads()[0]
    assert f"Running downgrade {head} -> " in migrations.offline_sql(f"{head}:-1")
    assert "Running upgrade 001 -> 002" in migrations.offline_sql("001:+1")
    for bad in ["head", "zzz:head", "005:zzz"]:
        with pytest.raises(UsageError):
            migrations.offline_sql(bad)


def test_history_and_heads() -> None:
    history = migrations.history()
    assert [r.revision for r in history][-6:] == ["006", "005", "004", "003", "002", "001"]
    assert history[-1].down_revision is None and history[-1].message.startswith("Create hotels")
    assert [r.revision for r in history if r.is_head] == list(migrations.heads())


@pytest.fixture
def scratch_scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the migration scripts, so revision tests never write into the package."""
    copy = tmp_path / "alembic"
    shutil.copytree(
        migrations.script_location(), copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setattr(migration_scripts, "script_location", lambda: copy)
    return copy


def test_revision_creates_the_next_numbered_file(scratch_scripts: Path) -> None:
    expected = migration_authoring.next_revision_id()
    path = migration_authoring.revision(None, "add room numbers")
    assert path.parent == scratch_scripts / "versions"
    assert path.name == f"{expected}_add_room_numbers.py"
    assert f"down_revision: str | Sequence[str] | None = '{int(expected) - 1:03d}'" in (
        path.read_text()
    )
    with pytest.raises(UsageError):
        migration_authoring.revision(None, "  ")


def test_autogenerate_sees_model_changes_only(scratch_scripts: Path, engine: Engine) -> None:
    path = migration_authoring.revision(engine, "nothing changed", autogenerate=True)
    upgrade_body = path.read_text().split("def upgrade")[1].split("def downgrade")[0]
    assert "pass" in upgrade_body and "op." not in upgrade_body


def test_check_reports_more_than_one_head(scratch_scripts: Path, engine: Engine) -> None:
    head = migrations.heads()[0]
    below = migrations.script_directory().get_revision(head).down_revision
    branch = scratch_scripts / "versions" / "900_branch.py"
    branch.write_text(
        f'"""A second head."""\nrevision = "900"\ndown_revision = "{below}"\n'
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade() -> None:\n    pass\n\ndef downgrade() -> None:\n    pass\n"
    )
    report = migration_check.check(engine)
    assert not report.ok and len(report.heads) == 2


def test_check_without_createdb_compares_the_database_itself(db_url: URL) -> None:
    from hotelbot_cli.db.scratch import ScratchUnavailable, scratch_database

    admin = create_engine(db_url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(
            text(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hb_no_createdb')"
                " THEN CREATE ROLE hb_no_createdb LOGIN NOCREATEDB NOSUPERUSER; END IF; END $$"
            )
        )
        conn.execute(text("GRANT SELECT ON alembic_version TO hb_no_createdb"))
    admin.dispose()
    limited = create_engine(db_url.set(username="hb_no_createdb"), poolclass=NullPool)
    try:
        with (
            pytest.raises(ScratchUnavailable, match="permission denied"),
            scratch_database(limited, "hb_never"),
        ):
            pass  # pragma: no cover - never reached
        report = migration_check.check(limited)
        assert report.ok and report.differences == ()
    finally:
        limited.dispose()


ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns("__pycache__")


@pytest.fixture
def installed_scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scripts where a non-editable install puts them: site-packages/hotelbot_cli/_alembic."""
    copy = tmp_path / "site-packages" / "hotelbot_cli" / "_alembic"
    shutil.copytree(ROOT / "alembic", copy, ignore=IGNORE)
    monkeypatch.setattr(migration_scripts, "script_location", lambda: copy)
    return copy


def make_checkout(where: Path) -> Path:
    shutil.copytree(ROOT / "alembic", where / "alembic", ignore=IGNORE)
    (where / "pyproject.toml").write_text('[project]\nname = "hotelbot"\n')
    return where


def test_revision_from_an_installed_copy_refuses_outside_a_checkout(
    installed_scripts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pyproject.toml").write_text('[project]\nname = "not-hotelbot"\n')
    (elsewhere / "alembic").mkdir()
    (elsewhere / "alembic" / "env.py").write_text("")
    monkeypatch.chdir(elsewhere)
    before = sorted((installed_scripts / "versions").iterdir())
    with pytest.raises(UsageError, match="belongs in a source checkout") as caught:
        migration_authoring.revision(None, "add room numbers")
    assert "--source" in str(caught.value)
    assert sorted((installed_scripts / "versions").iterdir()) == before
    with pytest.raises(UsageError, match="installed copy"):
        migration_authoring.revision(None, "add room numbers", source=installed_scripts)
    with pytest.raises(UsageError, match="holds no migration scripts"):
        migration_authoring.revision(None, "add room numbers", source=tmp_path)


def test_revision_from_an_installed_copy_writes_into_the_checkout(
    installed_scripts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = make_checkout(tmp_path / "clone")
    ahead = f"{int(migrations.heads()[0]) + 1:03d}"
    (checkout / "alembic" / "versions" / f"{ahead}_ahead.py").write_text(
        f'"""Only in the checkout."""\nrevision = "{ahead}"\n'
        f'down_revision = "{migrations.heads()[0]}"\nbranch_labels = None\ndepends_on = None\n\n'
        "def upgrade() -> None:\n    pass\n\ndef downgrade() -> None:\n    pass\n"
    )
    monkeypatch.chdir(checkout / "alembic" / "versions")  # found walking up
    before = sorted((installed_scripts / "versions").iterdir())
    path = migration_authoring.revision(None, "add room numbers")
    assert path.parent == checkout / "alembic" / "versions"
    assert path.name == f"{int(ahead) + 1:03d}_add_room_numbers.py"  # after the checkout's head
    assert f"'{ahead}'" in path.read_text()
    monkeypatch.chdir(tmp_path)
    path = migration_authoring.revision(None, "more rooms", source=checkout)
    assert path.name == f"{int(ahead) + 2:03d}_more_rooms.py"
    assert sorted((installed_scripts / "versions").iterdir()) == before


def test_autogenerate_refuses_models_that_are_not_the_checkouts(
    installed_scripts: Path, tmp_path: Path, engine: Engine
) -> None:
    checkout = make_checkout(tmp_path / "clone")
    (checkout / "hotelbot_cli").mkdir()
    with pytest.raises(UsageError, match="pip install -e"):
        migration_authoring.revision(engine, "from the models", autogenerate=True, source=checkout)
    assert not list((checkout / "alembic" / "versions").glob("*from_the_models*"))


@pytest.mark.slow
def test_db_revision_after_a_real_non_editable_install(tmp_path: Path) -> None:
    """`pip install .` (into a target dir): the package ships its scripts and JSON schemas,
    and `db revision` refuses outside a checkout, then writes into one."""
    import os
    import subprocess
    import sys

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    package = target / "hotelbot_cli"
    assert (package / "_alembic" / "env.py").is_file()
    assert sorted(p.name for p in (package / "schemas").glob("db-*.schema.json")) == [
        "db-check.schema.json",
        "db-current.schema.json",
        "db-distribute.schema.json",
        "db-heads.schema.json",
        "db-history.schema.json",
        "db-migration.schema.json",
    ]
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("DATABASE_URL", None)
    versions = sorted((package / "_alembic" / "versions").iterdir())

    def hotelbot(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hotelbot_cli", "db", "revision", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    outside = tmp_path / "outside"
    outside.mkdir()
    result = hotelbot(outside, "-m", "add room numbers")
    assert result.returncode == 2 and "belongs in a source checkout" in result.stderr
    assert "Traceback" not in result.stderr
    checkout = make_checkout(tmp_path / "clone")
    result = hotelbot(checkout, "-m", "add room numbers")
    assert result.returncode == 0, result.stderr
    assert str(checkout / "alembic" / "versions") in result.stdout
    assert sorted((package / "_alembic" / "versions").iterdir()) == versions


@pytest.mark.slow
def test_check_leaves_no_app_user_role_on_a_server_that_had_none(tmp_path: Path) -> None:
    """Revision 007 creates the cluster-wide app_user role; `db check` on a fresh server
    (its own embedded cluster here) drops it again and says so."""
    from hotelbot_cli import embedded
    from hotelbot_cli.settings import normalize_url

    pgdata = tmp_path / "pgdata"
    url = embedded.start(pgdata, database="postgres")
    engine = create_engine(normalize_url(url), poolclass=NullPool)
    try:
        roles = "SELECT count(*) FROM pg_roles WHERE rolname = 'app_user'"
        with engine.connect() as conn:
            assert conn.scalar(text(roles)) == 0
        report = migration_check.check(engine)
        assert report.ok, report
        assert any("dropped the role app_user" in note for note in report.notes)
        with engine.connect() as conn:
            assert conn.scalar(text(roles)) == 0
            assert conn.scalar(text("SELECT count(*) FROM pg_database")) == 3  # no scratch left
    finally:
        engine.dispose()
        embedded.stop(pgdata)


def test_tenant_tables_are_the_migrated_tables_with_a_hotel_id_in_key_order(
    engine: Engine,
) -> None:
    """``TENANT_TABLES`` (what Citus distributes) is read from the models: it must name
    exactly the migrated tables that carry hotel_id, each after the tables it references."""
    from hotelbot_cli.models import TENANT_TABLES

    with engine.connect() as conn:
        tables = set(
            conn.scalars(
                text(
                    "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " WHERE c.relnamespace = current_schema()::regnamespace"
                    " AND c.relkind IN ('r', 'p') AND a.attname = 'hotel_id'"
                    " AND NOT a.attisdropped"
                )
            )
        )
        references = conn.execute(
            text(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
                " WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
            )
        ).all()
    assert set(TENANT_TABLES) == tables
    order = {name: i for i, name in enumerate(TENANT_TABLES)}
    for table, target in references:
        if table in order and target in order and table != target:
            assert order[target] < order[table], (table, target)
