"""Helpers shared by the row-level-security tests (imported by conftest and the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from hotelbot_cli.settings import Settings, libpq_url
from tests import datasets

APP_ROLE = "app_user"
OWNER_ROLE = "hb_rls_owner"


@dataclass(frozen=True)
class Tenant:
    """One hotel and its row in every tenant table (built by tests/datasets.py)."""

    whatsapp: str
    token: str
    rows: dict[str, datasets.Row]

    def row_id(self, table: str) -> str:
        """The id of this hotel's row of ``table`` (``hotels``: the hotel's own), as text."""
        return str(self.rows[table]["id"])

    @property
    def hotel_id(self) -> str:
        return self.row_id("hotels")

    @property
    def guest_id(self) -> str:
        return self.row_id("guests")


def insert_tenant(conn: psycopg.Connection, whatsapp: str, token: str) -> Tenant:
    """One hotel with a row in every tenant table (as a role that bypasses or owns them)."""
    rows = datasets.tenant(hotels={"whatsapp_number": whatsapp, "green_api_token": token})
    datasets.insert_all(conn, rows)
    return Tenant(whatsapp, token, rows)


def signing_key_of(db_url: Any) -> bytes:
    """The database's tenant signing key, read as the owner (what the bot is given)."""
    with psycopg.connect(libpq_url(db_url)) as conn:
        row = conn.execute("SELECT key FROM hotelbot_private.tenant_key").fetchone()
    assert row is not None
    return bytes(row[0])


#: One pooled connection and no overflow: every checkout reuses the same server session.
ONE_CONNECTION = Settings.from_env({"HOTELBOT_POOL_SIZE": "1", "HOTELBOT_MAX_OVERFLOW": "0"})


def updatable_column(conn: psycopg.Connection, table: str, role: str = APP_ROLE) -> str:
    """A column of ``table`` that ``role`` may UPDATE, from the grants (not a list kept here)."""
    row = conn.execute(
        "SELECT a.attname FROM pg_catalog.pg_attribute a"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " AND a.attname NOT IN ('id', 'hotel_id')"
        " AND has_column_privilege(%s, a.attrelid, a.attnum, 'UPDATE')"
        " ORDER BY a.attnum LIMIT 1",
        (table, role),
    ).fetchone()
    assert row is not None, f"{role} may update no column of {table}"
    return str(row[0])
