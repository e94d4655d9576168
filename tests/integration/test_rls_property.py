"""Property: random cross-tenant operations through the library's tenant sessions never leak.

Hypothesis drives sequences of (actor, operation, table, target hotel) through
``tenant_session(..., role="app_user")`` on a pooled engine. Whatever the sequence, the
actor only ever sees its own rows, and the other hotel's data is byte-for-byte unchanged.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rls_support import APP_ROLE, Tenant, updatable_column
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from hotelbot_cli.db.tenant import tenant_session
from hotelbot_cli.models import TENANT_TABLES
from hotelbot_cli.settings import libpq_url
from tests import datasets

#: Read from the models, as in test_rls_policies.
TABLES = TENANT_TABLES
OPS = ("select", "update", "delete", "insert", "repoint", "reference")
#: The tables a tenant table's foreign keys reference (hotels aside: the actor's own).
PARENTS = tuple(
    name
    for name in TABLES
    if any(
        fk.referred_table.name == name
        for table in TABLES
        for fk in datasets.table(table).foreign_key_constraints
    )
)


def _new_row(table: str, hotel: str, refs: dict[str, datasets.Row]) -> datasets.Row | None:
    """A valid row of ``table`` for ``hotel`` from the shared builder, or None while a row
    it references (a NOT NULL foreign key) is missing from ``refs``."""
    try:
        return datasets.row(table, hotel, refs)
    except datasets.MissingParent:
        return None


class World:
    """Two committed hotels, a pooled engine for the app, a superuser connection to audit."""

    def __init__(self, url: URL, a: Tenant, b: Tenant) -> None:
        self.hotels = {"A": a.hotel_id, "B": b.hotel_id}
        self.engine = create_engine(url, poolclass=QueuePool, pool_size=2, max_overflow=0)
        self.factory = sessionmaker(self.engine)
        self.audit = psycopg.connect(libpq_url(url), autocommit=True)
        #: a column the app role may update, per table (from the grants)
        self.writable = {t: updatable_column(self.audit, t) for t in TABLES}

    def snapshot(self, hotel: str) -> tuple:
        rows = [
            self.audit.execute(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f" FROM {table} t WHERE hotel_id = %s",
                (hotel,),
            ).fetchone()[0]
            for table in TABLES
        ]
        rows.append(
            self.audit.execute(
                "SELECT md5(h::text) FROM hotels h WHERE id = %s", (hotel,)
            ).fetchone()[0]
        )
        return tuple(rows)

    def any_id(self, table: str, hotel: str) -> str | None:
        row = self.audit.execute(
            f"SELECT id FROM {table} WHERE hotel_id = %s LIMIT 1", (hotel,)
        ).fetchone()
        return str(row[0]) if row else None

    def refs(self, hotel: str) -> dict[str, datasets.Row]:
        """A row of ``hotel`` in each table a tenant table references (a new row's parents)."""
        found = {table: self.any_id(table, hotel) for table in PARENTS}
        return {table: {"id": i, "hotel_id": hotel} for table, i in found.items() if i}


@pytest.fixture
def world(db_url: URL, two_hotels):
    w = World(db_url, *two_hotels)
    yield w
    w.audit.close()
    w.engine.dispose()


operation = st.tuples(
    st.sampled_from("AB"), st.sampled_from(OPS), st.sampled_from(TABLES), st.sampled_from("AB")
)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(operation, min_size=1, max_size=6))
def test_random_cross_tenant_operations_never_leak(world: World, ops) -> None:
    for actor_key, op, table, target_key in ops:
        actor, target = world.hotels[actor_key], world.hotels[target_key]
        other = world.hotels["B" if actor_key == "A" else "A"]
        before = world.snapshot(other)
        cross = actor != target
        row_id = world.any_id(table, target)
        refs = world.refs(target)
        outcome: int | str | None = None
        try:
            with tenant_session(actor, world.factory, role=APP_ROLE) as s:
                if op == "select":
                    seen = {str(r[0]) for r in s.execute(text(f"SELECT hotel_id FROM {table}"))}
                    assert seen <= {actor}, f"{actor_key} saw {seen} in {table}"
                    hotels = {str(r[0]) for r in s.execute(text("SELECT id FROM hotels"))}
                    assert hotels == {actor}
                elif op == "update" and row_id:
                    col = world.writable[table]
                    outcome = s.execute(
                        text(f"UPDATE {table} SET {col} = {col} WHERE id = :i"), {"i": row_id}
                    ).rowcount
                elif op == "delete" and row_id:
                    outcome = s.execute(
                        text(f"DELETE FROM {table} WHERE id = :i"), {"i": row_id}
                    ).rowcount
                elif op == "insert" and (row := _new_row(table, target, refs)) is not None:
                    outcome = s.execute(datasets.insert_clause(table, row), row).rowcount
                elif op == "repoint":
                    outcome = s.execute(
                        text(f"UPDATE {table} SET hotel_id = :t WHERE hotel_id = :a"),
                        {"t": target, "a": actor},
                    ).rowcount
                elif op == "reference" and "guests" in refs:
                    outcome = s.execute(
                        text("INSERT INTO conversations (hotel_id, guest_id) VALUES (:a, :g)"),
                        {"a": actor, "g": refs["guests"]["id"]},
                    ).rowcount
        except DBAPIError as exc:
            outcome = exc.orig.sqlstate
            assert outcome in {"42501", "23503", "23505"}, exc
        if op == "repoint":
            assert outcome == "42501", "hotel_id must never be updatable by the app role"
        elif cross and op in {"update", "delete"} and row_id:
            assert outcome == 0, f"{op} reached hotel {target_key}'s {table} row"
        elif cross and op in {"insert", "reference"} and outcome is not None:
            assert outcome in {"42501", "23503"}, f"{op} for hotel {target_key} was accepted"
        assert world.snapshot(other) == before, (
            f"{op} on {table} by {actor_key} changed the other hotel"
        )


def test_world_uses_one_pool_and_leaves_no_tenant_behind(world: World) -> None:
    with tenant_session(world.hotels["A"], world.factory, role=APP_ROLE) as s:
        s.execute(text("SELECT 1"))
    with world.engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT current_setting('app.current_hotel_id', true)"
        ).scalar() in ("", None)
    assert uuid.UUID(world.hotels["A"])


def test_the_insert_operation_writes_own_rows_and_is_refused_for_the_other_hotel(
    world: World,
) -> None:
    """The property's ``insert`` is a real write: the builder's rows of every table go in for
    the actor's own hotel (a fresh chain: a new guest may open its active conversation), and
    a row for the other hotel, on its existing rows, is refused by RLS."""
    a, b = world.hotels["A"], world.hotels["B"]
    chain: dict[str, datasets.Row] = {"hotels": {"id": a}}
    with tenant_session(a, world.factory, role=APP_ROLE) as s:
        for table in TABLES:
            chain[table] = datasets.row(table, a, chain)
            assert (
                s.execute(datasets.insert_clause(table, chain[table]), chain[table]).rowcount == 1
            )
    for table in TABLES:
        other = _new_row(table, b, world.refs(b))
        assert other is not None, f"{table}: two_hotels lacks a parent row"
        with (
            pytest.raises(DBAPIError) as err,
            tenant_session(a, world.factory, role=APP_ROLE) as s,
        ):
            s.execute(datasets.insert_clause(table, other), other)
        assert err.value.orig.sqlstate == "42501", table
