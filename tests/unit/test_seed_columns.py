"""The seed's COPY column lists follow the models: a column added to a model and forgotten
by the seed fails here, by name, instead of silently staying at its default."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import Table

from hotelbot_cli.db import sentiment
from hotelbot_cli.models import DERIVED_TABLES, Base
from hotelbot_cli.seed import generators, loader, rows, server_side
from hotelbot_cli.seed.options import SeedOptions

TABLES = {t.name: t for t in Base.metadata.sorted_tables}


def _seeded(table: str) -> list[tuple[str, ...]]:
    """Every column list the seed writes ``table`` with."""
    lists = [tuple(name for name, _ in loader.COLUMNS[table])] if table in loader.COLUMNS else []
    if table == "messages":
        lists.append(server_side.MESSAGE_COLUMNS)
    if table == "staff_notifications":
        lists.append(server_side.NOTIFICATION_COLUMNS)
    return lists


@pytest.mark.parametrize("name", sorted(set(TABLES) - set(DERIVED_TABLES)))
def test_the_seed_writes_every_column_of_every_table(name: str) -> None:
    table: Table = TABLES[name]
    lists = _seeded(name)
    assert lists, f"the seed writes no rows into {name}"
    for columns in lists:
        assert len(set(columns)) == len(columns), columns
        assert set(columns) == {c.name for c in table.columns}, (
            f"{name}: seeded but not in the model: {set(columns) - set(table.columns.keys())};"
            f" in the model but not seeded: {set(table.columns.keys()) - set(columns)}"
        )


def test_the_seed_recounts_every_derived_table() -> None:
    """A derived table is not loaded but counted after it (``db.sentiment.COUNT_NEW_HOTELS``),
    every column."""
    assert DERIVED_TABLES == (sentiment.HOURLY,)
    wanted = ", ".join(c.name for c in TABLES[sentiment.HOURLY].columns)
    assert f"INSERT INTO {sentiment.HOURLY} ({wanted})" in sentiment.COUNT_NEW_HOTELS


#: The Python values the binary COPY of each type is fed.
PYTHON_TYPES = {
    "uuid": uuid.UUID,
    "text": str,
    "jsonb": str,  # JSON text, wrapped by the loader
    "bool": bool,
    "int4": int,
    "timestamptz": dt.datetime,
}


def _generated() -> dict[str, list[tuple[object, ...]]]:
    opts = SeedOptions(hotels=2, guests_per_hotel=3)
    plans = list(generators.hotels_iter(opts, 0, set()))
    guests = [generators.guest(opts, plans[0], j) for j in range(3)]
    return {
        "hotels": [p.row for p in plans],
        "triggers": [t for p in plans for t in p.triggers],
        "guests": [g.row for g in guests],
        "conversations": [c for g in guests for c in g.conversations],
        "staff_notifications": [p.alert for p in plans if p.alert],
    }


@pytest.mark.parametrize("name", sorted(loader.COLUMNS))
def test_generated_rows_carry_every_column_by_name_with_its_type(name: str) -> None:
    rows = _generated()[name]
    assert rows, name
    for row in rows:
        assert row._fields == tuple(column for column, _ in loader.COLUMNS[name])  # type: ignore[attr-defined]
        for (column, copy_type), value in zip(loader.COLUMNS[name], row, strict=True):
            nullable = TABLES[name].columns[column].nullable
            assert isinstance(value, PYTHON_TYPES[copy_type]) or (value is None and nullable), (
                name,
                column,
                value,
            )


def test_a_row_without_one_of_its_columns_is_refused() -> None:
    guest_row = rows.row_type("guests")
    with pytest.raises(TypeError, match="phone"):
        guest_row(
            id=uuid.uuid4(), hotel_id=uuid.uuid4(), name="x", preferences="{}",
            last_interaction=None, created_at=None, updated_at=None,
        )  # fmt: skip
