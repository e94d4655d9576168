"""--log-sql covers raw psycopg connections too: rls-check's audit, bench's workload, seed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hotelbot_cli.observability import log_output
from tests.performance.conftest import make_dataset


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    log_output.unconfigure()


def _statements(err: str) -> list[dict]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") in {"query", "slow query"}]


def test_rls_check_logs_every_audit_statement(cli, db_url) -> None:
    code, _, err = cli("--log-sql", "--log-format", "json", "rls-check", "--no-probes", url=db_url)
    assert code in (0, 1), err
    logged = _statements(err)
    assert len(logged) > 20, len(logged)  # before: 3 (only the engine's own statements)
    assert any("pg_policy" in (line["sql"] or "") for line in logged)


def test_bench_logs_the_workload_once(cli, db_url) -> None:
    make_dataset(db_url, hotels=2, guests=20, messages=3)
    code, _, err = cli(
        "--log-sql",
        "--log-format",
        "json",
        "bench",
        "--iterations",
        "40",
        "--no-reference",
        "--no-isolation",
        "--no-explain",
        url=db_url,
    )
    assert code == 0, err
    logged = _statements(err)
    assert len(logged) >= 40, len(logged)
    tables = {line["table"] for line in logged}
    assert {"messages", "guests"} <= tables, tables


def test_a_statement_sqlalchemy_runs_is_logged_once(engine, capsys) -> None:
    from sqlalchemy import text

    from hotelbot_cli.db.engine import make_engine
    from hotelbot_cli.observability import raw_connection

    log_output.configure(log_sql=True, log_format="json")
    eng = make_engine(engine.url)
    raw = raw_connection(eng)  # instruments the pooled driver connection
    raw.driver_connection.execute("SELECT 'raw-marker'")
    raw.close()
    with eng.connect() as conn:  # likely the same pooled connection, now through SQLAlchemy
        conn.execute(text("SELECT 'engine-marker'"))
    eng.dispose()
    logged = _statements(capsys.readouterr().err)
    sqls = [line["sql"] for line in logged]
    assert sqls.count("SELECT '?'") == 2, sqls  # each once: the raw one and the engine's
