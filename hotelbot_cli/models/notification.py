"""Notifications raised to hotel staff (negative sentiment, urgent requests, alerts)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    and_,
    text,
)
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship, validates

from hotelbot_cli.models import validation
from hotelbot_cli.models.base import Base, CreatedAt, TenantId, not_blank
from hotelbot_cli.models.enums import (
    NotificationStatus,
    NotificationType,
    notification_status,
    notification_type,
)
from hotelbot_cli.models.guest import Guest
from hotelbot_cli.models.message import Message, same_hotel

if TYPE_CHECKING:
    from hotelbot_cli.models.hotel import Hotel


class StaffNotification(TenantId, CreatedAt, Base):
    __tablename__ = "staff_notifications"
    __table_args__ = (
        PrimaryKeyConstraint("hotel_id", "id"),
        # Composite keys keep references inside the hotel. NO ACTION (revision 012): Citus
        # supports no SET NULL on a key holding the distribution column, so a guest or
        # message is deleted with hotelbot_cli.db.deletes, which nulls these first.
        ForeignKeyConstraint(["hotel_id", "guest_id"], ["guests.hotel_id", "guests.id"]),
        ForeignKeyConstraint(["hotel_id", "message_id"], ["messages.hotel_id", "messages.id"]),
        CheckConstraint(not_blank("title"), name="title_not_blank"),
        CheckConstraint(
            "sent_at IS NULL OR status IN ('sent', 'acknowledged')", name="sent_at_when_sent"
        ),
        CheckConstraint(
            "acknowledged_at IS NULL OR status = 'acknowledged'",
            name="acknowledged_at_when_acknowledged",
        ),
        # Pending notifications of a hotel, newest first.
        Index(
            "ix_staff_notifications_hotel_id_created_at_pending",
            "hotel_id",
            text("created_at DESC"),
            postgresql_where=text("status = 'pending'"),
        ),
        # Serve the nulling (and the key checks) when a guest or message is deleted.
        Index("ix_staff_notifications_hotel_id_guest_id", "hotel_id", "guest_id"),
        Index("ix_staff_notifications_hotel_id_message_id", "hotel_id", "message_id"),
    )

    hotel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hotels.id", ondelete="CASCADE"))
    guest_id: Mapped[uuid.UUID | None]
    message_id: Mapped[uuid.UUID | None]
    notification_type: Mapped[NotificationType] = mapped_column(notification_type)
    title: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[NotificationStatus | None] = mapped_column(
        notification_status, server_default=text("'pending'")
    )
    sent_at: Mapped[dt.datetime | None]
    acknowledged_at: Mapped[dt.datetime | None]

    hotel: Mapped[Hotel] = relationship(back_populates="notifications")
    guest: Mapped[Guest | None] = relationship(
        back_populates="notifications",
        primaryjoin=lambda: and_(
            StaffNotification.hotel_id == Guest.hotel_id,
            foreign(StaffNotification.guest_id) == Guest.id,
        ),
        overlaps="notifications,hotel",
    )
    message: Mapped[Message | None] = relationship(
        back_populates="notifications",
        primaryjoin=lambda: and_(
            StaffNotification.hotel_id == Message.hotel_id,
            foreign(StaffNotification.message_id) == Message.id,
        ),
        overlaps="notifications,hotel",
    )

    @validates("guest", "message")
    def _same_hotel(self, key: str, target: Guest | Message | None) -> Guest | Message | None:
        return same_hotel(self, key, target)

    @validates("title")
    def _check_title(self, _key: str, value: str) -> str:
        return validation.not_blank("title", value)  # type: ignore[return-value]
