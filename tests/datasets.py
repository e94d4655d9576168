"""Valid rows of every tenant table for a hotel, built from the models' metadata.

The RLS, property and performance tests all write rows of every table. They build them
here, so a table or column the models gain reaches all of them at once. What the metadata
says is not written down again: the tables and their order are ``TENANT_TABLES``; a fresh
``id``, the ``hotel_id`` and each foreign key (from the parent row of the same hotel) are
filled from the columns and constraints. The one thing kept by hand is :data:`VALUES`, a
valid value for each column that needs one; a column that needs one and has none there
is refused by :func:`row` and fails ``tests/unit/test_datasets.py`` by name.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import Column, Table, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from hotelbot_cli.models import (
    TENANT_TABLES,
    Base,
    MessageType,
    NotificationType,
    TriggerType,
)
from tests.factories import phone

#: Distinct hours for the hourly counts' natural key, far before any message.
_PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_HOURS = itertools.count()

#: One row by column name (the database's names: ``metadata``, not ``metadata_``).
Row = dict[str, Any]

#: The tenants' table and the tables that belong to one hotel, parents first.
TABLES: tuple[str, ...] = ("hotels", *TENANT_TABLES)

#: A valid value for each column that needs one: NOT NULL without a default, or with a
#: default its CHECK refuses (``triggers.conditions`` defaults to ``{}``). Called per row,
#: so unique columns get fresh values. Keys and ``hotel_id`` are not here: :func:`row`
#: fills them from the metadata.
VALUES: dict[str, dict[str, Callable[[], Any]]] = {
    "hotels": {"name": lambda: "Hotel", "whatsapp_number": lambda: phone("+1555")},
    "guests": {"phone": phone, "name": lambda: "Guest"},
    "triggers": {
        "name": lambda: "welcome",
        "trigger_type": lambda: TriggerType.EVENT_BASED,
        "conditions": lambda: {"event": "checkin"},
        "message_template": lambda: "Hi",
    },
    "conversations": {},
    "messages": {"message_type": lambda: MessageType.INCOMING, "content": lambda: "hello"},
    # a count of 0 for an hour long past: true of every hotel (its triggers keep the rest)
    "message_sentiment_hourly": {
        "hour": lambda: _PAST + dt.timedelta(hours=next(_HOURS)),
        "messages": lambda: 0,
    },
    "staff_notifications": {
        "notification_type": lambda: NotificationType.URGENT_REQUEST,
        "title": lambda: "t",
        "content": lambda: "c",
    },
}


class MissingParent(LookupError):
    """A row needs a parent row (a NOT NULL foreign key) that was not given."""


def table(name: str) -> Table:
    return Base.metadata.tables[name]


@dataclass(frozen=True)
class _ForeignKey:
    """A foreign key to another table than ``hotels``: its ``(column, parent column)``s
    other than ``hotel_id`` (the row's own hotel)."""

    parent: str
    pairs: tuple[tuple[str, str], ...]
    nullable: bool


@dataclass(frozen=True)
class _Shape:
    """What :func:`row` reads from a table's metadata, read once."""

    columns: frozenset[str]
    tenant: bool
    foreign_keys: tuple[_ForeignKey, ...]
    #: NOT NULL, no default, not a key: a value must come from VALUES or the caller.
    needs_value: frozenset[str]
    json: frozenset[str]


def _has_default(column: Column[Any]) -> bool:
    return column.server_default is not None or column.default is not None


@functools.cache
def _shape(name: str) -> _Shape:
    t = table(name)
    foreign_keys = []
    for fk in t.foreign_key_constraints:
        pairs = tuple(
            (c.name, e.column.name)
            for c, e in zip(fk.columns, fk.elements, strict=True)
            if c.name != "hotel_id"
        )
        if pairs:
            nullable = all(t.c[local].nullable for local, _ in pairs)
            foreign_keys.append(_ForeignKey(fk.referred_table.name, pairs, nullable))
    keys = {"id", "hotel_id"} | {c.name for fk in t.foreign_key_constraints for c in fk.columns}
    return _Shape(
        columns=frozenset(t.c.keys()),
        tenant="hotel_id" in t.c,
        foreign_keys=tuple(foreign_keys),
        needs_value=frozenset(
            c.name
            for c in t.columns
            if not c.nullable and not _has_default(c) and c.name not in keys
        ),
        json=frozenset(c.name for c in t.columns if isinstance(c.type, JSONB)),
    )


def needs_value(name: str) -> frozenset[str]:
    """Columns of ``name`` with no value unless :data:`VALUES` gives one (keys aside)."""
    return _shape(name).needs_value


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _parent_keys(name: str, hotel_id: uuid.UUID | None, parents: Mapping[str, Row]) -> Row:
    """Each foreign key of ``name`` from its parent row in ``parents`` (by table), all of
    hotel ``hotel_id``; a nullable key whose parent is not given stays NULL."""
    keys: Row = {}
    for fk in _shape(name).foreign_keys:
        parent = parents.get(fk.parent)
        if parent is None:
            if fk.nullable:
                continue
            raise MissingParent(f"a {name} row needs its {fk.parent} row: pass it in parents")
        if "hotel_id" in parent and _uuid(parent["hotel_id"]) != hotel_id:
            raise ValueError(f"the {fk.parent} row given for {name} is another hotel's")
        keys.update({local: _uuid(parent[remote]) for local, remote in fk.pairs})
    return keys


def row(
    name: str,
    hotel_id: uuid.UUID | str | None = None,
    parents: Mapping[str, Row] | None = None,
    /,
    **overrides: Any,
) -> Row:
    """One valid row of table ``name`` of hotel ``hotel_id``, to INSERT as it is.

    A fresh ``id``; the foreign keys from ``parents`` (the hotel's rows by table name);
    :data:`VALUES`; then ``overrides`` (column names; an unknown one is a TypeError, and
    the parameters before ``/`` are positional so that any column name is free).
    Columns left out take their server defaults.
    """
    shape = _shape(name)
    unknown = overrides.keys() - shape.columns
    if unknown:
        raise TypeError(f"{name} has no column {', '.join(sorted(unknown))}")
    built: Row = {"id": uuid.uuid4()}
    if shape.tenant:
        if hotel_id is None:
            raise TypeError(f"{name} belongs to a hotel: give its hotel_id")
        hotel_id = _uuid(hotel_id)
        built["hotel_id"] = hotel_id
    if shape.foreign_keys:
        built.update(_parent_keys(name, hotel_id, parents or {}))
    for column, make in VALUES.get(name, {}).items():
        if column not in overrides:
            built[column] = make()
    built.update(overrides)
    missing = shape.needs_value - built.keys()
    if missing:
        raise LookupError(
            f"tests/datasets.VALUES has no value for {name}.{', '.join(sorted(missing))}"
        )
    return built


def tenant(**overrides: Mapping[str, Any]) -> dict[str, Row]:
    """A hotel and one row of every tenant table, parents first, all keyed to that hotel.

    ``overrides`` by table name, e.g. ``tenant(hotels={"whatsapp_number": "+15550001001"})``.
    """
    unknown = set(overrides) - set(TABLES)
    if unknown:
        raise TypeError(f"no table {', '.join(sorted(unknown))} in {TABLES}")
    rows = {"hotels": row("hotels", **overrides.get("hotels", {}))}
    for name in TENANT_TABLES:
        rows[name] = row(name, rows["hotels"]["id"], rows, **overrides.get(name, {}))
    return rows


def _adapted(name: str, columns: Sequence[str], values: Row) -> tuple[Any, ...]:
    """The row's values in ``columns``' order, JSON columns wrapped for psycopg."""
    json = _shape(name).json
    return tuple(
        Jsonb(values[c]) if c in json and values[c] is not None else values[c] for c in columns
    )


def _columns(name: str, rows: Sequence[Row]) -> tuple[str, ...]:
    columns = tuple(rows[0])
    if any(tuple(r) != columns for r in rows):
        raise ValueError(f"{name}: rows written together must have the same columns")
    return columns


def insert(conn: psycopg.Connection[Any], name: str, rows: Sequence[Row]) -> None:
    """INSERT ``rows`` (of one set of columns) into ``name``, one statement per row."""
    if not rows:
        return
    columns = _columns(name, rows)
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(name),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    with conn.cursor() as cur:
        cur.executemany(statement, [_adapted(name, columns, r) for r in rows])


def insert_clause(name: str, columns: Iterable[str]) -> TextClause:
    """``INSERT INTO name (columns) VALUES (:column, …)`` for a SQLAlchemy session, each
    parameter typed by its column (JSON and enum values are converted as the ORM would)."""
    t = table(name)
    columns = list(columns)
    clause = text(
        f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    )
    return clause.bindparams(*(bindparam(c, type_=t.c[c].type) for c in columns))


def insert_all(conn: psycopg.Connection[Any], rows: Mapping[str, Row]) -> None:
    """INSERT a :func:`tenant`'s rows, parents first."""
    for name in TABLES:
        if name in rows:
            insert(conn, name, [rows[name]])


def copy(conn: psycopg.Connection[Any], name: str, rows: Iterable[Row]) -> None:
    """COPY ``rows`` (of one set of columns) into ``name``: the bulk path (no RLS may apply)."""
    rows = list(rows)
    if not rows:
        return
    columns = _columns(name, rows)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(statement) as out:
        for r in rows:
            out.write_row(_adapted(name, columns, r))
