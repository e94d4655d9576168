"""Seed rows by column name: one row type per table the loader COPYs, read from the models.

A generator builds ``row_type("guests")(id=…, hotel_id=…, phone=…, …)``: every column of
the model by name (a missing or unknown one is a TypeError where the row is built), in the
order :func:`copy_columns` gives the loader's COPY. A column added to a model is then a
row builder's missing argument, not a value silently shifted into its neighbour.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from typing import Any

#: A row of :func:`row_type` (a named tuple made at run time: typed by its table, not here).
Row = Any

#: The binary COPY type of each SQLAlchemy column type the models use.
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


@functools.cache
def copy_columns(table: str) -> tuple[tuple[str, str], ...]:
    """``(column, binary COPY type)`` of every column of ``table``'s model, in its order."""
    from hotelbot_cli.models import Base

    columns = []
    for column in Base.metadata.tables[table].columns:
        kind = type(column.type).__name__
        if kind not in COPY_TYPES:
            raise TypeError(f"{table}.{column.name}: the seed has no binary COPY type for {kind}")
        columns.append((column.name, COPY_TYPES[kind]))
    return tuple(columns)


@functools.cache
def row_type(table: str) -> Any:
    """The row type of ``table``: a named tuple of :func:`copy_columns`' names (COPY writes
    it as the tuple it is)."""
    name = "".join(part.title() for part in table.split("_")) + "Row"
    return namedtuple(name, [column for column, _ in copy_columns(table)])
