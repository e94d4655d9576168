"""Property: random cross-tenant operations through the library's tenant sessions never leak.

Hypothesis drives sequences of (actor, operation, table, target hotel) through
``tenant_session(..., role="app_user")`` on a pooled engine. Whatever the sequence, the
actor only ever sees its own rows, and the other hotel's data is byte-for-byte unchanged.
"""

from __future__ import annotations

import random
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

#: Read from the models, as in test_rls_policies.
TABLES = TENANT_TABLES
OPS = ("select", "update", "delete", "insert", "repoint", "reference")


def _insert(table: str, hotel: str, refs: dict[str, str | None]) -> tuple[str, dict]:
    params = {"h": hotel, "g": refs["guest"], "c": refs["conversation"]}
    params["p"] = "+7916" + "".join(random.choice("0123456789") for _ in range(7))
    return {
        "guests": "INSERT INTO guests (hotel_id, phone) VALUES (:h, :p)",
        "triggers": "INSERT INTO triggers (hotel_id, name, trigger_type, conditions,"
        " message_template) VALUES (:h, 'n', 'event_based', '{\"event\": \"e\"}', 't')",
        "conversations": "INSERT INTO conversations (hotel_id, guest_id) VALUES (:h, :g)",
        "messages": "INSERT INTO messages (hotel_id, conversation_id, message_type, content)"
        " VALUES (:h, :c, 'incoming', 'x')",
        "staff_notifications": "INSERT INTO staff_notifications (hotel_id, notification_type,"
        " title, content) VALUES (:h, 'system_alert', 't', 'c')",
    }[table], params


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

    def refs(self, hotel: str) -> dict[str, str | None]:
        return {
            "guest": self.any_id("guests", hotel),
            "conversation": self.any_id("conversations", hotel),
        }


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
                elif op == "insert" and (
                    table not in ("conversations", "messages") or all(refs.values())
                ):
                    statement, params = _insert(table, target, refs)
                    outcome = s.execute(text(statement), params).rowcount
                elif op == "repoint":
                    outcome = s.execute(
                        text(f"UPDATE {table} SET hotel_id = :t WHERE hotel_id = :a"),
                        {"t": target, "a": actor},
                    ).rowcount
                elif op == "reference" and refs["guest"]:
                    outcome = s.execute(
                        text("INSERT INTO conversations (hotel_id, guest_id) VALUES (:a, :g)"),
                        {"a": actor, "g": refs["guest"]},
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
