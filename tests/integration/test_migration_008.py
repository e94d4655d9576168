"""Revision 008: one active conversation per guest, closing stored duplicates first."""

from __future__ import annotations

import datetime as dt

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migrations
from hotelbot_cli.settings import libpq_url


def test_008_keeps_the_latest_active_conversation_as_a_non_superuser_owner(
    owner_db_url: URL, server_url: URL
) -> None:
    # The data goes in as the server's superuser (whoever TEST_DATABASE_URL names).
    db_as_superuser = owner_db_url.set(username=server_url.username, password=server_url.password)
    owner = create_engine(owner_db_url, poolclass=NullPool)
    migrations.upgrade(owner, "007")
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    # The owner is bound by FORCE row level security: the data goes in as the superuser.
    with psycopg.connect(libpq_url(db_as_superuser)) as conn:
        hotel = conn.execute(
            "INSERT INTO hotels (name, whatsapp_number) VALUES ('H', '+74950000008') RETURNING id"
        ).fetchone()[0]
        guest = conn.execute(
            "INSERT INTO guests (hotel_id, phone) VALUES (%s, '+79160000008') RETURNING id",
            (hotel,),
        ).fetchone()[0]
        ids = [
            conn.execute(
                "INSERT INTO conversations (hotel_id, guest_id, status, last_message_at)"
                " VALUES (%s, %s, 'active', %s) RETURNING id",
                (hotel, guest, now + dt.timedelta(hours=hours)),
            ).fetchone()[0]
            for hours in (1, 3, 2)
        ]
    migrations.upgrade(owner, "008")
    owner.dispose()
    with psycopg.connect(libpq_url(db_as_superuser)) as conn:
        active = conn.execute("SELECT id FROM conversations WHERE status = 'active'").fetchall()
        forced = conn.execute(
            "SELECT relforcerowsecurity FROM pg_class WHERE oid = 'conversations'::regclass"
        ).fetchone()
    assert active == [(ids[1],)]  # the latest message wins
    assert forced == (True,)
