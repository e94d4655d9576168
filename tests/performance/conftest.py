"""A small, deterministic dataset, shared by the performance, load and CLI tests.

Large enough for the planner to prefer the indexes (a few thousand rows), small enough to
build in well under a second: the rows come from tests/datasets.py (so every tenant table
of the models gets rows) and are written by COPY, table by table.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from typing import Any

import psycopg

from hotelbot_cli.models import (
    TENANT_TABLES,
    MessageType,
    NotificationStatus,
    NotificationType,
    SentimentType,
    TriggerType,
)
from tests import datasets

SENTIMENTS = (SentimentType.POSITIVE, SentimentType.NEUTRAL, SentimentType.NEGATIVE)
TRIGGERS_PER_HOTEL = 8
NOTIFICATIONS_PER_HOTEL = 30


#: The tables this dataset shapes; any other tenant table gets one plain row per hotel.
SHAPED = ("triggers", "guests", "conversations", "messages", "staff_notifications")


def dataset_rows(hotels: int, guests: int, messages: int) -> dict[str, list[datasets.Row]]:
    """``hotels`` hotels' rows by table, parents first (see :func:`hotel_rows`)."""
    rng = random.Random(0.42)
    now = dt.datetime.now(dt.UTC)
    phones = (f"+7900{n:07d}" for n in itertools.count(1))
    rows: dict[str, list[datasets.Row]] = {name: [] for name in datasets.TABLES}
    for i in range(1, hotels + 1):
        for table, made in hotel_rows(i, guests, messages, rng, now, phones).items():
            rows[table] += made
    return rows


def hotel_rows(
    i: int,
    guests: int,
    messages: int,
    rng: random.Random,
    now: dt.datetime,
    phones: Iterator[str],
) -> dict[str, list[datasets.Row]]:
    """Hotel ``i``: 8 triggers (every 4th inactive), ``guests`` guests with an active
    conversation each of ``messages`` messages (of mixed sentiment, over 30 days), and
    30 system alerts (a third pending)."""

    def ago(days: int) -> dt.datetime:
        return now - rng.random() * dt.timedelta(days=days)

    hotel = datasets.row("hotels", name=f"Hotel {i}", whatsapp_number=f"+1200{i:07d}")
    mine: dict[str, list[datasets.Row]] = {name: [] for name in datasets.TABLES}
    mine["hotels"].append(hotel)
    for p in range(1, TRIGGERS_PER_HOTEL + 1):
        mine["triggers"].append(
            datasets.row(
                "triggers",
                hotel["id"],
                name=f"Trigger {p}",
                trigger_type=TriggerType.TIME_BASED,
                conditions={"hours_after_checkin": p},
                message_template="Hello!",
                priority=p,
                is_active=p % 4 != 0,
            )
        )
    for g in range(1, guests + 1):
        guest = datasets.row(
            "guests", hotel["id"], phone=next(phones), name=f"Guest {g}", last_interaction=ago(30)
        )
        conversation = datasets.row(
            "conversations",
            hotel["id"],
            {"guests": guest},
            status="active",
            last_message_at=ago(10),
        )
        mine["guests"].append(guest)
        mine["conversations"].append(conversation)
        for m in range(1, messages + 1):
            mine["messages"].append(
                datasets.row(
                    "messages",
                    hotel["id"],
                    {"conversations": conversation},
                    message_type=MessageType.INCOMING,
                    content=f"hello number {m}",
                    sentiment_type=rng.choice(SENTIMENTS),
                    sentiment_score=0,
                    created_at=ago(30),
                )
            )
    for n in range(1, NOTIFICATIONS_PER_HOTEL + 1):
        mine["staff_notifications"].append(
            datasets.row(
                "staff_notifications",
                hotel["id"],
                notification_type=NotificationType.SYSTEM_ALERT,
                title=f"Alert {n}",
                content="Something happened",
                status=NotificationStatus.PENDING if n % 3 == 0 else NotificationStatus.FAILED,
            )
        )
    for table in TENANT_TABLES:
        if table not in SHAPED:  # parents: the hotel's last row of each table
            latest = {name: made[-1] for name, made in mine.items() if made}
            mine[table].append(datasets.row(table, hotel["id"], latest))
    return mine


def make_dataset(url: Any, hotels: int = 5, guests: int = 200, messages: int = 5) -> None:
    """Fill the database at ``url`` (a superuser URL: RLS does not apply) with a small dataset."""
    from hotelbot_cli.settings import libpq_url

    text = libpq_url(url) if not isinstance(url, str) else url
    rows = dataset_rows(hotels, guests, messages)
    with psycopg.connect(text) as conn:  # one transaction
        for table in datasets.TABLES:
            datasets.copy(conn, table, rows[table])
    with psycopg.connect(text, autocommit=True) as conn:
        conn.execute("ANALYZE")
