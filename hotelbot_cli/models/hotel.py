"""Hotels: the tenants."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, CheckConstraint, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from hotelbot_cli.models import validation
from hotelbot_cli.models.base import (
    E164_SQL,
    Base,
    Timestamps,
    UUIDPrimaryKey,
    empty_jsonb,
    not_blank,
)

if TYPE_CHECKING:
    from hotelbot_cli.models.guest import Guest
    from hotelbot_cli.models.message import Conversation, Message
    from hotelbot_cli.models.notification import StaffNotification
    from hotelbot_cli.models.trigger import Trigger


class Hotel(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "hotels"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint(not_blank("name"), name="name_not_blank"),
        CheckConstraint(f"whatsapp_number ~ '{E164_SQL}'", name="whatsapp_number_e164"),
    )

    name: Mapped[str] = mapped_column(String(255))
    whatsapp_number: Mapped[str] = mapped_column(String(20), unique=True)
    green_api_instance_id: Mapped[str | None] = mapped_column(String(50))
    #: A secret: never printed or logged; excluded from repr.
    green_api_token: Mapped[str | None] = mapped_column(String(255))
    settings: Mapped[dict[str, Any] | None] = mapped_column(server_default=empty_jsonb())
    is_active: Mapped[bool | None] = mapped_column(Boolean, server_default=true())

    guests: Mapped[list[Guest]] = relationship(
        back_populates="hotel", cascade="all, delete-orphan", passive_deletes=True
    )
    triggers: Mapped[list[Trigger]] = relationship(
        back_populates="hotel", cascade="all, delete-orphan", passive_deletes=True
    )
    conversations: Mapped[list[Conversation]] = relationship(
        back_populates="hotel", cascade="all, delete-orphan", passive_deletes=True
    )
    messages: Mapped[list[Message]] = relationship(
        back_populates="hotel", cascade="all, delete-orphan", passive_deletes=True
    )
    notifications: Mapped[list[StaffNotification]] = relationship(
        back_populates="hotel", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("name")
    def _check_name(self, _key: str, value: str) -> str:
        return validation.not_blank("name", value)  # type: ignore[return-value]

    @validates("whatsapp_number")
    def _check_whatsapp_number(self, _key: str, value: str) -> str:
        return validation.e164("whatsapp_number", value)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Hotel(id={self.id!s}, name={self.name!r})"
