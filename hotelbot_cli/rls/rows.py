"""The rows the probes write: each tenant table's shape, and a valid row of it for any tenant.

Shapes and values come from the catalog (column types, defaults, checks, keys, foreign keys),
so a new table is probed without a line here; a column type nobody can generate a value for
raises :class:`ProbeError`, which names the column. Canary values are generated here, and
the column an UPDATE probe touches is one the app role may update.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from hotelbot_cli.rls.catalog import TenantTable

if TYPE_CHECKING:
    from hotelbot_cli.rls.prober import Prober

_TEXT = {"text", "character varying", "character", "name", "citext"}
_INT = {"integer", "bigint", "smallint"}
_NOW = {"timestamp with time zone", "timestamp without time zone", "date", "time without time zone"}
#: Values that satisfy the CHECK constraints this project knows about.
_KNOWN = {
    ("triggers", "trigger_type"): "event_based",
    ("triggers", "conditions"): '{"event": "rls-check"}',
}


class ProbeError(Exception):
    """A probe row could not be made; the message says why."""


@dataclass
class Column:
    name: str
    type: str
    not_null: bool
    has_default: bool
    generated: bool
    enum_first: str | None


class ForeignKey(NamedTuple):
    """A foreign key from a probed table to another tenant table."""

    name: str
    columns: list[str]
    target_oid: int
    target_columns: list[str]


@dataclass
class Shape:
    """What it takes to insert a row: columns, primary key, references, natural keys."""

    table: TenantTable
    columns: list[Column]
    pk: list[str]
    refs: list[ForeignKey] = field(default_factory=list)
    natural: list[list[str]] = field(default_factory=list)  # unique keys, tenant column removed

    def type_of(self, column: str) -> str:
        return next(c.type for c in self.columns if c.name == column)


@dataclass
class Fixture:
    hotel_a: str
    hotel_b: str
    token_b: str
    canary_b: str
    rows: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)  # (oid, tenant)
    broken: dict[int, str] = field(default_factory=dict)  # oid -> why no row
    phones_b: list[str] = field(default_factory=list)
    written_by_app: set[int] = field(default_factory=set)

    def secrets_of_b(self) -> list[str]:
        return [self.canary_b, self.token_b, self.hotel_b, *self.phones_b]


def shape_of(conn: Connection[Any], table: TenantTable, tenant_oids: set[int]) -> Shape:
    cols = [
        Column(*r)
        for r in conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.atthasdef OR a.attidentity <> '', a.attgenerated <> '',
                   (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.atttypid
                     ORDER BY e.enumsortorder LIMIT 1)
              FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum
            """,
            (table.oid,),
        ).fetchall()
    ]
    keys = conn.execute(
        """
        SELECT i.indisprimary, ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o),
               ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(i.indkey) k(n)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n)
          FROM pg_index i WHERE i.indrelid = %s AND i.indisunique AND 0 <> ALL(i.indkey)
         ORDER BY NOT i.indisprimary, i.indexrelid
        """,
        (table.oid,),
    ).fetchall()
    pk = next((list(k[1]) for k in keys if k[0]), [])
    natural = [
        [c for c in k[1] if c != table.column]
        for k in keys
        if not k[0] and any(t != "uuid" for t in k[2]) and [c for c in k[1] if c != table.column]
    ]
    refs = [
        ForeignKey(r[0], list(r[1]), r[2], list(r[3]))
        for r in conn.execute(
            """
            SELECT c.conname,
                   ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                         ORDER BY k.o),
                   c.confrelid,
                   ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                         ORDER BY k.o)
              FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = %s ORDER BY 1
            """,
            (table.oid,),
        ).fetchall()
        if r[2] in tenant_oids and r[2] != table.oid
    ]
    return Shape(table, cols, pk, refs, natural)


def insert_order(shapes: list[Shape]) -> list[Shape]:
    """Referenced tables first (the root first of all)."""
    done: list[Shape] = []
    pending = sorted(shapes, key=lambda s: not s.table.root)
    while pending:
        ready = [
            s for s in pending if all(r.target_oid in {d.table.oid for d in done} for r in s.refs)
        ] or pending[:1]  # a cycle: take one and let its insert fail if it must
        for s in ready:
            pending.remove(s)
            done.append(s)
    return done


def _phone() -> str:
    return "+1999" + "".join(random.choice("0123456789") for _ in range(8))


