"""Trigger model: the three trigger types, conditions shape, priority, defaults."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from hotelbot_cli.models import Trigger, TriggerType
from tests import factories as f

VALID = [
    (TriggerType.TIME_BASED, {"hours_after_checkin": 2}),
    (TriggerType.TIME_BASED, {"hours_before_checkout": 1.5}),
    (TriggerType.CONDITION_BASED, {"room_type": "suite", "booking_status": "confirmed"}),
    (TriggerType.EVENT_BASED, {"event": "checkout"}),
]
INVALID = [
    (TriggerType.TIME_BASED, {}),
    (TriggerType.TIME_BASED, {"hours_after_checkin": "2"}),
    (TriggerType.TIME_BASED, {"hours_after_checkin": True}),
    (TriggerType.CONDITION_BASED, {}),
    (TriggerType.EVENT_BASED, {"event": ""}),
    (TriggerType.EVENT_BASED, {"name": "checkout"}),
]


@pytest.mark.parametrize(("kind", "conditions"), VALID)
def test_valid_conditions_are_stored(session: Session, kind: TriggerType, conditions: dict) -> None:
    hotel = f.hotel()
    trig = f.trigger(hotel, trigger_type=kind, conditions=conditions)
    session.add(hotel)
    session.flush()
    session.expire_all()
    stored = session.get(Trigger, (trig.hotel_id, trig.id))
    assert stored.conditions == conditions and stored.trigger_type is kind
    assert stored.is_active is True and stored.priority == 1


@pytest.mark.parametrize(("kind", "conditions"), INVALID)
def test_invalid_conditions_rejected_by_model_and_database(
    session: Session, kind: TriggerType, conditions: dict
) -> None:
    with pytest.raises(ValueError, match="trigger"):
        Trigger(trigger_type=kind, conditions=conditions)
    hotel = f.hotel()
    session.add(hotel)
    session.flush()
    with pytest.raises(IntegrityError, match="ck_triggers_conditions_shape"):
        session.execute(
            text(
                "INSERT INTO triggers (hotel_id, name, trigger_type, conditions, message_template)"
                " VALUES (:h, 'T', CAST(:k AS trigger_type), CAST(:c AS jsonb), 'Hi')"
            ),
            {"h": hotel.id, "k": kind.value, "c": json.dumps(conditions)},
        )


def test_conditions_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        Trigger(trigger_type=TriggerType.EVENT_BASED, conditions=["checkout"])


def test_conditions_checked_when_type_changes_later() -> None:
    trig = Trigger(conditions={"event": "checkout"})
    with pytest.raises(ValueError, match="time_based"):
        trig.trigger_type = TriggerType.TIME_BASED


@pytest.mark.parametrize("priority", [0, -3])
def test_priority_must_be_positive(session: Session, priority: int) -> None:
    with pytest.raises(ValueError, match="priority"):
        Trigger(priority=priority)
    hotel = f.hotel()
    session.add(hotel)
    session.flush()
    with pytest.raises(IntegrityError, match="ck_triggers_priority_positive"):
        session.execute(
            text(
                "INSERT INTO triggers (hotel_id, name, trigger_type, conditions, message_template,"
                " priority) VALUES (:h, 'T', 'event_based', '{\"event\": \"x\"}', 'Hi', :p)"
            ),
            {"h": hotel.id, "p": priority},
        )


def test_unknown_trigger_type_is_refused(session: Session) -> None:
    with pytest.raises(StatementError, match="not among the defined enum values"):
        session.execute(select(Trigger).where(Trigger.trigger_type == "sometimes"))
    hotel = f.hotel()
    session.add(hotel)
    session.flush()
    with pytest.raises(DataError, match="invalid input value for enum trigger_type"):
        session.execute(
            text(
                "INSERT INTO triggers (hotel_id, name, trigger_type, message_template)"
                " VALUES (:h, 'T', 'sometimes', 'Hi')"
            ),
            {"h": hotel.id},
        )


def test_blank_template_refused() -> None:
    with pytest.raises(ValueError, match="message_template"):
        Trigger(message_template=" ")


def test_active_triggers_by_priority(session: Session) -> None:
    hotel = f.hotel()
    f.trigger(hotel, name="low", priority=5)
    f.trigger(hotel, name="high", priority=1)
    f.trigger(hotel, name="off", priority=1, is_active=False)
    session.add(hotel)
    session.flush()
    names = session.scalars(
        select(Trigger.name)
        .where(Trigger.hotel_id == hotel.id, Trigger.is_active)
        .order_by(Trigger.priority)
    ).all()
    assert names == ["high", "low"]
