"""sqlite-utils' habit: every command is in the README and its ``--help`` shows examples that
really parse against that command's options (so an example cannot drift from the code)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import typer.main

from hotelbot_cli.cli.app import app
from hotelbot_cli.cli.examples import EXAMPLES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _leaves(command, path=()):
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield " ".join(path), command
        return
    for name, sub in subcommands.items():
        yield from _leaves(sub, (*path, name))


LEAVES = dict(_leaves(typer.main.get_command(app)))


def test_every_command_has_examples_and_no_example_names_a_missing_command() -> None:
    assert set(EXAMPLES) == set(LEAVES)


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_every_command_is_in_the_readme(path: str) -> None:
    assert f"hotelbot {path}" in README


def _arguments(example: str, path: str) -> list[str]:
    """The words after ``hotelbot <path>`` (before any redirection) of one example."""
    if "$(" in example:  # psql "$(hotelbot server url)"
        example = example.split("$(", 1)[1].split(")", 1)[0]
    words = shlex.split(example)
    start = words.index("hotelbot") + 1 + len(path.split())
    assert words[start - len(path.split()) : start] == path.split(), example
    rest = words[start:]
    return rest[: rest.index(">")] if ">" in rest else rest


@pytest.mark.parametrize(
    ("path", "example"), [(p, e) for p, examples in sorted(EXAMPLES.items()) for e in examples]
)
def test_every_example_parses_against_its_command(path: str, example: str) -> None:
    command = LEAVES[path]
    context = command.make_context(f"hotelbot {path}", _arguments(example, path))
    assert context.command is command
    help_text = command.get_help(context)
    assert "Examples:" in help_text and example in help_text
