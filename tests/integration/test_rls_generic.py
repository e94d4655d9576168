"""rls-check on a schema that is not hotelbot's: organisations, projects, tasks keyed by org_id,
with its own tenant setting and app role, all from the configuration."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import rls
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.report import RlsReport
from hotelbot_cli.settings import libpq_url

ORG = "(SELECT NULLIF(current_setting('app.org', true), '')::uuid)"
SCHEMA = [
    "DO $$BEGIN CREATE ROLE org_app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$",
    "CREATE TABLE orgs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL)",
    "CREATE TABLE projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
    " org_id uuid NOT NULL REFERENCES orgs (id), title text NOT NULL,"
    " UNIQUE (org_id, id), UNIQUE (org_id, title))",
    "CREATE TABLE tasks (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org_id uuid NOT NULL,"
    " project_id uuid NOT NULL, body text,"
    " FOREIGN KEY (org_id, project_id) REFERENCES projects (org_id, id))",
    "CREATE INDEX ON projects (org_id)",
    "CREATE INDEX ON tasks (org_id, project_id)",
    *(
        s
        for t, c in (("orgs", "id"), ("projects", "org_id"), ("tasks", "org_id"))
        for s in (
            f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY {t}_org ON {t} TO org_app USING ({c} = {ORG}) WITH CHECK ({c} = {ORG})",
        )
    ),
    "GRANT USAGE ON SCHEMA public TO org_app",
    "GRANT SELECT ON orgs TO org_app",
    "GRANT SELECT, INSERT, DELETE, UPDATE (title) ON projects TO org_app",
    "GRANT SELECT, INSERT, DELETE, UPDATE (body) ON tasks TO org_app",
]
CONFIG = RlsConfig(
    tenant_column="org_id",
    tenant_setting="app.org",
    app_role="org_app",
    root_table="orgs",
    root_column="id",
    reviewed=(),
)


def _check(url: URL) -> RlsReport:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return rls.check(engine, config=CONFIG, migrated=False)
    finally:
        engine.dispose()


@pytest.fixture
def org_db(empty_db_url: URL) -> URL:
    with psycopg.connect(libpq_url(empty_db_url), autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
    return empty_db_url


def test_a_sound_org_schema_passes_with_its_own_names(org_db: URL) -> None:
    report = _check(org_db)
    assert report.ok, [(r.id, r.table, r.detail) for r in report.failures()]
    probed = {(r.id, r.table) for r in report.results if r.category == "probe"}
    assert {("probe-read-other", "tasks"), ("probe-insert-other", "projects")} <= probed
    assert ("probe-no-tenant-unset", "orgs") in probed


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (
            ["CREATE POLICY open ON tasks FOR SELECT USING (true)"],
            {("policy-bound", "tasks"), ("probe-read-other", "tasks")},
        ),
        (
            [
                "CREATE TABLE comments (task_id uuid, body text)",
                "GRANT SELECT ON comments TO org_app",
            ],
            {("unbound-relation", "comments")},
        ),
        (["ALTER TABLE projects NO FORCE ROW LEVEL SECURITY"], {("rls-forced", "projects")}),
    ],
)
def test_org_schema_leaks_are_caught(org_db: URL, statements: list[str], expected: set) -> None:
    with psycopg.connect(libpq_url(org_db), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    failed = {(r.id, r.table) for r in _check(org_db).failures()}
    assert expected <= failed, failed


def test_config_is_read_from_pyproject(tmp_path) -> None:
    from hotelbot_cli.errors import UsageError
    from hotelbot_cli.rls.config import load_config

    path = tmp_path / "pyproject.toml"
    path.write_text(
        "[tool.hotelbot.rls-check]\ntenant-column = 'org_id'\ntenant-setting = 'app.org'\n"
        "app-role = 'org_app'\nroot-table = 'orgs'\n"
        "non-tenant = [{object = 'countries', reason = 'same for all'}]\n"
        "reviewed = [{function = 'f()', sha256 = 'ab', review = 'read it'}]\n"
    )
    cfg = load_config(path)
    assert (cfg.tenant_column, cfg.tenant_setting, cfg.app_role, cfg.root_table) == (
        "org_id",
        "app.org",
        "org_app",
        "orgs",
    )
    assert cfg.declared("countries") and cfg.reviews_for("f()")
    assert cfg.reviews_for("hotelbot_hotel_id_for_whatsapp(text)")  # built-in reviews remain
    path.write_text("[tool.hotelbot.rls-check]\nnon-tenant = [{object = 'x'}]\n")
    with pytest.raises(UsageError, match="non-tenant"):
        load_config(path)
    path.write_text("[tool.hotelbot.rls-check]\ntenant-column = 3\n")
    with pytest.raises(UsageError, match="tenant-column"):
        load_config(path)


def test_the_pyproject_pins_match_the_built_in_reviews() -> None:
    """The installed package checks what this checkout's pyproject.toml reviewed."""
    from pathlib import Path

    from hotelbot_cli.rls.config import BUILTIN_REVIEWS, load_config

    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    assert set(load_config(pyproject).reviewed) == set(BUILTIN_REVIEWS)


def test_registry_is_in_the_readme_and_covers_every_emitted_id(db_url: URL) -> None:
    """Every id the checker emits (clean run, self-test's planted leaks) is registered, and the
    README's table is the registry's rendering."""
    from pathlib import Path

    from hotelbot_cli.rls import run_checks
    from hotelbot_cli.rls.registry import BY_ID, markdown
    from hotelbot_cli.rls.selftest import EXPECTED, plant

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown() in readme
    assert {i for _, i, _ in EXPECTED} <= set(BY_ID)
    engine = create_engine(db_url, poolclass=NullPool)
    with rls.rolled_back(engine) as conn:
        cfg = rls.load_config()
        plant(conn, "hb_registry_probe", "hb_registry_probe_role", cfg)
        emitted = {r.id for r in run_checks(conn, cfg)}
    engine.dispose()
    assert emitted <= set(BY_ID), emitted - set(BY_ID)


def test_temp_tables_only_warn_where_tenants_are_not_signed(org_db: URL) -> None:
    """PostgreSQL grants TEMPORARY to PUBLIC in every new database: without signed tenants
    (no revision 009 to have revoked it) rls-check warns and names the fix; once revoked,
    the check passes."""
    (temp,) = [r for r in _check(org_db).results if r.id == "temp-tables"]
    assert temp.status == "warn" and "PUBLIC may create temporary tables" in temp.detail
    assert temp.fix and "REVOKE TEMPORARY ON DATABASE" in temp.fix
    with psycopg.connect(libpq_url(org_db), autocommit=True) as conn:
        conn.execute(f'REVOKE TEMPORARY ON DATABASE "{org_db.database}" FROM PUBLIC')
    (temp,) = [r for r in _check(org_db).results if r.id == "temp-tables"]
    assert temp.status == "pass", temp.detail
