"""Declarative base, constraint naming convention and typed mixins shared by every table."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import DateTime, MetaData, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Every constraint gets a stable, predictable name that migrations can refer to.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model; its metadata is what ``hotelbot db check`` compares."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        uuid.UUID: UUID(as_uuid=True),
        dict[str, Any]: JSONB,
        dt.datetime: DateTime(timezone=True),
    }


class UUIDPrimaryKey:
    """``id UUID PRIMARY KEY DEFAULT gen_random_uuid()``; bulk loads supply their own ids."""

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=func.gen_random_uuid(), sort_order=-1
    )


class TenantId:
    """``id UUID DEFAULT gen_random_uuid()``, the second column of ``PRIMARY KEY (hotel_id, id)``.

    A tenant table's key leads with ``hotel_id`` (revision 012): Citus distributes by it and
    refuses a unique key without it. Each model declares ``PrimaryKeyConstraint("hotel_id",
    "id")``; the ORM's identity of a row is therefore ``(hotel_id, id)``.
    """

    id: Mapped[uuid.UUID] = mapped_column(server_default=func.gen_random_uuid(), sort_order=-1)


class CreatedAt:
    """``created_at TIMESTAMPTZ DEFAULT now()``."""

    created_at: Mapped[dt.datetime | None] = mapped_column(server_default=func.now(), sort_order=90)


class Timestamps(CreatedAt):
    """``created_at`` and ``updated_at``; every UPDATE through the ORM sets ``updated_at``.

    No database trigger (revision 012): on Citus a trigger's ``now()`` runs on every node
    holding a copy of the row. Raw SQL writers set ``updated_at = now()`` themselves.
    """

    updated_at: Mapped[dt.datetime | None] = mapped_column(
        server_default=func.now(), onupdate=func.now(), sort_order=91
    )


def empty_jsonb() -> Any:
    """Server default ``'{}'::jsonb``."""
    return text("'{}'::jsonb")


def not_blank(column: str) -> str:
    """CHECK expression: a text column is not empty or only white space (NULL passes)."""
    return f"btrim({column}) <> ''"


#: E.164: a plus sign, a country code that does not start with 0, 7 to 15 digits in all.
E164_SQL = r"^\+[1-9][0-9]{6,14}$"
