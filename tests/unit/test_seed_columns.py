"""The seed's COPY column lists follow the models: a column added to a model and forgotten
by the seed fails here, by name, instead of silently staying at its default."""

from __future__ import annotations

import pytest
from sqlalchemy import Table

from hotelbot_cli.models import Base
from hotelbot_cli.seed import loader, server_side

#: The binary COPY type the loader declares for each SQLAlchemy column type.
COPY_TYPES = {
    "UUID": "uuid",
    "String": "text",
    "Text": "text",
    "Enum": "text",
    "JSONB": "jsonb",
    "Boolean": "bool",
    "Integer": "int4",
    "DateTime": "timestamptz",
}

TABLES = {t.name: t for t in Base.metadata.sorted_tables}


def _seeded(table: str) -> list[tuple[str, ...]]:
    """Every column list the seed writes ``table`` with."""
    lists = [tuple(name for name, _ in loader.COLUMNS[table])] if table in loader.COLUMNS else []
    if table == "messages":
        lists.append(server_side.MESSAGE_COLUMNS)
    if table == "staff_notifications":
        lists.append(server_side.NOTIFICATION_COLUMNS)
    return lists


@pytest.mark.parametrize("name", sorted(TABLES))
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


@pytest.mark.parametrize("name", sorted(loader.COLUMNS))
def test_the_loader_declares_each_column_with_its_model_type(name: str) -> None:
    table = TABLES[name]
    for column, copy_type in loader.COLUMNS[name]:
        model_type = type(table.columns[column].type).__name__
        assert COPY_TYPES[model_type] == copy_type, (name, column, model_type, copy_type)
