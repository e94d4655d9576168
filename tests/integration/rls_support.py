"""Helpers shared by the row-level-security tests (imported by conftest and the tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from hotelbot_cli.settings import Settings, libpq_url

APP_ROLE = "app_user"
OWNER_ROLE = "hb_rls_owner"


@dataclass(frozen=True)
class Tenant:
    """One hotel and the id of its row in every tenant table."""

    hotel_id: str
    whatsapp: str
    token: str
    guest_id: str
    trigger_id: str
    conversation_id: str
    message_id: str
    notification_id: str

    def row_id(self, table: str) -> str:
        return {
            "hotels": self.hotel_id,
            "guests": self.guest_id,
            "triggers": self.trigger_id,
            "conversations": self.conversation_id,
            "messages": self.message_id,
            "staff_notifications": self.notification_id,
        }[table]


def insert_tenant(conn: psycopg.Connection, whatsapp: str, token: str) -> Tenant:
    """One hotel with a row in every tenant table (as a role that bypasses or owns them)."""
    ids = {k: str(uuid.uuid4()) for k in ("h", "g", "t", "c", "m", "n")}
    conn.execute(
        "INSERT INTO hotels (id, name, whatsapp_number, green_api_token) VALUES (%s, %s, %s, %s)",
        (ids["h"], f"Hotel {whatsapp}", whatsapp, token),
    )
    conn.execute(
        "INSERT INTO guests (id, hotel_id, phone, name) VALUES (%s, %s, %s, 'Guest')",
        (ids["g"], ids["h"], "+7916" + whatsapp[-7:]),
    )
    conn.execute(
        "INSERT INTO triggers (id, hotel_id, name, trigger_type, conditions, message_template)"
        " VALUES (%s, %s, 'welcome', 'event_based', '{\"event\": \"checkin\"}', 'Hi')",
        (ids["t"], ids["h"]),
    )
    conn.execute(
        "INSERT INTO conversations (id, hotel_id, guest_id) VALUES (%s, %s, %s)",
        (ids["c"], ids["h"], ids["g"]),
    )
    conn.execute(
        "INSERT INTO messages (id, hotel_id, conversation_id, message_type, content)"
        " VALUES (%s, %s, %s, 'incoming', 'hello')",
        (ids["m"], ids["h"], ids["c"]),
    )
    conn.execute(
        "INSERT INTO staff_notifications (id, hotel_id, guest_id, message_id,"
        " notification_type, title, content) VALUES (%s, %s, %s, %s, 'urgent_request', 't', 'c')",
        (ids["n"], ids["h"], ids["g"], ids["m"]),
    )
    return Tenant(ids["h"], whatsapp, token, ids["g"], ids["t"], ids["c"], ids["m"], ids["n"])


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
