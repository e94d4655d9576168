"""Every numeric option refuses absurd values as a usage error: exit 2, one line."""

from __future__ import annotations

import pytest

from hotelbot_cli.cli.app import app

HUGE = "99999999999999999999"


def _numeric_options():
    import typer.main

    def walk(command, path):
        for sub_name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, sub_name])
        for param in command.params:
            kind = getattr(param.type, "name", "")
            if param.param_type_name == "option" and ("int" in kind or "float" in kind):
                yield [*path], param.opts[0], "float" in kind

    return list(walk(typer.main.get_command(app), []))


OPTIONS = _numeric_options()


def test_the_walk_finds_the_options() -> None:
    found = {(" ".join(path), opt) for path, opt, _ in OPTIONS}
    assert ("seed", "--hotels") in found and ("bench", "--duration") in found
    assert ("db stats", "--watch") in found


@pytest.mark.parametrize(
    ("path", "option", "is_float"), OPTIONS, ids=lambda v: v if isinstance(v, str) else None
)
def test_huge_and_not_finite_values_are_usage_errors(cli, path, option, is_float) -> None:
    values = [HUGE, "-" + HUGE] + (["nan", "inf"] if is_float else [])
    for value in values:
        code, _, err = cli(*path, f"{option}={value}")
        assert code == 2, (value, err)
        assert len(err.strip().splitlines()) == 1 and "Invalid value" in err, err
        assert "Traceback" not in err and "OverflowError" not in err
