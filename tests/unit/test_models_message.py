"""Conversation and Message models: ordering, sentiment, composite keys, cascades, SET NULL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotelbot_cli.db import deletes
from hotelbot_cli.errors import UsageError
from hotelbot_cli.models import (
    Message,
    MessageType,
    NotificationStatus,
    NotificationType,
    SentimentType,
    StaffNotification,
)
from tests import factories as f


def test_conversation_defaults_and_messages_in_time_order(session: Session) -> None:
    hotel = f.hotel()
    guest = f.guest(hotel)
    conv = f.conversation(guest)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    f.message(conv, "third", created_at=t0 + dt.timedelta(minutes=2))
    f.message(conv, "first", created_at=t0)
    f.message(conv, "second", created_at=t0 + dt.timedelta(minutes=1))
    session.add(hotel)
    session.flush()
    session.expire_all()
    assert conv.status == "active" and conv.last_message_at is not None
    assert [m.content for m in conv.messages] == ["first", "second", "third"]
    assert all(m.hotel_id == hotel.id for m in conv.messages)


def test_message_sentiment(session: Session) -> None:
    hotel = f.hotel()
    conv = f.conversation(f.guest(hotel))
    msg = f.message(
        conv,
        "Ужасно!",
        sentiment_score=Decimal("-0.85"),
        sentiment_type=SentimentType.NEGATIVE,
        metadata_={"source": "whatsapp"},
    )
    session.add(hotel)
    session.flush()
    session.expire_all()
    stored = session.get(Message, (msg.hotel_id, msg.id))
    assert stored.sentiment_score == Decimal("-0.85")
    assert stored.sentiment_type is SentimentType.NEGATIVE
    assert stored.metadata_ == {"source": "whatsapp"}
    assert stored.message_type is MessageType.INCOMING


@pytest.mark.parametrize("score", [Decimal("1.01"), Decimal("-1.5")])
def test_sentiment_score_range(session: Session, score: Decimal) -> None:
    with pytest.raises(ValueError, match="between -1 and 1"):
        Message(sentiment_score=score)
    hotel = f.hotel()
    conv = f.conversation(f.guest(hotel))
    session.add(hotel)
    session.flush()
    with pytest.raises(IntegrityError, match="ck_messages_sentiment_score_range"):
        session.execute(
            text(
                "INSERT INTO messages (hotel_id, conversation_id, message_type, content,"
                " sentiment_score) VALUES (:h, :c, 'incoming', 'x', :s)"
            ),
            {"h": hotel.id, "c": conv.id, "s": score},
        )


def test_model_refuses_to_link_rows_of_two_hotels(session: Session) -> None:
    a, b = f.hotel(), f.hotel()
    conv_b = f.conversation(f.guest(b))
    session.add_all([a, b])
    session.flush()
    msg = Message(hotel_id=a.id, content="x", message_type=MessageType.INCOMING)
    with pytest.raises(ValueError, match="another hotel"):
        msg.conversation = conv_b


def test_database_refuses_cross_hotel_references_even_by_guessed_id(session: Session) -> None:
    a, b = f.hotel(), f.hotel()
    guest_b = f.guest(b)
    conv_b = f.conversation(guest_b)
    msg_b = f.message(conv_b)
    session.add_all([a, b])
    session.flush()
    attempts = [
        ("INSERT INTO conversations (hotel_id, guest_id) VALUES (:a, :x)", guest_b.id),
        (
            "INSERT INTO messages (hotel_id, conversation_id, message_type, content)"
            " VALUES (:a, :x, 'incoming', 'x')",
            conv_b.id,
        ),
        (
            "INSERT INTO staff_notifications (hotel_id, guest_id, notification_type, title,"
            " content) VALUES (:a, :x, 'urgent_request', 't', 'c')",
            guest_b.id,
        ),
        (
            "INSERT INTO staff_notifications (hotel_id, message_id, notification_type, title,"
            " content) VALUES (:a, :x, 'urgent_request', 't', 'c')",
            msg_b.id,
        ),
    ]
    for statement, foreign_id in attempts:
        nested = session.begin_nested()
        with pytest.raises(IntegrityError, match="violates foreign key constraint"):
            session.execute(text(statement), {"a": a.id, "x": foreign_id})
        nested.rollback()


def test_notification_outlives_its_message_and_guest(session: Session) -> None:
    """The delete helpers null the references (the keys are NO ACTION since 012)."""
    hotel = f.hotel()
    guest = f.guest(hotel)
    conv = f.conversation(guest)
    msg = f.message(conv, sentiment_type=SentimentType.REQUIRES_ATTENTION)
    note = StaffNotification(
        hotel=hotel,
        notification_type=NotificationType.URGENT_REQUEST,
        title="Guest needs help",
        content="Room 12 has no hot water",
    )
    note.guest = guest
    note.message = msg
    session.add(hotel)
    session.add(note)
    session.flush()
    assert note.status is NotificationStatus.PENDING
    with (
        pytest.raises(IntegrityError, match="fk_staff_notifications_hotel_id_message_id"),
        session.begin_nested(),
    ):
        session.execute(text("DELETE FROM messages WHERE id = :id"), {"id": msg.id})
    assert deletes.delete_message(session, hotel.id, msg.id)
    session.refresh(note)
    assert note.message_id is None and note.guest_id == guest.id and note.hotel_id == hotel.id
    assert deletes.delete_guest(session, hotel.id, str(guest.id))
    assert not deletes.delete_guest(session, hotel.id, guest.id)
    session.refresh(note)
    assert note.guest_id is None and note.hotel_id == hotel.id


def test_deleting_a_guest_nulls_the_messages_notifications_point_at(session: Session) -> None:
    hotel = f.hotel()
    guest = f.guest(hotel)
    conv = f.conversation(guest)
    msg = f.message(conv)
    other = f.conversation(f.guest(hotel, phone="+79160000002"))
    kept = f.message(other)
    notes = [
        StaffNotification(
            hotel=hotel, notification_type=NotificationType.SYSTEM_ALERT, title="t", content="c"
        )
        for _ in range(2)
    ]
    notes[0].message = msg
    notes[1].message = kept
    session.add_all([hotel, *notes])
    session.flush()
    assert deletes.delete_conversation(session, hotel.id, conv.id)
    session.refresh(notes[0])
    assert notes[0].message_id is None
    assert deletes.delete_guest(session, hotel.id, other.guest_id)
    session.refresh(notes[1])
    assert notes[1].message_id is None and notes[1].hotel_id == hotel.id
    with pytest.raises(UsageError, match="not a UUID"):
        deletes.delete_message(session, hotel.id, "nope")


def test_notification_timestamps_follow_status(session: Session) -> None:
    hotel = f.hotel()
    session.add(hotel)
    session.flush()
    with pytest.raises(IntegrityError, match="ck_staff_notifications_sent_at_when_sent"):
        session.execute(
            text(
                "INSERT INTO staff_notifications (hotel_id, notification_type, title, content,"
                " status, sent_at) VALUES (:h, 'system_alert', 't', 'c', 'pending', now())"
            ),
            {"h": hotel.id},
        )


def test_notification_title_not_blank() -> None:
    with pytest.raises(ValueError, match="title"):
        StaffNotification(title=" ")


def test_deleting_conversation_cascades_messages(session: Session) -> None:
    hotel = f.hotel()
    conv = f.conversation(f.guest(hotel))
    f.message(conv)
    f.message(conv, "again")
    session.add(hotel)
    session.flush()
    session.execute(text("DELETE FROM conversations WHERE id = :id"), {"id": conv.id})
    assert session.scalars(select(Message).where(Message.conversation_id == conv.id)).all() == []
