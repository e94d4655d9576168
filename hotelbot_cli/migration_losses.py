"""What a downgrade would destroy, found before it runs (``db downgrade`` asks first).

The downgrade's own SQL (Alembic's offline mode, what ``hotelbot db sql`` prints) names the
tables it drops or empties (DROP TABLE, TRUNCATE, DELETE FROM) and the columns it drops
(ALTER TABLE … DROP COLUMN). Each is looked up in the live database's catalog: one that
holds rows is data the downgrade loses. Whether a table holds rows is read from its size
and planner estimate, never from its rows, so forced row level security cannot hide them,
nothing is locked, and a table whose rows were all deleted but not yet vacuumed still
counts (asking once too often is the safe mistake).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hotelbot_cli.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

_NAME = r'(?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?'
_TABLES = re.compile(
    rf"\b(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?)"
    rf"\s+({_NAME}(?:\s*,\s*{_NAME})*)|\bDELETE\s+FROM(?:\s+ONLY)?\s+({_NAME})",
    re.IGNORECASE,
)
_ALTER = re.compile(
    rf"\bALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?\s+({_NAME})\s([^;]*)", re.IGNORECASE
)
_DROP_COLUMN = re.compile(rf"\bDROP\s+COLUMN(?:\s+IF\s+EXISTS)?\s+({_NAME})", re.IGNORECASE)

#: Alembic's own bookkeeping, dropped on the way to base: not user data.
_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class DataLoss:
    """A table (``column`` None) or a column the downgrade removes while its table holds rows."""

    table: str
    column: str | None
    #: the planner's estimate (pg_class.reltuples); 0 when the table was never analyzed
    estimated_rows: int

    def __str__(self) -> str:
        what = f"column {self.table}.{self.column}" if self.column else f"table {self.table}"
        rows = f"about {self.estimated_rows:,} rows" if self.estimated_rows else "holds rows"
        return f"{what} ({rows})"


def _unquote(name: str) -> str:
    last = re.findall(r'"[^"]+"|\w+', name)[-1]
    return last[1:-1] if last.startswith('"') else last.lower()


def touched(sql: str) -> list[tuple[str, str | None]]:
    """(table, None) for every table dropped or emptied, then (table, column) for every column
    dropped from a table that is not itself dropped; in order, once each."""
    tables: dict[str, None] = {}
    for match in _TABLES.finditer(sql):
        for name in re.split(r"\s*,\s*", match.group(1) or match.group(2)):
            tables[_unquote(name)] = None
    columns: dict[tuple[str, str], None] = {}
    for match in _ALTER.finditer(sql):
        table = _unquote(match.group(1))
        for column in _DROP_COLUMN.findall(match.group(2)):
            columns[table, _unquote(column)] = None
    tables.pop(_VERSION_TABLE, None)
    return [(t, None) for t in tables] + [(t, c) for t, c in columns if t not in tables]


def downgrade_losses(engine: Engine, revision: str) -> tuple[DataLoss, ...]:
    """The data ``downgrade(engine, revision)`` would destroy; () when it destroys none.

    An unknown or impossible target yields (): the downgrade itself then reports it.
    """
    from sqlalchemy import text

    from hotelbot_cli import migrations

    sql = []
    for head in migrations.current(engine):
        try:
            sql.append(migrations.offline_sql(f"{head}:{revision}"))
        except UsageError:
            continue
    items = touched("\n".join(sql))
    if not items:
        return ()
    losses = []
    with engine.connect() as conn:
        for table, column in items:
            row = conn.execute(
                text(
                    "SELECT greatest(c.reltuples, 0)::bigint,"
                    " c.reltuples > 0 OR pg_relation_size(c.oid) > 0"
                    " FROM pg_class c WHERE c.oid = to_regclass(:name)"
                    " AND (CAST(:column AS name) IS NULL OR EXISTS ("
                    " SELECT FROM pg_attribute a WHERE a.attrelid = c.oid"
                    " AND a.attname = CAST(:column AS name) AND a.attnum > 0"
                    " AND NOT a.attisdropped))"
                ),
                {"name": '"' + table.replace('"', '""') + '"', "column": column},
            ).first()
            if row is not None and row[1]:
                losses.append(DataLoss(table=table, column=column, estimated_rows=int(row[0])))
        conn.rollback()
    return tuple(losses)
