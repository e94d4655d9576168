"""Guests of a hotel, identified by their WhatsApp phone number within the hotel."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from hotelbot_cli.models import validation
from hotelbot_cli.models.base import (
    E164_SQL,
    Base,
    TenantId,
    Timestamps,
    empty_jsonb,
    not_blank,
)

if TYPE_CHECKING:
    from hotelbot_cli.models.hotel import Hotel
    from hotelbot_cli.models.message import Conversation
    from hotelbot_cli.models.notification import StaffNotification


def mask_phone(phone: str | None) -> str | None:
    """``+79161234567`` → ``+7******4567``: enough to tell guests apart, not to call them."""
    if not phone:
        return phone
    return phone[:2] + "*" * max(len(phone) - 6, 0) + phone[-4:]


class Guest(TenantId, Timestamps, Base):
    __tablename__ = "guests"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        # Led by the tenant (Citus' distribution column); the target of the composite
        # foreign keys that keep references inside one hotel.
        PrimaryKeyConstraint("hotel_id", "id"),
        UniqueConstraint("hotel_id", "phone"),
        CheckConstraint(f"phone ~ '{E164_SQL}'", name="phone_e164"),
        CheckConstraint(not_blank("name"), name="name_not_blank"),
        # Guests due for a time-based trigger: a hotel's guests by last interaction.
        # Covering what due_guests reads (an index-only scan, revision 010).
        Index(
            "idx_guests_last_interaction",
            "hotel_id",
            "last_interaction",
            postgresql_include=["id", "phone"],
        ),
    )

    hotel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hotels.id", ondelete="CASCADE"))
    #: PII: shown masked (see mask_phone), never logged in clear.
    phone: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(255))
    preferences: Mapped[dict[str, Any] | None] = mapped_column(server_default=empty_jsonb())
    last_interaction: Mapped[dt.datetime | None]

    hotel: Mapped[Hotel] = relationship(back_populates="guests")
    conversations: Mapped[list[Conversation]] = relationship(
        back_populates="guest",
        cascade="all, delete-orphan",
        passive_deletes=True,
        overlaps="conversations,hotel",
    )
    notifications: Mapped[list[StaffNotification]] = relationship(
        back_populates="guest", passive_deletes=True, overlaps="notifications,hotel"
    )

    @validates("phone")
    def _check_phone(self, _key: str, value: str) -> str:
        return validation.e164("phone", value)  # type: ignore[return-value]

    @validates("name")
    def _check_name(self, _key: str, value: str | None) -> str | None:
        return validation.not_blank("name", value)

    def __repr__(self) -> str:
        return (
            f"Guest(id={self.id!s}, hotel_id={self.hotel_id!s}, phone={mask_phone(self.phone)!r})"
        )