def param(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value


def _value(  # noqa: PLR0912, PLR0917 - one rule per kind of column, in priority order
    shape: Shape, column: Column, hotel: str, fixture: Fixture, token: str, canary: str | None
) -> Any:
    """A value for ``column`` (cast by the INSERT), or None to leave its default."""
    table = shape.table
    base = column.type.split("(")[0]
    if column.generated:
        return None
    if column.name == table.column:
        return str(uuid.uuid4()) if table.root else hotel
    for _name, cols, ref_oid, ref_cols in shape.refs:
        if column.name in cols:
            ref = fixture.rows.get((ref_oid, hotel))
            if ref is not None:
                return param(ref[ref_cols[cols.index(column.name)]])
    if (table.name, column.name) in _KNOWN:
        return _KNOWN[(table.name, column.name)]
    if column.name == "green_api_token":
        return token
    if base in _TEXT and ("phone" in column.name or "whatsapp" in column.name):
        phone = _phone()
        if canary is not None and canary == fixture.canary_b:  # B's row: a secret of B's
            fixture.phones_b.append(phone)
        return phone
    if column.name in shape.pk and column.type == "uuid":
        return str(uuid.uuid4())
    if canary is not None and column.enum_first is None and not column.has_default:
        if base in _TEXT and _fits(column.type, canary):
            return canary
        if base in {"jsonb", "json"}:
            return '{"rls": "' + canary + '"}'
    if not column.not_null or column.has_default:
        return None
    if column.enum_first is not None:
        return column.enum_first
    simple = {"uuid": str(uuid.uuid4()), "boolean": "true", "jsonb": "{}", "json": "{}"}
    if base in simple:
        return simple[base]
    if base in _TEXT:
        return "rls-probe"
    if base in _INT or base in {"numeric", "real", "double precision"}:
        return "1"
    if base in _NOW:
        return "now"
    raise ProbeError(f"cannot make a value for {column.name} ({column.type})")


def _fits(type_name: str, text: str) -> bool:
    """Whether ``text`` fits a text type such as ``character varying(20)``."""
    if "(" not in type_name:
        return True
    size = type_name.split("(", 1)[1].rstrip(")")
    return size.isdigit() and int(size) >= len(text)


def insert_sql(shape: Shape, values: dict[str, Any], returning: bool = False) -> sql.Composed:
    """INSERT of ``values``; probes never use RETURNING (it adds the SELECT policy's check)."""
    query = sql.SQL("INSERT INTO {} AS probe ({}) VALUES ({})").format(
        ident(shape.table),
        sql.SQL(", ").join(sql.Identifier(c) for c in values),
        sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(shape.type_of(c))) for c in values),
    )
    return query + sql.SQL(" RETURNING probe.*") if returning else query


def ident(table: TenantTable) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))


def row_values(
    shape: Shape, hotel: str, fixture: Fixture, token: str, canary: str | None = None
) -> dict[str, Any]:
    values = {}
    for column in shape.columns:
        value = _value(shape, column, hotel, fixture, token, canary)
        if value is not None:
            values[column.name] = value
    return values


def row_filter(
    shape: Shape, row: dict[str, Any], key: list[str]
) -> tuple[sql.Composable, list[Any]]:
    """``k = %s::type`` for each key column, with the row's own typed values."""
    return (
        sql.SQL(" AND ").join(
            sql.SQL("{} = %s::{}").format(sql.Identifier(k), sql.SQL(shape.type_of(k))) for k in key
        ),
        [param(row[k]) for k in key],
    )


def fresh_row(shape: Shape, fixture: Fixture, hotel: str) -> dict[str, Any]:
    """A new row's values, with fresh distinct text (so copies and overwrites show)."""
    return row_values(
        shape,
        hotel,
        fixture,
        "rls-probe-" + secrets.token_hex(8),
        "rlsprobe" + secrets.token_hex(6),
    )


def updatable_column(prober: Prober, shape: Shape) -> str:
    """A column the app role may UPDATE (so the probe tests the policy, not a privilege)."""
    row = prober.conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0"
        " AND NOT a.attisdropped AND a.attgenerated = ''"
        " AND has_column_privilege(%s, a.attrelid, a.attnum, 'UPDATE')"
        " ORDER BY a.attnum LIMIT 1",
        (shape.table.oid, prober.app_role),
    ).fetchone()
    return row[0] if row else str(shape.table.column)
