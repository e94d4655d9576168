"""Python-side validation mirroring the database CHECK constraints, for early, readable errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hotelbot_cli.models.base import E164_SQL
from hotelbot_cli.models.enums import TriggerType

E164 = re.compile(E164_SQL)

#: Keys a time-based trigger may use, each a number of hours.
TIME_KEYS = ("hours_after_checkin", "hours_before_checkout", "hours_after_checkout")


def e164(field: str, value: str | None) -> str | None:
    """Accept an E.164 number such as +79161234567 (None passes: nullability is the column's)."""
    if value is not None and not E164.fullmatch(value):
        raise ValueError(f"{field} must be an E.164 number like +79161234567")
    return value


def not_blank(field: str, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError(f"{field} must not be empty")
    return value


def sentiment_score(value: Decimal | float | None) -> Decimal | float | None:
    if value is not None and not -1 <= value <= 1:
        raise ValueError("sentiment_score must be between -1 and 1")
    return value


def priority(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ValueError("priority must be at least 1")
    return value


def trigger_conditions(kind: TriggerType | str | None, conditions: Any) -> None:
    """The shape of ``conditions`` per trigger type (the same rule as ck_triggers_conditions_shape).

    - time_based: a number under one of TIME_KEYS, e.g. {"hours_after_checkin": 2};
    - condition_based: a non-empty object, e.g. {"room_type": "suite"};
    - event_based: a string "event", e.g. {"event": "checkout"}.
    """
    if kind is None or conditions is None:
        return
    if not isinstance(conditions, Mapping):
        raise ValueError("conditions must be a JSON object")
    kind = TriggerType(kind)
    if kind is TriggerType.TIME_BASED:
        if not any(_is_number(conditions.get(key)) for key in TIME_KEYS):
            raise ValueError(
                "a time_based trigger needs a number under one of "
                + ", ".join(TIME_KEYS)
                + ', e.g. {"hours_after_checkin": 2}'
            )
    elif kind is TriggerType.CONDITION_BASED:
        if not conditions:
            raise ValueError(
                'a condition_based trigger needs conditions, e.g. {"room_type": "suite"}'
            )
    elif not isinstance(conditions.get("event"), str) or not conditions["event"]:
        raise ValueError('an event_based trigger needs an "event" name, e.g. {"event": "checkout"}')


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: The same rule in SQL, for the CHECK constraint (kept beside its Python twin). COALESCE:
#: a missing key makes the comparison NULL, and a NULL CHECK would pass.
TRIGGER_CONDITIONS_SQL = (
    "jsonb_typeof(conditions) = 'object' AND COALESCE(CASE trigger_type"
    " WHEN 'time_based' THEN "
    + " OR ".join(f"jsonb_typeof(conditions -> '{key}') = 'number'" for key in TIME_KEYS)
    + " WHEN 'condition_based' THEN conditions <> '{}'::jsonb"
    " WHEN 'event_based' THEN jsonb_typeof(conditions -> 'event') = 'string'"
    " AND conditions ->> 'event' <> '' ELSE false END, false)"
)
