"""``hotelbot rls-check`` end to end: exit codes, table, --json, --junit-xml, ignores, self-test."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import psycopg
import pytest
from sqlalchemy.engine import URL

from hotelbot_cli.rls.report import SCHEMA_PATH
from hotelbot_cli.settings import libpq_url


def _sql(url: URL, *statements: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def test_upgrade_then_rls_check_passes(cli, empty_db_url: URL) -> None:
    code, _, _ = cli("db", "upgrade", url=empty_db_url)
    assert code == 0
    code, out, err = cli("rls-check", url=empty_db_url)
    assert code == 0, err
    # a passing run is a short summary; -v lists every check
    assert "PASS" not in out and "FAIL" not in out
    assert "0 failed" in out and len(out.splitlines()) < 15
    code, verbose, _ = cli("rls-check", "-v", url=empty_db_url)
    assert code == 0 and verbose.count("PASS ") > 50


def test_disabled_rls_exits_1_naming_table_and_fix(cli, db_url: URL) -> None:
    _sql(db_url, "ALTER TABLE guests DISABLE ROW LEVEL SECURITY")
    code, out, err = cli("rls-check", "--failures-only", url=db_url)
    assert code == 1
    assert "rls-enabled failed on guests" in err
    assert "ALTER TABLE guests ENABLE ROW LEVEL SECURITY" in err
    assert "FAIL" in out and "PASS" not in out


def test_json_output_validates(cli, db_url: URL, tmp_path: Path) -> None:
    _sql(db_url, "GRANT TRUNCATE ON messages TO app_user")
    junit = tmp_path / "rls.xml"
    code, out, _ = cli("rls-check", "--json", "--junit-xml", str(junit), url=db_url)
    assert code == 1
    document = json.loads(out)
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    failed = [(c["id"], c["table"]) for c in document["checks"] if c["status"] == "fail"]
    assert failed == [("table-privileges", "messages")]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_ignore_on_the_command_line_and_in_pyproject(
    cli, db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sql(db_url, "GRANT TRUNCATE ON messages TO app_user")
    code, out, _ = cli(
        "rls-check", "--failures-only", "--ignore", "table-privileges:messages=purge", url=db_url
    )
    assert code == 0 and "ignored" in out and "1 ignored" in out
    code, out, _ = cli("rls-check", "--json", "--ignore", "table-privileges=nightly", url=db_url)
    ignored = [c for c in json.loads(out)["checks"] if c["status"] == "ignored"]
    assert [(c["table"], c["reason"]) for c in ignored] == [("messages", "nightly")]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.hotelbot.rls-check]\nignore = [{id = "table-privileges", reason = "purge"}]\n'
    )
    code, out, _ = cli("rls-check", "--json", url=db_url)
    assert code == 0
    assert json.loads(out)["summary"]["ignored"] == 1


def test_bad_ignore_is_a_usage_error(cli, db_url: URL) -> None:
    code, _, err = cli("rls-check", "--ignore", ":guests", url=db_url)
    assert code == 2 and "--ignore" in err


def test_self_test(cli, db_url: URL) -> None:
    code, out, err = cli("rls-check", "--self-test", url=db_url)
    assert code == 0, err
    assert "0 failed" in out and "FAIL" not in out


def test_self_test_on_an_unmigrated_database_says_upgrade(cli, empty_db_url: URL) -> None:
    code, _, err = cli("rls-check", "--self-test", url=empty_db_url)
    assert code == 1 and "hotelbot db upgrade" in err
    assert "misses a leak" not in err


def test_ids_and_objects_are_never_cut_at_80_columns(
    cli, db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _sql(
        db_url,
        "CREATE TABLE a_rather_long_table_name_for_guest_history (guest_id uuid, note text)",
        "GRANT SELECT ON a_rather_long_table_name_for_guest_history TO app_user",
    )
    code, out, _ = cli("rls-check", url=db_url)
    assert code == 1
    assert "FAIL unbound-relation a_rather_long_table_name_for_guest_history" in out


def test_list_checks_and_unique_junit_names(cli, db_url: URL, tmp_path: Path) -> None:
    from hotelbot_cli.rls.registry import CHECKS

    code, out, _ = cli("rls-check", "--list-checks", "--json")
    assert code == 0 and [c["id"] for c in json.loads(out)["checks"]] == [c.id for c in CHECKS]
    code, out, _ = cli("rls-check", "--list-checks")
    assert code == 0 and "probe-canary (probe)" in out
    junit = tmp_path / "rls.xml"
    code, _, _ = cli("rls-check", "--junit-xml", str(junit), url=db_url)
    assert code == 0
    cases = ET.parse(junit).getroot().iter("testcase")
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert len(names) == len(set(names))
    assert all(float(c.get("time") or "x") >= 0 for c in ET.parse(junit).getroot().iter("testcase"))


def test_no_probes(cli, db_url: URL) -> None:
    code, out, _ = cli("rls-check", "--no-probes", "--json", url=db_url)
    assert code == 0
    assert not [c for c in json.loads(out)["checks"] if c["category"] == "probe"]


def test_cannot_connect_exits_3(cli) -> None:
    code, _, err = cli("rls-check", url="postgresql://nobody@/nowhere?host=/nonexistent-socket-dir")
    assert code == 3 and "cannot connect" in err


def test_not_at_head_exits_1(cli, empty_db_url: URL) -> None:
    code, _, err = cli("rls-check", url=empty_db_url)
    assert code == 1 and "hotelbot db upgrade" in err


def test_help_lists_the_options(cli) -> None:
    code, out, _ = cli("rls-check", "--help")
    assert code == 0
    for option in ("--ignore", "--json", "--junit-xml", "--self-test", "--app-role"):
        assert option in out


def test_db_check_reports_no_drift_with_rls(cli, db_url: URL) -> None:
    from hotelbot_cli import migrations

    code, out, err = cli("db", "check", url=db_url)
    assert code == 0, err
    assert f"head {migrations.heads()[0]}" in out
