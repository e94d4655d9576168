"""The bench's tenant side as the bot runs: its own login, a member of app_user."""

from __future__ import annotations

import psycopg
import pytest

from hotelbot_cli.bench import login as bench_login
from hotelbot_cli.bench.options import BenchOptions
from hotelbot_cli.bench.runner import run_bench
from hotelbot_cli.db.tenant import signing_key, tenant_statements
from hotelbot_cli.errors import UsageError
from hotelbot_cli.settings import libpq_url
from tests.load.conftest import make_dataset


def _options(**kwargs):
    base = {
        "duration": None,
        "iterations": 200,
        "reference": False,
        "explain": False,
        "isolation_iterations": 5,
        "warmup": 1,
    }
    return BenchOptions(**{**base, **kwargs})


def _bench_roles(url) -> list[str]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'hotelbot_bench_%'"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def seeded(db_url):
    make_dataset(db_url, hotels=2, guests=30, messages=3)
    return db_url


def test_throwaway_login_runs_every_operation_and_is_dropped(seeded, monkeypatch) -> None:
    monkeypatch.delenv(bench_login.APP_URL_ENV, raising=False)
    report = run_bench(seeded, _options())
    assert report.settings["tenant_login"] == "throwaway login role"
    assert report.total_ops == 200
    assert all(o.errors == 0 for o in report.operations), [
        o.error_sample for o in report.operations
    ]
    assert {r.name for r in report.isolation} == {o.name for o in report.operations}
    assert _bench_roles(seeded) == []


def test_login_sees_only_its_tenant_without_a_role_statement(seeded) -> None:
    with (
        psycopg.connect(libpq_url(seeded), autocommit=True) as admin,
        bench_login.bot_login(admin, seeded, "app_user", None) as login,
        psycopg.connect(libpq_url(login.url), autocommit=True) as bot,
    ):
        hid = admin.execute("SELECT id FROM hotels LIMIT 1").fetchone()[0]
        assert bot.execute("SELECT count(*) FROM guests").fetchone()[0] == 0
        with bot.transaction():
            for statement in tenant_statements(hid, key=signing_key(admin)):  # no role
                bot.execute(statement)
            seen = bot.execute("SELECT DISTINCT hotel_id FROM guests").fetchall()
        assert seen == [(hid,)]
        user = bot.execute("SELECT current_user").fetchone()[0]
        assert user.startswith("hotelbot_bench_")
    assert _bench_roles(seeded) == []


def test_given_login_is_used_and_checked(seeded, monkeypatch) -> None:
    with psycopg.connect(libpq_url(seeded), autocommit=True) as admin:
        admin.execute("CREATE ROLE bench_bot LOGIN")
        try:
            monkeypatch.setenv(bench_login.APP_URL_ENV, str(seeded.set(username="bench_bot")))
            with pytest.raises(UsageError, match="inherits app_user"):
                run_bench(seeded, _options(iterations=10))
            admin.execute("GRANT app_user TO bench_bot")
            report = run_bench(seeded, _options(iterations=50, isolation=False))
            assert report.settings["tenant_login"].startswith("login bench_bot")
            assert all(o.errors == 0 for o in report.operations)
        finally:
            admin.execute("DROP ROLE bench_bot")


def test_set_role_mode_and_unknown_mode(seeded) -> None:
    report = run_bench(seeded, _options(iterations=50, tenant_login="set-role"))
    assert report.settings["tenant_login"] == "set-role"
    assert all(o.errors == 0 for o in report.operations)
    with pytest.raises(UsageError, match="tenant-login"):
        _options(tenant_login="nope").validate()


def test_owner_without_createrole_is_told_what_to_set(seeded) -> None:
    with psycopg.connect(libpq_url(seeded), autocommit=True) as admin:
        admin.execute("CREATE ROLE bench_plain LOGIN BYPASSRLS")
        try:
            plain = seeded.set(username="bench_plain")
            with (
                psycopg.connect(libpq_url(plain), autocommit=True) as conn,
                pytest.raises(UsageError, match="throwaway login"),
                bench_login.bot_login(conn, plain, "app_user", None),
            ):
                pass  # pragma: no cover - never reached
        finally:
            admin.execute("DROP ROLE bench_plain")
    assert _bench_roles(seeded) == []
