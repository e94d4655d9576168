"""rls-check as a library: report shape (JSON Schema, JUnit), ignores, self-test, PostgreSQL 15."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migrations, rls
from hotelbot_cli.errors import NotAtHead, UsageError
from hotelbot_cli.rls.report import SCHEMA_PATH, CheckResult, Ignore, RlsReport, load_ignores
from hotelbot_cli.settings import libpq_url

PG15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture
def checked(db_url: URL) -> RlsReport:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("ALTER TABLE guests DISABLE ROW LEVEL SECURITY")
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    return report


def test_json_validates_against_the_shipped_schema(checked: RlsReport) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(checked.to_json())
    jsonschema.validate(document, schema)
    assert document["ok"] is False and document["summary"]["fail"] >= 1
    # the schema is strict: an unknown field or status is rejected
    document["checks"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_junit_xml_names_failures(checked: RlsReport) -> None:
    root = ET.fromstring(checked.to_junit_xml())
    suite = root.find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "0")) == checked.count("fail")
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert "rls-enabled[guests]" in failed


def test_nothing_survives_a_check(db_url: URL) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    assert rls.check(engine).ok
    with psycopg.connect(libpq_url(db_url)) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("hotels", "guests", "messages")
        ]
        forced = conn.execute(
            "SELECT bool_and(relforcerowsecurity) FROM pg_class WHERE relkind = 'r' AND relname IN"
            " ('hotels', 'guests', 'triggers', 'conversations', 'messages', 'staff_notifications')"
        ).fetchone()[0]
    assert counts == [0, 0, 0] and forced is True
    engine.dispose()


def test_ignores_turn_failures_into_ignored(db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("GRANT TRUNCATE ON guests TO app_user")
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine, ignores=[Ignore("table-privileges", "guests", "vendor job")])
    assert report.ok
    ignored = [r for r in report.results if r.status == "ignored"]
    assert [(r.id, r.table, r.reason) for r in ignored] == [
        ("table-privileges", "guests", "vendor job")
    ]
    other_table = rls.check(engine, ignores=[Ignore("table-privileges", "messages")])
    assert not other_table.ok
    engine.dispose()


def test_ignore_parsing_and_pyproject(tmp_path: Path) -> None:
    assert Ignore.parse("tenant-index") == Ignore("tenant-index")
    assert Ignore.parse("tenant-index:audit = tiny table") == Ignore(
        "tenant-index", "audit", "tiny table"
    )
    with pytest.raises(UsageError):
        Ignore.parse(":guests")
    assert load_ignores(tmp_path / "missing.toml") == []
    good = tmp_path / "pyproject.toml"
    good.write_text(
        "[tool.hotelbot.rls-check]\n"
        'ignore = [{id = "tenant-index", table = "audit", reason = "tiny"}]\n'
    )
    assert load_ignores(good) == [Ignore("tenant-index", "audit", "tiny")]
    good.write_text('[tool.hotelbot.rls-check]\nignore = [{id = "tenant-index"}]\n')
    with pytest.raises(UsageError, match="reason"):
        load_ignores(good)
    good.write_text("not = [toml")
    with pytest.raises(UsageError, match="TOML"):
        load_ignores(good)


def test_an_ignore_must_name_a_check_that_exists(tmp_path: Path) -> None:
    """A misspelt id would ignore nothing: refused, with the closest id."""
    with pytest.raises(UsageError, match="names no check 'temp-table'") as refused:
        Ignore.parse("temp-table:guests=known")
    assert refused.value.hint == "did you mean temp-tables?"
    with pytest.raises(UsageError, match="names no check 'zzz'"):
        Ignore.parse("zzz")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.hotelbot.rls-check]\nignore = [{id = "tenant-indexes", reason = "tiny"}]\n'
    )
    with pytest.raises(UsageError, match="ignore names no check 'tenant-indexes'") as refused:
        load_ignores(pyproject)
    assert refused.value.hint == "did you mean tenant-index?"


def test_not_at_head_is_refused(empty_db_url: URL) -> None:
    engine = create_engine(empty_db_url, poolclass=NullPool)
    migrations.upgrade(engine, "006")
    with pytest.raises(NotAtHead, match="db upgrade"):
        rls.check(engine)
    engine.dispose()


def test_no_probes_runs_audit_only(db_url: URL) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine, probes=False)
    engine.dispose()
    assert report.ok and not [r for r in report.results if r.category == "probe"]


def test_self_test_catches_every_planted_leak_and_removes_it(db_url: URL) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.self_test(engine)
    engine.dispose()
    assert report.ok, report.failures()
    assert len(report.results) >= 10 and {r.category for r in report.results} == {"self-test"}
    with psycopg.connect(libpq_url(db_url)) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'hotelbot_rls_selftest_%'"
        ).fetchone()[0]
    assert left == 0


def test_self_test_reports_when_it_cannot_plant(
    owner_engine, server_url: URL, owner_role: str
) -> None:
    with psycopg.connect(
        libpq_url(server_url.set(database=owner_engine.url.database)), autocommit=True
    ) as c:
        c.execute(f"REVOKE CREATE ON DATABASE {owner_engine.url.database} FROM {owner_role}")
        c.execute(f"ALTER DATABASE {owner_engine.url.database} OWNER TO postgres")
    report = rls.self_test(owner_engine)
    assert not report.ok
    assert "cannot plant" in report.failures()[0].detail


def test_self_test_flags_a_leak_the_checker_misses(db_url: URL, monkeypatch) -> None:
    """If a check stopped catching its planted leak, the self-test goes red."""
    from hotelbot_cli.rls import selftest

    monkeypatch.setattr(selftest, "EXPECTED", (("x", "rls-enabled", "{s}.leak_open_policy"),))
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.self_test(engine)
    engine.dispose()
    assert not report.ok and "did NOT catch" in report.failures()[0].detail


def test_report_counts_and_results() -> None:
    report = RlsReport(
        "db",
        "app_user",
        "18",
        (
            CheckResult("a", "audit", None, "pass", "ok"),
            CheckResult("b", "lint", "t", "skip", "n/a"),
        ),
    )
    assert report.ok and report.count("skip") == 1
    root = ET.fromstring(report.to_junit_xml())
    assert root.find("testsuite/testcase/skipped") is not None


def _pg15_cluster(tmp: Path) -> tuple[Path, Path]:
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    shutil.chown(tmp, "postgres")
    shutil.chown(sock, "postgres")
    run = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run, str(PG15 / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(data), "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run,
            str(PG15 / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(tmp / "log"),
            "-o",
            f"-k {sock} -c listen_addresses='' -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return data, sock


@pytest.mark.skipif(
    not (PG15 / "pg_ctl").exists() or os.geteuid() != 0,
    reason="PostgreSQL 15 binaries (and root, for runuser) not available",
)
def test_postgresql_15_non_superuser_owner(cli) -> None:
    """On PG 15 a CREATEROLE owner creates app_user itself, migrates, and rls-check passes."""
    tmp = Path(tempfile.mkdtemp(prefix="hb-pg15-"))
    data, sock = _pg15_cluster(tmp)
    try:
        with psycopg.connect(f"host={sock} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE ROLE owner15 LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE")
            c.execute("CREATE DATABASE hotel15 OWNER owner15")
        url = f"postgresql+psycopg://owner15@/hotel15?host={sock}"
        engine = create_engine(url, poolclass=NullPool)
        migrations.upgrade(engine, "head")
        report = rls.check(engine)
        assert report.ok, report.failures()
        assert report.server_version.startswith("15")
        assert rls.self_test(engine).ok
        engine.dispose()
        code, out, _ = cli("rls-check", "--json", url=url)
        assert code == 0 and json.loads(out)["ok"] is True
        with psycopg.connect(f"host={sock} user=postgres dbname=hotel15", autocommit=True) as c:
            c.execute("ALTER TABLE guests DISABLE ROW LEVEL SECURITY")
        code, _, err = cli("rls-check", url=url)
        assert code == 1 and "rls-enabled failed on guests" in err
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG15 / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(tmp, ignore_errors=True)


ISOLATE = (
    "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
    "CREATE POLICY iso ON {t} TO app_user"
    " USING (hotel_id = (SELECT hotelbot_current_hotel_id()))"
    " WITH CHECK (hotel_id = (SELECT hotelbot_current_hotel_id()))",
    "CREATE INDEX ON {t} (hotel_id)",
)


def test_a_table_added_next_year_is_discovered_and_probed(db_url: URL) -> None:
    """A correctly isolated new table with many column kinds passes every check, probes included."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE audit_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " hotel_id uuid NOT NULL REFERENCES hotels (id), kind trigger_type NOT NULL,"
            " at timestamptz NOT NULL, ref uuid NOT NULL, flag boolean NOT NULL,"
            " data jsonb NOT NULL, score numeric NOT NULL, label varchar(20) NOT NULL,"
            " guest_phone varchar(20) NOT NULL, n int NOT NULL,"
            " twice int GENERATED ALWAYS AS (n * 2) STORED, note text)"
        )
        for statement in ISOLATE:
            conn.execute(statement.format(t="audit_events"))
        conn.execute("GRANT SELECT, INSERT, DELETE, UPDATE (label) ON audit_events TO app_user")
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert report.ok, report.failures()
    probed = {r.id for r in report.results if r.table == "audit_events" and r.category == "probe"}
    assert {"probe-read-own", "probe-read-other", "probe-insert-other", "probe-repoint"} <= probed


