"""Hotel model: creation, validation, unique constraints, relationships, cascades."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotelbot_cli.models import Guest, Hotel, Trigger, TriggerType


def make_hotel(number: str = "+74951234567", **kwargs: object) -> Hotel:
    return Hotel(name=kwargs.pop("name", "Гранд Отель"), whatsapp_number=number, **kwargs)


def test_hotel_creation_applies_server_defaults(session: Session) -> None:
    hotel = make_hotel()
    session.add(hotel)
    session.flush()
    assert hotel.id is not None
    assert hotel.is_active is True
    assert hotel.settings == {}
    assert hotel.created_at is not None and hotel.updated_at is not None


def test_hotel_update_bumps_updated_at(engine: Engine) -> None:
    """The ORM sets updated_at; raw SQL writers set it themselves (no trigger since 012)."""
    with Session(engine) as session:
        hotel = make_hotel()
        session.add(hotel)
        session.commit()
        before = hotel.updated_at
        time.sleep(0.01)
        # A new transaction has a later now(); raw SQL says so itself.
        session.execute(
            text("UPDATE hotels SET name = 'Renamed', updated_at = now() WHERE id = :id"),
            {"id": hotel.id},
        )
        session.commit()
        session.refresh(hotel)
        assert hotel.name == "Renamed"
        assert before is not None and hotel.updated_at is not None and hotel.updated_at > before
        hotel.settings = {"languages": ["ru"]}
        session.commit()  # an ORM update fetches the new updated_at back (eager defaults)
        assert hotel.updated_at is not None and hotel.updated_at > before


def test_hotel_validation_in_python(session: Session) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        make_hotel("89161234567")
    with pytest.raises(ValueError, match="empty"):
        make_hotel(name="   ")


@pytest.mark.parametrize(
    ("column", "value"),
    [("whatsapp_number", "12345"), ("whatsapp_number", "+0123456789"), ("name", " ")],
)
def test_hotel_validation_in_database(session: Session, column: str, value: str) -> None:
    values = {"name": "Hotel", "whatsapp_number": "+74951234567", column: value}
    with pytest.raises(IntegrityError, match="ck_hotels"):
        session.execute(
            text("INSERT INTO hotels (name, whatsapp_number) VALUES (:name, :whatsapp_number)"),
            values,
        )


def test_hotel_unique_whatsapp_number(session: Session) -> None:
    session.add(make_hotel())
    session.flush()
    session.add(make_hotel(name="Other"))
    with pytest.raises(IntegrityError, match="uq_hotels_whatsapp_number"):
        session.flush()


def test_hotel_relationships_and_cascade_delete(session: Session) -> None:
    hotel = make_hotel()
    hotel.guests.append(Guest(phone="+79161234567", name="Ivan"))
    hotel.triggers.append(
        Trigger(
            name="Welcome",
            trigger_type=TriggerType.TIME_BASED,
            conditions={"hours_after_checkin": 2},
            message_template="Hello {guest_name}!",
        )
    )
    session.add(hotel)
    session.flush()
    guest = hotel.guests[0]
    assert guest.hotel is hotel and guest.hotel_id == hotel.id
    # Delete through the database: ON DELETE CASCADE removes the children.
    session.execute(text("DELETE FROM hotels WHERE id = :id"), {"id": hotel.id})
    session.expunge_all()
    assert session.scalar(select(Guest).where(Guest.hotel_id == hotel.id)) is None
    assert session.scalar(select(Trigger).where(Trigger.hotel_id == hotel.id)) is None


def test_hotel_repr_hides_token(session: Session) -> None:
    hotel = make_hotel(green_api_token="super-secret-token")
    assert "super-secret-token" not in repr(hotel)
