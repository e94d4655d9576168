"""The shared dataset builder covers every table of the models: a tenant table added to the
models and not taught to ``tests/datasets.py`` fails here, by name, instead of being left
out of the RLS, property and performance datasets."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from hotelbot_cli.models import DERIVED_TABLES, TENANT_TABLES, Base
from tests import datasets


def test_the_builder_knows_the_hotel_and_every_tenant_table_parents_first() -> None:
    sorted_names = [t.name for t in Base.metadata.sorted_tables]
    assert set(datasets.TABLES) == set(sorted_names), "a table is neither hotels nor a tenant's"
    assert list(datasets.TABLES) == [n for n in sorted_names if n in datasets.TABLES]


@pytest.mark.parametrize("name", datasets.TABLES)
def test_every_table_has_values_taught_and_none_stale(name: str) -> None:
    """Each table is in VALUES (its CHECKs were thought about); VALUES names real columns."""
    assert name in datasets.VALUES, f"teach tests/datasets.VALUES the table {name}"
    stale = set(datasets.VALUES[name]) - set(datasets.table(name).c.keys())
    assert not stale, f"tests/datasets.VALUES[{name!r}] names no column of the model: {stale}"


@pytest.mark.parametrize("name", datasets.TABLES)
def test_a_tenant_has_a_row_of_the_table_with_every_column_that_needs_one(name: str) -> None:
    rows = datasets.tenant()
    built = rows[name]
    t = datasets.table(name)
    required = {c.name for c in t.columns if not c.nullable and c.server_default is None}
    assert required <= set(built), f"{name}: no value for {required - set(built)}"
    assert isinstance(built["id"], uuid.UUID)
    if name != "hotels":
        assert built["hotel_id"] == rows["hotels"]["id"]
    for fk in t.foreign_key_constraints:
        parent = rows[fk.referred_table.name]
        for column, element in zip(fk.columns, fk.elements, strict=True):
            assert built[column.name] == parent[element.column.name], (name, column.name)


def test_a_column_that_needs_a_value_and_has_none_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(datasets.VALUES, "messages", {"message_type": lambda: "incoming"})
    with pytest.raises(LookupError, match=r"messages\.content"):
        datasets.tenant()


def test_overrides_are_columns_and_parents_stay_in_the_hotel() -> None:
    a, b = datasets.tenant(), datasets.tenant(guests={"name": "Ann"})
    assert b["guests"]["name"] == "Ann" and a["guests"]["phone"] != b["guests"]["phone"]
    with pytest.raises(TypeError, match="nickname"):
        datasets.row("guests", a["hotels"]["id"], nickname="x")
    with pytest.raises(ValueError, match="another hotel"):
        datasets.row("conversations", a["hotels"]["id"], {"guests": b["guests"]})
    with pytest.raises(datasets.MissingParent, match="guests"):
        datasets.row("conversations", a["hotels"]["id"])
    optional = datasets.row("staff_notifications", a["hotels"]["id"])
    assert "guest_id" not in optional and "message_id" not in optional  # nullable: left NULL


def test_two_tenants_insert_into_the_schema(session: Session) -> None:
    """The rows pass every constraint of the migrated schema (CHECKs, keys, uniques)."""
    conn = session.connection().connection.driver_connection
    assert isinstance(conn, psycopg.Connection)
    tenants = [datasets.tenant(), datasets.tenant()]
    for rows in tenants:
        datasets.insert_all(conn, rows)
    for name in TENANT_TABLES:
        for rows in tenants:
            found = session.execute(
                text(f"SELECT id FROM {name} WHERE hotel_id = :h"), {"h": rows["hotels"]["id"]}
            ).scalars()
            if name in DERIVED_TABLES:  # the row given, and those its triggers made
                assert rows[name]["id"] in list(found), name
            else:
                assert list(found) == [rows[name]["id"]], name


def test_copy_writes_what_insert_writes(session: Session) -> None:
    conn = session.connection().connection.driver_connection
    assert isinstance(conn, psycopg.Connection)
    rows = datasets.tenant()
    for name in datasets.TABLES:
        datasets.copy(conn, name, [rows[name]])
    conditions = session.execute(
        text("SELECT conditions FROM triggers WHERE id = :i"), {"i": rows["triggers"]["id"]}
    ).scalar_one()
    assert conditions == rows["triggers"]["conditions"]


def test_the_performance_dataset_has_rows_of_every_tenant_table_in_each_hotel() -> None:
    from tests.performance.conftest import SHAPED, dataset_rows

    assert set(SHAPED) <= set(TENANT_TABLES), "performance/conftest.SHAPED names no tenant table"
    rows = dataset_rows(hotels=2, guests=3, messages=2)
    hotels = {r["id"] for r in rows["hotels"]}
    assert len(hotels) == 2
    for name in TENANT_TABLES:
        assert {r["hotel_id"] for r in rows[name]} == hotels, name
    counts = {name: len(rows[name]) for name in ("guests", "conversations", "messages")}
    assert counts == {"guests": 6, "conversations": 6, "messages": 12}
