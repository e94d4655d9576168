"""Every Python snippet of the README runs as printed, against a seeded test database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hotelbot_cli.settings import libpq_url

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_readme_python_snippet_runs(snippet: str, db_url: URL, cli, tmp_path: Path) -> None:
    """Seeded as the README says; the snippet then runs in a fresh interpreter."""
    if "migration_steps" in snippet:
        pytest.skip("a revision body: it runs inside Alembic (tests/unit/test_migration_steps.py)")
    url = libpq_url(db_url)
    code, _out, err = cli("seed", "--hotels", "3", "--guests-per-hotel", "10", url=url)
    assert code == 0, err
    env = {**os.environ, "DATABASE_URL": url, "HOTELBOT_DATA_DIR": str(tmp_path / "unused")}
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    if "print(" in snippet:
        assert done.stdout.strip() not in ("", "[]"), "the snippet found nothing to show"
