"""Alembic's own CLI on a checkout (``[tool.alembic]`` in pyproject.toml), and offline SQL
that psql applies as printed, in both directions."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import embedded, migrations
from hotelbot_cli.settings import libpq_url

ROOT = Path(__file__).resolve().parents[2]
HEAD = migrations.heads()[0]
PREVIOUS = migrations.script_directory().get_revision(HEAD).down_revision


def alembic(*args: str, url: URL | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PYTHONPATH"}}
    if url is not None:
        env["DATABASE_URL"] = url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_pyproject_configures_alembic_like_the_library() -> None:
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["alembic"]
    here = ROOT.as_posix()
    config = migrations.make_config()
    assert table["script_location"] % {"here": here} == str(migrations.script_location())
    assert [v % {"here": here} for v in table["version_locations"]] == [
        config.get_main_option("version_locations")
    ]
    assert table["file_template"] == config.get_main_option("file_template").replace("%", "%%")


def test_plain_alembic_upgrade_check_history_downgrade(empty_db_url: URL) -> None:
    result = alembic("upgrade", "head", url=empty_db_url)
    assert result.returncode == 0, result.stderr
    assert f"Running upgrade {PREVIOUS} -> {HEAD}," in result.stderr
    engine = create_engine(empty_db_url, poolclass=NullPool)
    try:
        assert migrations.current(engine) == (HEAD,)
        result = alembic("check", url=empty_db_url)
        assert result.returncode == 0 and "No new upgrade operations" in result.stdout
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE guests ADD COLUMN nickname text"))
        result = alembic("check", url=empty_db_url)
        assert result.returncode != 0 and "New upgrade operations detected" in result.stderr
        result = alembic("history")
        assert result.returncode == 0 and f"-> {HEAD} (head)" in result.stdout
        result = alembic("downgrade", "-1", url=empty_db_url)
        assert result.returncode == 0, result.stderr
        assert migrations.current(engine) == (PREVIOUS,)
    finally:
        engine.dispose()


def test_plain_alembic_offline_sql_needs_no_url() -> None:
    result = alembic("upgrade", "--sql", "base:head")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE hotels" in result.stdout and "%%" not in result.stdout


def psql(url: URL, script: str) -> None:
    result = subprocess.run(
        [str(embedded.bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", libpq_url(url)],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("revision", [r.revision for r in migrations.history()])
def test_offline_sql_applies_with_psql_in_both_directions(empty_db_url: URL, revision: str) -> None:
    """``hotelbot db sql`` output for one revision, up then down, run by psql as printed."""
    down = next(r.down_revision for r in migrations.history() if r.revision == revision)
    engine = create_engine(empty_db_url, poolclass=NullPool)
    try:
        if down:
            migrations.upgrade(engine, down)
        psql(empty_db_url, migrations.offline_sql(f"{down or 'base'}:{revision}"))
        assert migrations.current(engine) == (revision,)
        psql(empty_db_url, migrations.offline_sql(f"{revision}:{down or 'base'}"))
        assert migrations.current(engine) == ((down,) if down else ())
    finally:
        engine.dispose()
