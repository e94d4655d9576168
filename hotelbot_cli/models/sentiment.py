"""A hotel's messages counted per hour and sentiment, kept by the database for the dashboards.

``sentiment_7d`` (how a hotel's guests felt this week) counted every message of the window:
at 10x the messages it took 4.8-5.4x as long, though already an index-only scan. This table
holds one row per (hotel, UTC hour, sentiment) with the number of messages, maintained by
triggers on ``messages`` in the writer's own transaction (revision 014), so a window of any
length reads at most one row per hour and sentiment plus the raw messages of its partial
first hour (:mod:`hotelbot_cli.db.sentiment`).

A tenant table like the others (``PRIMARY KEY (hotel_id, id)``, row level security,
``db distribute``, ``rls-check``); its natural key is ``(hotel_id, hour, sentiment_type)``,
where ``sentiment_type`` is NULL for messages without one and the key treats NULLs as equal
(``NULLS NOT DISTINCT``, PostgreSQL 15+).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, PrimaryKeyConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hotelbot_cli.models.base import Base, TenantId
from hotelbot_cli.models.enums import SentimentType, sentiment_type


class MessageSentimentHour(TenantId, Base):
    __tablename__ = "message_sentiment_hourly"
    __table_args__ = (
        PrimaryKeyConstraint("hotel_id", "id"),
        Index(
            "uq_message_sentiment_hourly_hotel_id_hour_sentiment_type",
            "hotel_id",
            "hour",
            "sentiment_type",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        # kept by triggers on messages: no writer builds its rows (see DERIVED_TABLES)
        {"info": {"derived_from": "messages"}},
    )

    hotel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hotels.id", ondelete="CASCADE"))
    #: The UTC hour the messages were created in (``db.sentiment.HOUR_OF``).
    hour: Mapped[dt.datetime]
    sentiment_type: Mapped[SentimentType | None] = mapped_column(sentiment_type)
    messages: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
