"""Guest model: creation, validation, unique (hotel_id, phone), relationships, masking."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotelbot_cli.models import Conversation, Guest, mask_phone
from tests import factories as f


def test_guest_creation_and_defaults(session: Session) -> None:
    hotel = f.hotel()
    guest = f.guest(hotel)
    session.add(hotel)
    session.flush()
    assert guest.id is not None and guest.hotel_id == hotel.id
    assert guest.preferences == {}
    assert guest.last_interaction is None


def test_guest_update(session: Session) -> None:
    hotel = f.hotel()
    guest = f.guest(hotel)
    session.add(hotel)
    session.flush()
    guest.preferences = {"language": "ru", "room": "suite"}
    session.flush()
    session.expire_all()
    stored = session.get(Guest, (guest.hotel_id, guest.id))
    assert stored.preferences == {"language": "ru", "room": "suite"}


def test_guest_phone_unique_per_hotel_only(session: Session) -> None:
    first, second = f.hotel(), f.hotel()
    f.guest(first, phone="+79160000001")
    f.guest(second, phone="+79160000001")  # the same guest may write to two hotels
    session.add_all([first, second])
    session.flush()
    f.guest(first, phone="+79160000001")
    with pytest.raises(IntegrityError, match="uq_guests_hotel_id_phone"):
        session.flush()


@pytest.mark.parametrize("bad", ["79161234567", "+7 916 123 45 67", "+7", "+012345678"])
def test_guest_phone_must_be_e164(session: Session, bad: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        Guest(phone=bad)
    hotel = f.hotel()
    session.add(hotel)
    session.flush()
    with pytest.raises(IntegrityError, match="ck_guests_phone_e164"):
        session.execute(
            text("INSERT INTO guests (hotel_id, phone) VALUES (:h, :p)"), {"h": hotel.id, "p": bad}
        )


def test_guest_name_may_be_null_but_not_blank(session: Session) -> None:
    hotel = f.hotel()
    f.guest(hotel, name=None)
    session.add(hotel)
    session.flush()
    with pytest.raises(ValueError, match="empty"):
        Guest(name="  ")


def test_deleting_guest_cascades_to_conversations(session: Session) -> None:
    hotel = f.hotel()
    guest = f.guest(hotel)
    conv = f.conversation(guest)
    f.message(conv)
    session.add(hotel)
    session.flush()
    session.delete(guest)
    session.flush()
    assert session.scalar(select(Conversation).where(Conversation.id == conv.id)) is None


def test_mask_phone_keeps_only_country_and_last_digits() -> None:
    assert mask_phone("+79161234567") == "+7******4567"
    assert mask_phone(None) is None
    assert "1234567" not in repr(Guest(phone="+79161234567"))
