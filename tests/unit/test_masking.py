"""Secrets and personal data never reach a log line: SQL text, parameters, error messages."""

from __future__ import annotations

import json

import pytest

from hotelbot_cli.observability.context import (
    bind_correlation_id,
    bind_tenant,
    clean_correlation_id,
    current_correlation_id,
    current_hotel_id,
    set_correlation_id,
)
from hotelbot_cli.observability.masking import (
    REDACTED,
    mask_params,
    mask_text,
    param_columns,
    scrub_sql,
    secret_values,
)
from hotelbot_cli.observability.sql_classify import classify
from hotelbot_cli.observability.sql_log import plan_hint

PHONE = "+79161234567"
TOKEN = "gat-9f8e7d6c5b4a"


def test_sql_literals_and_phones_are_removed() -> None:
    sql = f"SELECT * FROM guests WHERE phone = '{PHONE}' AND note = 'it''s' AND x = $$secret$$"
    out = scrub_sql(sql)
    assert PHONE not in out and "secret" not in out and "it" not in out.split("note")[1]
    assert out.count("'?'") == 3
    assert scrub_sql(f"SELECT {PHONE}") == "SELECT +7******4567"


def test_named_params_masked_by_name_and_by_column() -> None:
    sql = (
        "UPDATE hotels SET green_api_token = %(tok)s, name = %(name)s "
        "WHERE whatsapp_number = %(num)s"
    )
    masked = mask_params(sql, {"tok": TOKEN, "name": "Grand", "num": PHONE})
    assert masked == {"tok": REDACTED, "name": "Grand", "num": "+7******4567"}
    # SQLAlchemy's own names: column name, numbered suffixes, insertmanyvalues suffixes.
    masked = mask_params(
        "x",
        {"green_api_token": TOKEN, "phone_1": PHONE, "content__3": "hi", "title": "t", "n": 1},
    )
    assert masked == {
        "green_api_token": REDACTED,
        "phone_1": "+7******4567",
        "content__3": REDACTED,
        "title": REDACTED,
        "n": 1,
    }


def test_positional_params_follow_the_insert_column_list() -> None:
    sql = (
        "INSERT INTO hotels (name, whatsapp_number, green_api_token) "
        "VALUES (%s, %s, %s), (%s, %s, %s)"
    )
    assert param_columns(sql)[2] == "green_api_token"
    masked = mask_params(sql, ("A", PHONE, TOKEN, "B", "+4915112345678", TOKEN))
    assert masked == ["A", "+7******4567", REDACTED, "B", "+4********5678", REDACTED]
    dollar = "SELECT 1 FROM hotels WHERE green_api_token = $1 AND name = $2"
    assert mask_params(dollar, [TOKEN, "x"]) == [REDACTED, "x"]


def test_executemany_nested_and_odd_values() -> None:
    rows = [{"phone": PHONE, "preferences": {"wa": PHONE, "password": "p"}}] * 25
    masked = mask_params("INSERT INTO guests (phone) VALUES (%(phone)s)", rows)
    assert len(masked) == 21 and masked[-1] == "... 5 more rows"
    assert masked[0] == {
        "phone": "+7******4567",
        "preferences": {"wa": "+7******4567", "password": REDACTED},
    }
    assert mask_params("x", None) is None
    assert mask_params("x", [b"abc", None, 2.5, True, ["a", PHONE]]) == [
        "<3 bytes>",
        None,
        2.5,
        True,
        ["a", "+7******4567"],
    ]
    assert mask_params("x", 7) == 7

    class Odd:
        def __str__(self) -> str:
            return f"guest {PHONE}"

    assert mask_params("x", [Odd()]) == ["guest +7******4567"]  # stringified, then masked
    assert PHONE not in json.dumps(mask_params("x", {"chat": "79161234567@c.us"}))


def test_error_text_hides_keys_rows_passwords_and_known_secrets() -> None:
    text = (
        "duplicate key value violates unique constraint\n"
        f"DETAIL:  Key (hotel_id, phone)=(1, {PHONE}) already exists.\n"
        f"Failing row contains (1, {TOKEN}, x). connection to postgresql://bob:hunter2@db:5432/x "
        f"password=hunter2 tok {TOKEN}"
    )
    out = mask_text(text, [TOKEN, "ab"])
    for secret in (PHONE, TOKEN, "hunter2"):
        assert secret not in out
    assert "Key (hotel_id, phone)=(***) already exists" in out
    sql = "UPDATE hotels SET green_api_token = %(t)s WHERE id = %(i)s"
    assert secret_values(sql, {"t": TOKEN, "i": "1"}) == [TOKEN]
    assert secret_values("INSERT INTO hotels (green_api_token) VALUES (%s)", [[TOKEN]]) == [TOKEN]
    assert secret_values("x", [{"green_api_token": TOKEN}]) == [TOKEN]
    assert secret_values("x", None) == []


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT id FROM hotels WHERE id = 1", ("SELECT", "hotels")),
        ("  -- c\n/* x */ insert into public.guests (a) values (1)", ("INSERT", "guests")),
        ('UPDATE "messages" SET a = 1', ("UPDATE", "messages")),
        ("DELETE FROM ONLY triggers", ("DELETE", "triggers")),
        ("COPY messages (a) FROM STDIN", ("COPY", "messages")),
        ("CREATE INDEX IF NOT EXISTS ix ON t (a)", ("DDL", "ix")),
        ("WITH x AS (SELECT 1) UPDATE hotels SET a = 1", ("UPDATE", "hotels")),
        ("WITH x AS (SELECT 1) SELECT * FROM x", ("SELECT", "x")),
        ("BEGIN", ("BEGIN", None)),
        ("", ("OTHER", None)),
    ],
)
def test_classify(sql: str, expected: tuple[str, str | None]) -> None:
    assert classify(sql) == expected


def test_plan_hints_name_the_table() -> None:
    assert "EXPLAIN" in plan_hint("SELECT", "hotels") and "hotels" in plan_hint("SELECT", "hotels")
    assert "FK" in plan_hint("COPY", "messages")
    assert "locks" in plan_hint("DDL", None)


def test_correlation_and_tenant_context() -> None:
    assert clean_correlation_id(" a\nb\x00c ") == "abc"
    assert clean_correlation_id("\n") is None and clean_correlation_id(None) is None
    with bind_correlation_id("req-1") as cid, bind_tenant("h1"):
        assert cid == current_correlation_id() == "req-1" and current_hotel_id() == "h1"
        with bind_correlation_id() as inner, bind_tenant(None):
            assert inner.startswith("hb-") and current_hotel_id() is None
    assert current_correlation_id() != "req-1"
    assert set_correlation_id("ci-7") == "ci-7" and current_correlation_id() == "ci-7"
