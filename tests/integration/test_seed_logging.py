"""The seeder's raw-driver statements (COPY, the generating SELECT, DDL) are logged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from hotelbot_cli.db import make_engine
from hotelbot_cli.observability import log_output
from hotelbot_cli.observability.cursor import LoggingCursor
from hotelbot_cli.seed import SeedOptions, seed
from hotelbot_cli.settings import libpq_url

SPEC_FIELDS = {
    "timestamp", "level", "service", "component", "operation", "table", "query_time_ms",
    "rows_affected", "correlation_id", "sql", "params",
}  # fmt: skip


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "db.log"
    log_output.unconfigure()


def test_seed_logs_its_copies_and_inserts_without_secrets(db_url: URL, log_file: Path) -> None:
    log_output.configure(log_sql=True, log_file=log_file)
    engine = make_engine(db_url)
    try:
        seed(engine, SeedOptions(hotels=2, guests_per_hotel=5, messages_per_conversation=4))
    finally:
        engine.dispose()
    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(line.keys() >= SPEC_FIELDS for line in lines)
    copies = {line["table"]: line["rows_affected"] for line in lines if line["operation"] == "COPY"}
    assert copies["hotels"] == 2 and copies["guests"] == 10
    # messages: built by the generating connection's SELECT, written by a COPY
    assert copies["messages"] == 2 * 5 * 2 * 4
    assert any(line["operation"] == "SELECT" and line["rows_affected"] for line in lines)
    with psycopg.connect(libpq_url(db_url)) as conn:
        secrets = [
            row[0]
            for query in (
                "SELECT green_api_token FROM hotels",
                "SELECT phone FROM guests",
                "SELECT whatsapp_number FROM hotels",
                "SELECT content FROM messages",
            )
            for row in conn.execute(query)
        ]
    assert secrets
    leaked = [value for value in secrets if value in text]
    assert not leaked


def test_logging_cursor_warns_about_slow_statements(db_url: URL, log_file: Path) -> None:
    log_output.configure(log_sql=False, log_file=log_file, slow_ms=50)
    with psycopg.connect(libpq_url(db_url)) as conn, LoggingCursor(conn) as cur:
        cur.execute("SELECT pg_sleep(0.06), %s::text AS phone", ("+79161234567",))
        cur.execute("SELECT 1")  # fast and not logging every statement: nothing
    [line] = [json.loads(row) for row in log_file.read_text().splitlines()]
    assert line["level"] == "WARNING" and line["plan_hint"]
    assert "+79161234567" not in json.dumps(line)


def test_long_array_parameters_are_cut() -> None:
    from hotelbot_cli.observability.masking import mask_params

    masked = mask_params("SELECT %(names)s", {"names": [f"n{i}" for i in range(100)]})
    assert masked["names"][:2] == ["n0", "n1"] and masked["names"][-1] == "... 80 more"
    assert len(masked["names"]) == 21
