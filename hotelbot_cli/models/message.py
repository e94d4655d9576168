"""Conversations with a guest and the messages in them."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    and_,
    func,
    text,
)
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship, validates

from hotelbot_cli.models import validation
from hotelbot_cli.models.base import Base, CreatedAt, TenantId, empty_jsonb
from hotelbot_cli.models.enums import MessageType, SentimentType, message_type, sentiment_type
from hotelbot_cli.models.guest import Guest

if TYPE_CHECKING:
    from hotelbot_cli.models.hotel import Hotel
    from hotelbot_cli.models.notification import StaffNotification


def same_hotel(owner: Any, key: str, target: Any) -> Any:
    """Fill ``owner.hotel_id`` from the row it now references, refusing another hotel's row."""
    if target is not None and target.hotel_id is not None:
        if owner.hotel_id is None:
            owner.hotel_id = target.hotel_id
        elif owner.hotel_id != target.hotel_id:
            raise ValueError(f"{key} belongs to another hotel")
    return target


class Conversation(TenantId, CreatedAt, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        PrimaryKeyConstraint("hotel_id", "id"),
        ForeignKeyConstraint(
            ["hotel_id", "guest_id"], ["guests.hotel_id", "guests.id"], ondelete="CASCADE"
        ),
        CheckConstraint("btrim(status) <> ''", name="status_not_blank"),
        # A guest's conversations, newest first (find-or-open the active conversation).
        Index(
            "ix_conversations_hotel_id_guest_id_last_message_at",
            "hotel_id",
            "guest_id",
            "last_message_at",
        ),
        # At most one active conversation per guest: find-or-open cannot race into two.
        Index(
            "uq_conversations_hotel_id_guest_id_active",
            "hotel_id",
            "guest_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        # A hotel's recent conversations (e.g. the 7-day activity count).
        Index("ix_conversations_hotel_id_last_message_at", "hotel_id", "last_message_at"),
    )

    hotel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hotels.id", ondelete="CASCADE"))
    guest_id: Mapped[uuid.UUID]
    status: Mapped[str | None] = mapped_column(String(50), server_default=text("'active'"))
    last_message_at: Mapped[dt.datetime | None] = mapped_column(server_default=func.now())

    hotel: Mapped[Hotel] = relationship(back_populates="conversations")
    guest: Mapped[Guest] = relationship(
        back_populates="conversations",
        primaryjoin=lambda: and_(
            Conversation.hotel_id == Guest.hotel_id, foreign(Conversation.guest_id) == Guest.id
        ),
        overlaps="conversations,hotel",
    )
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Message.created_at",
        overlaps="messages,hotel",
    )

    @validates("guest")
    def _same_hotel(self, key: str, guest: Guest) -> Guest:
        return same_hotel(self, key, guest)


class Message(TenantId, CreatedAt, Base):
    __tablename__ = "messages"
    __table_args__ = (
        PrimaryKeyConstraint("hotel_id", "id"),
        ForeignKeyConstraint(
            ["hotel_id", "conversation_id"],
            ["conversations.hotel_id", "conversations.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("sentiment_score BETWEEN -1 AND 1", name="sentiment_score_range"),
        # A conversation's messages in time order (also serves the composite FK's cascade).
        Index(
            "ix_messages_hotel_id_conversation_id_created_at",
            "hotel_id",
            "conversation_id",
            "created_at",
        ),
        # A hotel's messages over a time window; covering the sentiment breakdown
        # (an index-only scan, revision 010).
        Index(
            "ix_messages_hotel_id_created_at",
            "hotel_id",
            "created_at",
            postgresql_include=["sentiment_type"],
        ),
    )

    hotel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hotels.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID]
    message_type: Mapped[MessageType] = mapped_column(message_type)
    #: Guest-written text: never logged.
    content: Mapped[str] = mapped_column(Text)
    sentiment_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    sentiment_type: Mapped[SentimentType | None] = mapped_column(sentiment_type)
    #: Column ``metadata`` (the attribute name ``metadata`` is reserved by SQLAlchemy).
    metadata_: Mapped[dict[str, Any] | None] = mapped_column(
        "metadata", server_default=empty_jsonb()
    )

    hotel: Mapped[Hotel] = relationship(back_populates="messages")
    conversation: Mapped[Conversation] = relationship(
        back_populates="messages",
        primaryjoin=lambda: and_(
            Message.hotel_id == Conversation.hotel_id,
            foreign(Message.conversation_id) == Conversation.id,
        ),
        overlaps="messages,hotel",
    )
    notifications: Mapped[list[StaffNotification]] = relationship(
        back_populates="message", passive_deletes=True, overlaps="notifications,hotel"
    )

    @validates("conversation")
    def _same_hotel(self, key: str, conversation: Conversation) -> Conversation:
        return same_hotel(self, key, conversation)

    @validates("sentiment_score")
    def _check_score(self, _key: str, value: Decimal | None) -> Decimal | None:
        return validation.sentiment_score(value)  # type: ignore[return-value]
