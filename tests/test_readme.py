"""The README's promises: its test command is what CI runs, every env var is documented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    return re.findall(r"```bash\n(python3 -m venv .+?)\n```", README)


def test_readme_has_exactly_two_fresh_machine_commands() -> None:
    main, tests = _commands()
    assert "hotelbot db upgrade" in main and "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci
