"""Every statement becomes one masked JSON line; slow ones and connection errors stand out."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import URL

from hotelbot_cli.db.engine import make_async_engine, make_engine, session_factory
from hotelbot_cli.db.tenant import tenant_session
from hotelbot_cli.errors import ConfigError, UsageError
from hotelbot_cli.models import Guest, Hotel
from hotelbot_cli.observability import bind_correlation_id, log_output, sql_log
from hotelbot_cli.observability.log_config import LogConfig

PHONE, HOTEL_PHONE, TOKEN, CONTENT = (
    "+79161234567",
    "+74951112233",
    "gat-SECRET-777",
    "room 12 pin 4321",
)
FIELDS = {
    "timestamp",
    "level",
    "service",
    "component",
    "operation",
    "table",
    "query_time_ms",
    "rows_affected",
    "correlation_id",
    "sql",
    "params",
}


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "db.log"
    yield path
    log_output.unconfigure()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_statements_logged_with_every_field_and_no_secret(db_url: URL, log_file: Path) -> None:
    log_output.configure(log_sql=True, log_file=log_file, service="svc-test")
    engine = make_engine(db_url)
    hid = uuid.uuid4()
    with bind_correlation_id("req-9"), session_factory(engine)() as s, s.begin():
        s.add(Hotel(id=hid, name="H", whatsapp_number=HOTEL_PHONE, green_api_token=TOKEN))
        s.flush()
        s.add(Guest(hotel_id=hid, phone=PHONE, name="G"))
        s.execute(
            text(f"SELECT '{CONTENT}' AS c FROM hotels WHERE green_api_token = :t"), {"t": TOKEN}
        )
    with tenant_session(hid, session_factory(engine)) as s:
        s.execute(text("SELECT count(*) FROM guests"))
    with (
        pytest.raises(sa_exc.IntegrityError, match="duplicate"),
        session_factory(engine)() as s,
        s.begin(),
    ):
        s.execute(
            text("UPDATE hotels SET green_api_token = :tok WHERE whatsapp_number = :n"),
            {"tok": TOKEN, "n": HOTEL_PHONE},
        )
        s.add(Hotel(name="H2", whatsapp_number=HOTEL_PHONE, green_api_token=TOKEN))
    engine.dispose()
    raw = log_file.read_text()
    for secret in (PHONE, HOTEL_PHONE, TOKEN, CONTENT):
        assert secret not in raw
    lines = _lines(log_file)
    inserts = [x for x in lines if x["operation"] == "INSERT" and x["table"] == "hotels"]
    assert inserts and set(inserts[0]) >= FIELDS
    first = inserts[0]
    assert first["level"] == "DEBUG" and first["service"] == "svc-test"
    assert first["component"] == "database" and first["correlation_id"] == "req-9"
    assert first["timestamp"].endswith("Z") and first["rows_affected"] == 1
    assert "+7******2233" in json.dumps(first["params"])
    tenant_lines = [x for x in lines if x.get("table") == "guests" and x["operation"] == "SELECT"]
    assert tenant_lines[0]["hotel_id"] == str(hid)
    failed = [x for x in lines if x["message"] == "statement failed"]
    assert failed and failed[0]["level"] == "WARNING" and "***" in failed[0]["error"]


def test_slow_statement_is_a_warning_with_a_plan_hint(db_url: URL, log_file: Path) -> None:
    log_output.configure(log_sql=False, log_file=log_file, slow_ms=50)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.execute(text("SELECT pg_sleep(0.06), (SELECT count(*) FROM hotels)"))
    engine.dispose()
    (line,) = _lines(log_file)
    assert line["level"] == "WARNING" and line["query_time_ms"] >= 50
    assert line["table"] == "hotels" and "EXPLAIN" in line["plan_hint"]


def test_connection_error_logged_with_host_not_password(db_url: URL, log_file: Path) -> None:
    log_output.configure(log_file=log_file)
    engine = make_engine(db_url.set(password="pw-s3cret", database="hb_missing_db"))
    with pytest.raises(sa_exc.OperationalError, match="hb_missing_db"):
        engine.connect()
    raw = log_file.read_text()
    assert "pw-s3cret" not in raw
    (line,) = _lines(log_file)
    assert line["level"] == "ERROR" and line["operation"] == "CONNECT"
    assert line["host"] and line["database"] == "hb_missing_db" and "not retried" in line["retry"]


def test_async_engine_text_format_and_bulk_operations(
    db_url: URL, log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_output.configure(log_sql=True, log_format="text")
    engine = make_async_engine(db_url)

    async def work() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT :p AS p"), {"p": PHONE})
        await engine.dispose()

    with bind_correlation_id("req-async"):
        asyncio.run(work())
        sql_log.log_operation(
            "COPY", "messages", 1000, 12.5, sql="COPY messages FROM STDIN", green_api_token=TOKEN
        )
    err = capsys.readouterr().err
    assert "[req-async]" in err and "+7******4567" in err and PHONE not in err
    assert "COPY messages 12.50ms rows=1000" in err and TOKEN not in err
    log_output.configure(log_sql=False, log_file=log_file)
    sql_log.log_operation("COPY", "messages", 1, 1.0)  # DEBUG while not logging statements
    sql_log.log_operation("COPY", "messages", 1, 1.0, level=logging.INFO)  # below WARNING
    sql_log.log_operation("COPY", "messages", 5, 1.0, level=logging.WARNING)
    assert [x["rows_affected"] for x in _lines(log_file)] == [5]
    logging.getLogger(sql_log.LOGGER_NAME).warning("plain %s", PHONE)
    assert _lines(log_file)[-1]["message"] == "plain +7******4567"


def test_environment_config(monkeypatch: pytest.MonkeyPatch, log_file: Path) -> None:
    cfg = LogConfig.from_env(
        {"HOTELBOT_ENV": "development", "HOTELBOT_SLOW_QUERY_MS": "5", "HOTELBOT_SERVICE_NAME": "x"}
    )
    assert cfg.log_all and cfg.slow_ms == 5 and cfg.service == "x"
    with pytest.raises(ConfigError, match="not a number"):
        LogConfig.from_env({"HOTELBOT_SLOW_QUERY_MS": "fast"})
    with pytest.raises(UsageError, match="not known"):
        log_output.configure(log_format="xml")


def test_cli_development_run_writes_json_lines(
    cli, db_url: URL, log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTELBOT_ENV", "development")
    code, _, _ = cli(
        "--log-file", str(log_file), "--correlation-id", "ci-42", "db", "current", url=db_url
    )
    assert code == 0
    lines = _lines(log_file)
    assert lines and all(x["correlation_id"] == "ci-42" for x in lines)
    assert any(x["operation"] == "SELECT" for x in lines) and set(lines[0]) >= FIELDS