def test_tables_that_cannot_get_a_probe_row_are_reported(db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE places (id uuid PRIMARY KEY, hotel_id uuid NOT NULL, spot point NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE ratings (id uuid PRIMARY KEY, hotel_id uuid NOT NULL,"
            " stars int NOT NULL CHECK (stars > 5))"
        )
        for table in ("places", "ratings"):
            for statement in ISOLATE:
                conn.execute(statement.format(t=table))
            conn.execute(f"GRANT SELECT, INSERT, DELETE ON {table} TO app_user")
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    setup = {r.table: r.detail for r in report.failures() if r.id == "probe-setup"}
    assert "spot (point)" in setup["places"]
    assert "ratings" in setup and "check constraint" in setup["ratings"]


def test_owner_cannot_probe_a_table_it_does_not_own(
    owner_engine, server_url: URL, owner_role: str
) -> None:
    admin = libpq_url(server_url.set(database=owner_engine.url.database))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE TABLE foreign_owned (id uuid PRIMARY KEY, hotel_id uuid NOT NULL)")
        for statement in ISOLATE:
            conn.execute(statement.format(t="foreign_owned"))
        conn.execute("GRANT SELECT, INSERT, DELETE ON foreign_owned TO app_user")
    report = rls.check(owner_engine)
    failed = {(r.id, r.table): r.detail for r in report.failures()}
    assert "cannot insert probe rows" in failed[("probe-setup", "foreign_owned")]


def test_checker_that_cannot_become_the_app_role_says_so(owner_engine, server_url: URL) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        if (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'hb_rls_stranger'").fetchone()
            is None
        ):
            conn.execute("CREATE ROLE hb_rls_stranger NOLOGIN")
    admin = libpq_url(server_url.set(database=owner_engine.url.database))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("GRANT USAGE ON SCHEMA public TO hb_rls_stranger")
        conn.execute("GRANT SELECT ON guests TO hb_rls_stranger")
    report = rls.check(owner_engine, app_role="hb_rls_stranger")
    setup = [r for r in report.failures() if r.id == "probe-setup"]
    assert setup and "cannot act as hb_rls_stranger" in setup[0].detail
    assert "GRANT hb_rls_stranger" in (setup[0].fix or "")
