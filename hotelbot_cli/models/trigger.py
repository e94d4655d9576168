"""Automated message triggers of a hotel (time, condition or event based)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from hotelbot_cli.models import validation
from hotelbot_cli.models.base import Base, TenantId, Timestamps, empty_jsonb, not_blank
from hotelbot_cli.models.enums import TriggerType, trigger_type

if TYPE_CHECKING:
    from hotelbot_cli.models.hotel import Hotel


class Trigger(TenantId, Timestamps, Base):
    __tablename__ = "triggers"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        PrimaryKeyConstraint("hotel_id", "id"),
        CheckConstraint(not_blank("name"), name="name_not_blank"),
        CheckConstraint(not_blank("message_template"), name="message_template_not_blank"),
        CheckConstraint("priority >= 1", name="priority_positive"),
        CheckConstraint(validation.TRIGGER_CONDITIONS_SQL, name="conditions_shape"),
        # Active triggers of a hotel by priority.
        Index(
            "ix_triggers_hotel_id_priority_active",
            "hotel_id",
            "priority",
            postgresql_where=text("is_active"),
        ),
    )

    hotel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hotels.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    trigger_type: Mapped[TriggerType] = mapped_column(trigger_type)
    conditions: Mapped[dict[str, Any]] = mapped_column(server_default=empty_jsonb())
    message_template: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool | None] = mapped_column(Boolean, server_default=true())
    priority: Mapped[int | None] = mapped_column(server_default=text("1"))

    hotel: Mapped[Hotel] = relationship(back_populates="triggers")

    @validates("name", "message_template")
    def _check_text(self, key: str, value: str) -> str:
        return validation.not_blank(key, value)  # type: ignore[return-value]

    @validates("priority")
    def _check_priority(self, _key: str, value: int | None) -> int | None:
        return validation.priority(value)

    @validates("trigger_type", "conditions")
    def _check_conditions(self, key: str, value: Any) -> Any:
        kind = value if key == "trigger_type" else self.trigger_type
        conditions = value if key == "conditions" else self.conditions
        validation.trigger_conditions(kind, conditions)
        return value
