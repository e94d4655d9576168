"""The policy judgement on PostgreSQL's parse tree: bound, unbound or unsure (no database)."""

from __future__ import annotations

import pytest

from hotelbot_cli.rls.policy import Context, judge

CTX = Context("app.current_hotel_id", frozenset({"current_hotel"}))
T = "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"


@pytest.mark.parametrize(
    ("expression", "verdict", "cost"),
    [
        (f"hotel_id = {T}", "bound", "statement"),
        (f"{T} = hotel_id AND note IS NOT NULL", "bound", "statement"),
        ("hotel_id = current_setting('app.current_hotel_id', true)::uuid", "bound", "row"),
        ("hotel_id = current_hotel()", "bound", "function"),
        ("hotel_id = (SELECT current_hotel())", "bound", "statement"),
        (f"hotel_id = {T} OR hotel_id = current_hotel()", "bound", "function"),
        (f"\"we'ird\" = 'x' AND hotel_id = {T}", "bound", "statement"),
        (f"hotel_id = COALESCE({T}, hotel_id)", "unbound", None),
        # revision 013's shape: the setting when the cache holds its digest, else the verifier
        (
            "hotel_id = (SELECT COALESCE((SELECT NULLIF(current_setting('app.current_hotel_id',"
            " true), '')::uuid WHERE EXISTS (SELECT 1 FROM cache v WHERE v.digest = sha256('x')"
            " AND v.expires_at >= now())), current_hotel()))",
            "bound",
            "statement",
        ),
        (
            "hotel_id = COALESCE(current_hotel(), '00000000-0000-0000-0000-000000000001')",
            "unsure",
            None,
        ),
        ("hotel_id = (SELECT current_hotel() FROM hotels)", "unsure", None),
        (f"hotel_id = {T} OR true", "unbound", None),
        (f"NOT (hotel_id = {T})", "unbound", None),
        (f"hotel_id <> {T}", "unbound", None),
        ("hotel_id = '00000000-0000-0000-0000-000000000001'::uuid", "unbound", None),
        (f"id = {T}", "unbound", None),
        ("true", "unbound", None),
        (
            "hotel_id = NULLIF(current_setting('app.current_hotel_id', true), note)::uuid",
            "unbound",
            None,
        ),
        ("hotel_id = current_setting('other.setting')::uuid", "unsure", None),
        ("hotel_id IN (SELECT id FROM hotels)", "unsure", None),
        ("EXISTS (SELECT 1)", "unsure", None),
        (f"hotel_id = {T} OR hotel_id IN (SELECT 1)", "unsure", None),
        ("hotel_id = (SELECT x FROM t)", "unbound", None),  # fail closed: a column value
        ("hotel_id IS NULL", "unsure", None),
        ("hotel_id = = broken", "unsure", None),
        (None, "unbound", None),
    ],
)
def test_judgement(expression: str | None, verdict: str, cost: str | None) -> None:
    got = judge(expression, "hotel_id", CTX)
    assert (got.verdict, got.cost) == (verdict, cost), got


def test_any_column_is_accepted_when_the_table_has_no_tenant_column() -> None:
    assert judge(f"property_id = {T}", None, CTX).verdict == "bound"
