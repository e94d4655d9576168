"""`hotelbot db lint`: squawk plus our own lock checks, on the project's revisions and bad ones."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from online_support import populate_005
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migration_authoring, migration_lint, migrations
from hotelbot_cli.errors import ConfigError, UsageError
from hotelbot_cli.migration_lint import LintConfig, own_checks, split_statements
from hotelbot_cli.migrations import scripts as migration_scripts
from hotelbot_cli.settings import libpq_url

BLOCKING_006 = Path(__file__).parent / "data" / "006_blocking.py"


@pytest.fixture
def blocking_006(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scripts with revision 006 as it was before the online rework."""
    copy = tmp_path / "alembic"
    shutil.copytree(
        migrations.script_location(), copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(BLOCKING_006, copy / "versions" / "006_tenant_integrity.py")
    monkeypatch.setattr(migration_scripts, "script_location", lambda: copy)
    return copy


def test_the_projects_revisions_are_clean_and_every_ignore_has_a_reason() -> None:
    config = LintConfig.load(Path(__file__).parents[2] / "pyproject.toml")
    report = migration_lint.lint(config=config)
    assert report.ok, [(f.revision, f.rule, f.message) for f in report.findings]
    assert report.revisions == tuple(sorted(r.revision for r in migrations.history()))
    assert all(f.ignored for f in report.ignored)
    assert config.exclude and all(config.exclude.values())


def test_the_blocking_006_reports_its_blocking_steps(
    blocking_006: Path, create_database: Callable[..., URL]
) -> None:
    config = LintConfig.load(Path(__file__).parents[2] / "pyproject.toml")
    url = create_database()
    engine = create_engine(url, poolclass=NullPool)
    migrations.upgrade(engine, "005")
    populate_005(libpq_url(url), 20_000, hotels=2)
    report = migration_lint.lint(["006"], engine, config)
    engine.dispose()
    rules = {f.rule for f in report.findings}
    assert {
        "constraint-missing-not-valid",
        "require-concurrent-index-creation",
        "disallowed-unique-constraint",
        "require-lock-timeout",
        "unbatched-update",
        "missing-lock-timeout",
    } <= rules
    update = next(f for f in report.findings if f.rule == "unbatched-update")
    assert update.table == "messages" and update.source == "hotelbot"
    assert "[messages, " in update.message and "MB, ~20,000 rows" in update.message


def test_cli_lint_text_json_and_exit_codes(
    blocking_006: Path, cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parents[2])  # the ignores in pyproject.toml
    code, out, err = cli("db", "lint", "006")
    assert code == 1
    assert "006 unbatched-update (hotelbot line" in out and "UPDATE messages m SET" in out
    assert "finding(s) in 1 revision(s)" in err
    code, out, _err = cli("db", "lint", "--json", "001", "006")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["revisions"] == ["001", "006"]
    assert {f["revision"] for f in data["findings"]} == {"006"}
    code, _out, err = cli("db", "lint", "999")
    assert code == 2 and err.startswith("error: unknown revision 999")


def test_cli_lint_of_the_projects_revisions_passes(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parents[2])
    code, out, err = cli("db", "lint")
    assert code == 0 and out == "" and "0 finding(s)" in err


def test_own_checks_see_rewrites_locks_dml_in_do_blocks_and_dollar_tags() -> None:
    sql = "\n".join(
        [
            "BEGIN;",
            "ALTER TABLE guests ALTER COLUMN name TYPE text;",
            "SET LOCAL lock_timeout = '2s';",
            "ALTER TABLE guests ADD COLUMN token uuid DEFAULT gen_random_uuid();",
            "DO $body$ BEGIN UPDATE hotels SET name = 'x'; END $body$;",
            "CREATE TABLE rooms (id int);",
            "UPDATE rooms SET id = 1;",
            "COMMIT;",
            "BEGIN;",
            "CREATE INDEX ix ON guests (name);",
            "COMMIT;",
        ]
    )
    assert [s.sql.split()[0] for s in split_statements(sql)] == [
        "BEGIN",
        "ALTER",
        "SET",
        "ALTER",
        "DO",
        "CREATE",
        "UPDATE",
        "COMMIT",
        "BEGIN",
        "CREATE",
        "COMMIT",
    ]
    found = [(f.rule, f.table, f.line) for f in own_checks("900", sql)]
    assert found == [
        ("table-rewrite", "guests", 2),
        ("missing-lock-timeout", "guests", 2),
        ("table-rewrite", "guests", 4),
        ("unbatched-update", "hotels", 5),
        ("missing-lock-timeout", "guests", 10),
    ]


def test_a_revision_whose_downgrade_does_nothing_is_irreversible(tmp_path: Path) -> None:
    findings = migration_lint.irreversible(
        "900", "BEGIN;\n\nUPDATE alembic_version SET version_num='899';\n\nCOMMIT;\n"
    )
    assert [f.rule for f in findings] == ["irreversible"]
    assert migration_lint.irreversible("900", "BEGIN;\nDROP TABLE rooms;\nCOMMIT;\n") == []
    empty = "BEGIN;\nSET LOCAL lock_timeout = '2000ms';\nCOMMIT;\n"
    assert migration_lint.irreversible("900", empty, empty) == []  # a new, empty revision


def test_lint_config_needs_reasons(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.hotelbot.lint]\nexclude = [{ rule = "x", reason = " " }]\n')
    with pytest.raises(ConfigError, match="needs a reason"):
        LintConfig.load(path)
    path.write_text('[tool.hotelbot.lint]\nignore = [{ revision = "006" }]\n')
    with pytest.raises(ConfigError, match="need rule and reason"):
        LintConfig.load(path)
    assert LintConfig.load(tmp_path / "missing.toml") == LintConfig()


def test_missing_squawk_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(migration_lint.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(migration_lint.shutil, "which", lambda _name: None)
    with pytest.raises(ConfigError, match="pip install squawk-cli"):
        migration_lint.squawk_binary()
    with pytest.raises(UsageError):
        migration_lint.lint(["nope"], config=LintConfig())


def test_a_new_revision_from_the_template_is_lint_clean_and_points_at_the_patterns(
    blocking_006: Path,
) -> None:
    path = migration_authoring.revision(None, "add room numbers")
    body = path.read_text()
    assert "steps.backfill(" in body and "steps.create_index(" in body
    assert f"hotelbot db lint {path.name[:3]}" in body
    report = migration_lint.lint([path.name[:3]], config=LintConfig())
    assert report.ok, report.findings
