"""The two probe tenants: a row of each in every probed table, and their removal on Citus.

Tenant rows other than the root are written BY THE APP ROLE for that tenant, through the
normal tables, so triggers and rules fire as in production (the owner writes only what the
app may not). A non-superuser owner inserts them after ``ALTER TABLE … NO FORCE ROW LEVEL
SECURITY`` (rolled back with everything else). On a distributed schema the rows are
committed, and :func:`remove_fixture` deletes them at the end.
"""

from __future__ import annotations

import secrets
from typing import Any, NamedTuple

import psycopg
from psycopg import Connection, sql
from psycopg.abc import Params
from psycopg.rows import dict_row

from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.outcome import first_line
from hotelbot_cli.rls.prober import Prober, Statement
from hotelbot_cli.rls.rows import (
    Fixture,
    ProbeError,
    Shape,
    ident,
    insert_order,
    insert_sql,
    row_values,
    shape_of,
)


class ProbeSetup(NamedTuple):
    """The probe tenants' rows, and the shape of every probed table (in insert order)."""

    fixture: Fixture
    shapes: list[Shape]


def as_owner(conn: Connection[Any], query: Statement, params: Params) -> dict[str, Any]:
    """Insert as the checker (the owner or a bypassing role); the returned row as a dict."""
    conn.execute("SAVEPOINT rls_row")
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(query, params).fetchone()
        conn.execute("RELEASE SAVEPOINT rls_row")
    except psycopg.Error:
        conn.execute("ROLLBACK TO SAVEPOINT rls_row")
        raise
    assert row is not None
    return row


def build_fixture(
    conn: Connection[Any], tables: list[TenantTable], bypass: bool, prober: Prober
) -> ProbeSetup:
    """Two probe tenants, each with one row in every probed table it can get."""
    tenant_oids = {t.oid for t in tables}
    shapes = insert_order([shape_of(conn, t, tenant_oids) for t in tables])
    fixture = Fixture(
        hotel_a="",
        hotel_b="",
        token_b="rls-probe-" + secrets.token_hex(16),
        canary_b="rlscanary" + secrets.token_hex(6),
    )
    root = next((s for s in shapes if s.table.root), None)
    if root is None:
        for t in tables:
            fixture.broken[t.oid] = f"no tenant root table {prober.cfg.root_table} is reachable"
        return ProbeSetup(fixture, shapes)
    for shape in shapes:
        if not bypass:
            try:
                conn.execute("SAVEPOINT rls_force")
                conn.execute(
                    sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(ident(shape.table))
                )
                conn.execute("RELEASE SAVEPOINT rls_force")
            except psycopg.Error as exc:
                conn.execute("ROLLBACK TO SAVEPOINT rls_force")
                fixture.broken[shape.table.oid] = (
                    f"cannot insert probe rows: {first_line(exc)}; run rls-check as the owner of"
                    " the tables or a superuser"
                )
                continue
        for label in ("A", "B"):
            hotel = (fixture.hotel_a if label == "A" else fixture.hotel_b) or ""
            try:
                row = _insert_probe_row(prober, shape, fixture, hotel, label == "B")
            except (ProbeError, psycopg.Error) as exc:
                fixture.broken[shape.table.oid] = f"cannot insert a probe row: {first_line(exc)}"
                break
            if shape is root:
                hotel = str(row[str(shape.table.column)])
                if prober.distributed:
                    prober.committed_roots.append(hotel)
                if label == "A":
                    fixture.hotel_a = hotel
                else:
                    fixture.hotel_b = hotel
            if prober.distributed:
                prober.conn.commit()
            fixture.rows[(shape.table.oid, hotel)] = row
    return ProbeSetup(fixture, shapes)


def _insert_probe_row(
    prober: Prober, shape: Shape, fixture: Fixture, hotel: str, is_b: bool
) -> dict[str, Any]:
    """As the app role for the tenant when it may (rich canary values first), else as owner."""
    token = fixture.token_b if is_b else "rls-probe-" + secrets.token_hex(16)
    canary = fixture.canary_b if is_b else "rlsprobe" + secrets.token_hex(6)
    attempts = [row_values(shape, hotel, fixture, token, canary)]
    attempts.append(row_values(shape, hotel, fixture, token))
    last: Exception | None = None
    for as_app in (False,) if shape.table.root else (True, False):
        for values in attempts:
            query = insert_sql(shape, values, returning=True)
            params = list(values.values())
            try:
                if as_app:
                    row = prober.keep(hotel, query, params)
                    fixture.written_by_app.add(shape.table.oid)
                    return row
                return as_owner(prober.conn, query, params)
            except psycopg.Error as exc:
                last = exc
    assert last is not None
    raise last


def remove_fixture(prober: Prober) -> None:
    """Delete the committed probe tenants; their rows go with them (ON DELETE CASCADE)."""
    conn, cfg = prober.conn, prober.cfg
    conn.rollback()
    if prober.committed_roots:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE {}::text = ANY(%s)").format(
                sql.Identifier(cfg.root_table), sql.Identifier(cfg.root_column)
            ),
            (prober.committed_roots,),
        )
    conn.commit()
