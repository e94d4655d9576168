"""The PostgreSQL enum types of the schema, as Python enums and SQLAlchemy types."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


class TriggerType(enum.StrEnum):
    TIME_BASED = "time_based"
    CONDITION_BASED = "condition_based"
    EVENT_BASED = "event_based"


class MessageType(enum.StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    SYSTEM = "system"


class SentimentType(enum.StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    REQUIRES_ATTENTION = "requires_attention"


class NotificationType(enum.StrEnum):
    NEGATIVE_SENTIMENT = "negative_sentiment"
    URGENT_REQUEST = "urgent_request"
    SYSTEM_ALERT = "system_alert"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    ACKNOWLEDGED = "acknowledged"


def pg_enum(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A named PostgreSQL ENUM storing the Python enum's values (not its member names)."""
    return Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


trigger_type = pg_enum(TriggerType, "trigger_type")
message_type = pg_enum(MessageType, "message_type")
sentiment_type = pg_enum(SentimentType, "sentiment_type")
notification_type = pg_enum(NotificationType, "notification_type")
notification_status = pg_enum(NotificationStatus, "notification_status")

ALL_ENUMS = (trigger_type, message_type, sentiment_type, notification_type, notification_status)
