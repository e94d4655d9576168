"""Typed SQLAlchemy models of the schema; ``Base.metadata`` is what migrations must match."""

from hotelbot_cli.models.base import Base
from hotelbot_cli.models.enums import (
    MessageType,
    NotificationStatus,
    NotificationType,
    SentimentType,
    TriggerType,
)
from hotelbot_cli.models.guest import Guest, mask_phone
from hotelbot_cli.models.hotel import Hotel
from hotelbot_cli.models.message import Conversation, Message
from hotelbot_cli.models.notification import StaffNotification
from hotelbot_cli.models.sentiment import MessageSentimentHour
from hotelbot_cli.models.trigger import Trigger

#: Tables that belong to one hotel (carry hotel_id), in dependency order: read from the
#: models, so a new tenant table is distributed (Citus) without another list to keep.
TENANT_TABLES = tuple(t.name for t in Base.metadata.sorted_tables if "hotel_id" in t.c)
#: Tables the database keeps from other tables by triggers (``info["derived_from"]``): the
#: seed recounts them, test datasets leave their rows to the triggers.
DERIVED_TABLES = tuple(t.name for t in Base.metadata.sorted_tables if t.info.get("derived_from"))

__all__ = [
    "DERIVED_TABLES",
    "TENANT_TABLES",
    "Base",
    "Conversation",
    "Guest",
    "Hotel",
    "Message",
    "MessageSentimentHour",
    "MessageType",
    "NotificationStatus",
    "NotificationType",
    "SentimentType",
    "StaffNotification",
    "Trigger",
    "TriggerType",
    "mask_phone",
]
