"""Small ORM builders for valid objects, shared by the model and integration tests.

Rows to write with SQL (every tenant table of a hotel, by column) come from
tests/datasets.py, which shares :func:`phone` with these.
"""

from __future__ import annotations

import itertools

from hotelbot_cli.models import (
    Conversation,
    Guest,
    Hotel,
    Message,
    MessageType,
    Trigger,
    TriggerType,
)

_numbers = itertools.count(1_000_000)


def phone(country: str = "+7916") -> str:
    """A unique, valid E.164 number."""
    return f"{country}{next(_numbers):07d}"


def hotel(**kwargs: object) -> Hotel:
    kwargs.setdefault("name", "Гранд Отель")
    kwargs.setdefault("whatsapp_number", phone("+7495"))
    return Hotel(**kwargs)


def guest(owner: Hotel, **kwargs: object) -> Guest:
    kwargs.setdefault("phone", phone())
    kwargs.setdefault("name", "Иван Петров")
    created = Guest(**kwargs)
    owner.guests.append(created)
    return created


def trigger(owner: Hotel, **kwargs: object) -> Trigger:
    kwargs.setdefault("name", "Welcome")
    kwargs.setdefault("trigger_type", TriggerType.TIME_BASED)
    kwargs.setdefault("conditions", {"hours_after_checkin": 2})
    kwargs.setdefault("message_template", "Hello {guest_name}!")
    created = Trigger(**kwargs)
    owner.triggers.append(created)
    return created


def conversation(of: Guest) -> Conversation:
    created = Conversation(hotel_id=of.hotel_id, hotel=of.hotel)
    created.guest = of
    return created


def message(conv: Conversation, text: str = "Здравствуйте!", **kwargs: object) -> Message:
    kwargs.setdefault("message_type", MessageType.INCOMING)
    created = Message(content=text, hotel=conv.hotel, **kwargs)
    created.conversation = conv
    return created
