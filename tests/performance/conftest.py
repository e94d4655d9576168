"""A small, deterministic dataset built in SQL, shared by the performance, load and CLI tests.

Large enough for the planner to prefer the indexes (a few thousand rows), small enough to
build in well under a second.
"""

from __future__ import annotations

from typing import Any

import psycopg

DATASET_SQL = (
    "SELECT setseed(0.42)",
    "INSERT INTO hotels (name, whatsapp_number)"
    " SELECT 'Hotel ' || i, '+1200' || lpad(i::text, 7, '0')"
    " FROM generate_series(1, %(hotels)s) i",
    "INSERT INTO guests (hotel_id, phone, name, last_interaction)"
    " SELECT h.id, '+7900' || lpad((row_number() OVER ())::text, 7, '0'), 'Guest ' || g,"
    " now() - random() * interval '30 days'"
    " FROM hotels h CROSS JOIN generate_series(1, %(guests)s) g",
    "INSERT INTO conversations (hotel_id, guest_id, status, last_message_at)"
    " SELECT hotel_id, id, 'active', now() - random() * interval '10 days' FROM guests",
    "INSERT INTO messages (hotel_id, conversation_id, message_type, content,"
    " sentiment_type, sentiment_score, created_at)"
    " SELECT c.hotel_id, c.id, 'incoming', 'hello number ' || m,"
    " (ARRAY['positive', 'neutral', 'negative'])[1 + floor(random() * 3)::int]::sentiment_type,"
    " 0, now() - random() * interval '30 days'"
    " FROM conversations c CROSS JOIN generate_series(1, %(messages)s) m",
    "INSERT INTO triggers (hotel_id, name, trigger_type, conditions, message_template, priority,"
    " is_active)"
    " SELECT h.id, 'Trigger ' || p, 'time_based', jsonb_build_object('hours_after_checkin', p),"
    " 'Hello!', p, mod(p, 4) <> 0"
    " FROM hotels h CROSS JOIN generate_series(1, 8) p",
    "INSERT INTO staff_notifications (hotel_id, notification_type, title, content, status)"
    " SELECT h.id, 'system_alert', 'Alert ' || n, 'Something happened',"
    " (CASE WHEN mod(n, 3) = 0 THEN 'pending' ELSE 'failed' END)::notification_status"
    " FROM hotels h CROSS JOIN generate_series(1, 30) n",
    "ANALYZE",
)


def make_dataset(url: Any, hotels: int = 5, guests: int = 200, messages: int = 5) -> None:
    """Fill the database at ``url`` (a superuser URL: RLS does not apply) with a small dataset."""
    from hotelbot_cli.settings import libpq_url

    text = libpq_url(url) if not isinstance(url, str) else url
    params = {"hotels": hotels, "guests": guests, "messages": messages}
    with psycopg.connect(text, autocommit=True) as conn:
        for statement in DATASET_SQL:
            conn.execute(statement, params if "%(" in statement else None)
