"""A failed check leaves through the one mapper: exit 1, one ``error:`` line, output complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from hotelbot_cli.settings import libpq_url

CLI_DIR = Path(__file__).parents[2] / "hotelbot_cli" / "cli"


def _one_error_line(err: str) -> str:
    """The only line of stderr, an ``error:`` line; never a traceback."""
    assert "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith("error: ")
    return line


def test_no_command_exits_by_itself() -> None:
    """Only ``--version``-style early exits (code 0) may raise typer.Exit in the CLI."""
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in CLI_DIR.glob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.search(r"typer\.Exit\(\s*[^)\s]", line) or "sys.exit(" in line
    ]
    assert offenders == ["app.py: sys.exit(run())"]


def test_db_current_check_fails_through_the_mapper(cli, empty_db_url: URL) -> None:
    code, out, err = cli("db", "current", "--check", url=empty_db_url)
    assert code == 1 and out.strip() == "base (empty)"
    line = _one_error_line(err)
    assert "the database is at base (empty), not at head" in line
    assert "hotelbot db upgrade" in line
    code, out, err = cli("db", "current", "--check", "--json")
    assert code == 1
    assert json.loads(out)["at_head"] is False  # the JSON is printed in full first
    _one_error_line(err)


def test_server_status_and_url_fail_through_the_mapper(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("HOTELBOT_DATA_DIR", str(tmp_path / "pgdata"))
    code, out, err = cli("server", "status", "--json")
    assert code == 1 and json.loads(out)["running"] is False
    assert "the embedded server is not running" in _one_error_line(err)
    code, out, err = cli("server", "url")
    assert code == 1 and out == ""
    assert "hotelbot server start" in _one_error_line(err)


def test_rls_check_json_is_complete_and_the_verdict_is_one_line(cli, db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("GRANT TRUNCATE ON messages TO app_user")
    code, out, err = cli("rls-check", "--json", url=db_url)
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and doc["summary"]["fail"] == 1
    line = _one_error_line(err)
    assert "table-privileges failed on messages" in line


def test_db_check_of_a_drifted_database_json_is_complete(cli, db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("DROP INDEX ix_messages_hotel_id_created_at")
    code, out, err = cli("db", "check", "--json", url=db_url)
    assert code == 1
    assert json.loads(out)["database"]["differences"]
    assert "the database differs from the models" in _one_error_line(err)


def test_rls_check_with_several_failures_lists_each_then_one_error(cli, db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("GRANT TRUNCATE ON messages TO app_user")
        conn.execute("GRANT TRUNCATE ON guests TO app_user")
    code, out, err = cli("rls-check", "--json", url=db_url)
    assert code == 1 and json.loads(out)["summary"]["fail"] == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    (line,) = errors
    assert line.startswith("error: 2 checks failed: table-privileges on ")
    assert "on guests" in line and "on messages" in line
    listed = [line for line in err.splitlines() if line.startswith("table-privileges failed on")]
    assert len(listed) == 2 and all("(fix: " in line for line in listed)
