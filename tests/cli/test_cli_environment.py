"""The environment: DEBUG never breaks stdout or a command, libpq's PG* rules for user URLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy.engine import URL

from hotelbot_cli.settings import Settings, debug_echo, normalize_url


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotelbot_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env(url: URL, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(DATABASE_URL=url.render_as_string(hide_password=False), **extra)
    return env


@pytest.mark.parametrize(
    ("value", "echo"),
    [
        ("1", True),
        ("true", True),
        ("ON", True),
        ("0", False),
        ("", False),
        ("*", False),
        ("express:*", False),
        ("maybe", False),
    ],
)
def test_debug_values(value: str, echo: bool) -> None:
    assert debug_echo({"DEBUG": value}) is echo
    assert Settings.from_env({"DEBUG": value}).echo is echo  # never a ConfigError


def test_debug_echo_goes_to_stderr_and_json_stays_clean(db_url: URL) -> None:
    result = _run("db", "stats", "--json", env=_env(db_url, DEBUG="1"))
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # nothing but the document on stdout
    assert "SELECT" in result.stderr  # the echo, on stderr


def test_debug_star_does_not_break_commands(db_url: URL) -> None:
    result = _run("db", "current", env=_env(db_url, DEBUG="*"))
    assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout


def test_pgdatabase_fills_a_url_without_database(db_url: URL) -> None:
    assert db_url.database
    bare = db_url.set(database=None)
    result = _run("db", "current", env=_env(bare, PGDATABASE=db_url.database))
    assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout


def test_libpq_default_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGDATABASE", "from_env")
    assert normalize_url("postgresql://u@h").database == "from_env"
    assert normalize_url("postgresql://u@h/explicit").database == "explicit"
    monkeypatch.delenv("PGDATABASE")
    monkeypatch.setenv("PGUSER", "pguser")
    assert normalize_url("postgresql://h").database == "pguser"
    assert normalize_url("postgresql://u@h").database == "u"
