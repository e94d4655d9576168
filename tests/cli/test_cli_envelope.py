"""Every ``--json`` document carries the one envelope: ``schema_version`` and ``tool``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy.engine import URL

from hotelbot_cli import envelope, migrations
from hotelbot_cli.cli.app import app
from hotelbot_cli.errors import UsageError
from tests.performance.conftest import make_dataset

PACKAGE = Path(__file__).parents[2] / "hotelbot_cli"
HEAD = migrations.heads()[0]
FAST = ["--iterations", "20", "--no-reference", "--no-isolation", "--no-explain"]
SEED = ["--hotels", "2", "--guests-per-hotel", "2", "--dry-run"]

#: (arguments, the tool the document names, its exit code)
COMMANDS = [
    (["db", "current", "--json"], "db current", 0),
    (["db", "heads", "--json"], "db heads", 0),
    (["db", "history", "--json"], "db history", 0),
    (["db", "check", "--json"], "db check", 0),
    (["db", "upgrade", "--json"], "db upgrade", 0),
    (["db", "stamp", "head", "--json"], "db stamp", 0),
    (["db", "downgrade", HEAD, "--json"], "db downgrade", 0),
    (["db", "stats", "--json"], "db stats", 0),
    (["db", "lint", "001", "--json"], "db lint", 0),
    (["server", "status", "--json"], "server status", 1),
    (["seed", *SEED, "--json"], "seed", 0),
    (["rls-check", "--no-probes", "--json"], "rls-check", 0),
    (["rls-check", "--list-checks", "--json"], "rls-check --list-checks", 0),
    (["bench", *FAST, "--json"], "bench", 0),
]
#: Needs a Citus cluster: its envelope is checked in tests/citus and by its schema below.
ELSEWHERE = {"db distribute"}


def _json_commands(command: Any, path: str = "") -> set[str]:
    """Every command path whose (click) command takes --json; typer may vendor click."""
    if hasattr(command, "commands"):  # a group
        return {
            found
            for name, sub in command.commands.items()
            for found in _json_commands(sub, f"{path} {name}".strip())
        }
    return {path} if any("--json" in p.opts for p in command.params) else set()


def test_every_json_command_is_exercised_here() -> None:
    covered = {tool.removesuffix(" --list-checks") for _, tool, _ in COMMANDS} | ELSEWHERE
    assert _json_commands(typer.main.get_command(app)) == covered


@pytest.mark.parametrize(("args", "tool", "exit_code"), COMMANDS, ids=[t for _, t, _ in COMMANDS])
def test_json_output_carries_the_envelope(
    cli, db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args, tool, exit_code
) -> None:
    monkeypatch.setenv("HOTELBOT_DATA_DIR", str(tmp_path / "pgdata"))  # server status: none
    monkeypatch.chdir(PACKAGE.parent)  # db lint reads pyproject.toml's ignores
    if tool == "bench":
        make_dataset(db_url, hotels=2, guests=20, messages=3)
    code, out, err = cli(*args, url=db_url)
    assert code == exit_code, err
    doc = json.loads(out)
    assert list(doc)[:2] == ["schema_version", "tool"]
    assert doc["tool"] == f"hotelbot {tool}" and type(doc["schema_version"]) is int
    assert envelope.is_enveloped(doc)


def test_every_shipped_schema_requires_the_envelope() -> None:
    schemas = sorted(PACKAGE.rglob("*schema*.json"))
    assert len(schemas) >= 10
    for path in schemas:
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["type"] == "object", path
        assert {"schema_version", "tool"} <= set(schema["required"]), path
        assert {"schema_version", "tool"} <= set(schema["properties"]), path


def test_wrap_and_read() -> None:
    doc = envelope.wrap("db heads", {"heads": ["012"]})
    assert doc == {"schema_version": 1, "tool": "hotelbot db heads", "heads": ["012"]}
    assert envelope.read(doc, "db heads", 1) == 1
    with pytest.raises(UsageError, match="not a hotelbot db current document"):
        envelope.read(doc, "db current", 1)
    with pytest.raises(UsageError, match="newer"):
        envelope.read({**doc, "schema_version": 2}, "db heads", 1)
    with pytest.raises(ValueError, match="schema_version"):
        envelope.wrap("db stats", {"schema_version": 2}, 1)
    legacy = {"format": "hotelbot.bench", "version": 1}
    assert envelope.read({**legacy, "x": 1}, "bench", 2, legacy=legacy) == 1
