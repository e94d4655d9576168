"""Deleting a guest, a conversation or a message: the staff notifications keep their hotel.

A notification outlives the guest or message it was raised for. Until revision 012 the
foreign keys nulled ``guest_id``/``message_id`` themselves (``ON DELETE SET NULL
(guest_id)``); Citus supports no SET NULL on a key that includes the distribution column,
so the keys are NO ACTION now and these helpers null the references first, in the caller's
transaction. Every statement filters by ``hotel_id``: on Citus each one is routed to the
single shard of that hotel. Run them inside a tenant session (RLS applies) or as the owner.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import text

from hotelbot_cli.db.tenant import parse_hotel_id
from hotelbot_cli.errors import UsageError


class _Executes(Protocol):
    def execute(self, statement: Any, parameters: Any = ..., /) -> Any: ...


_NULL_GUEST = text(
    "UPDATE staff_notifications SET guest_id = NULL WHERE hotel_id = :h AND guest_id = :g"
)
_NULL_MESSAGES_OF_GUEST = text(
    "UPDATE staff_notifications SET message_id = NULL WHERE hotel_id = :h AND message_id IN"
    " (SELECT m.id FROM messages m JOIN conversations c"
    " ON c.hotel_id = m.hotel_id AND c.id = m.conversation_id"
    " WHERE m.hotel_id = :h AND c.hotel_id = :h AND c.guest_id = :g)"
)
_NULL_MESSAGES_OF_CONVERSATION = text(
    "UPDATE staff_notifications SET message_id = NULL WHERE hotel_id = :h AND message_id IN"
    " (SELECT m.id FROM messages m WHERE m.hotel_id = :h AND m.conversation_id = :c)"
)
_NULL_MESSAGE = text(
    "UPDATE staff_notifications SET message_id = NULL WHERE hotel_id = :h AND message_id = :m"
)


def _ids(hotel_id: Any, row_id: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """Both ids validated as UUIDs (anything else is a UsageError, never SQL)."""
    if isinstance(row_id, uuid.UUID):
        return parse_hotel_id(hotel_id), row_id
    try:
        return parse_hotel_id(hotel_id), uuid.UUID(str(row_id))
    except ValueError:
        raise UsageError(f"id {row_id!r} is not a UUID") from None


def delete_guest(conn: _Executes, hotel_id: Any, guest_id: Any) -> bool:
    """Delete a guest (its conversations and messages cascade); True when it existed."""
    h, g = _ids(hotel_id, guest_id)
    conn.execute(_NULL_GUEST, {"h": h, "g": g})
    conn.execute(_NULL_MESSAGES_OF_GUEST, {"h": h, "g": g})
    result = conn.execute(
        text("DELETE FROM guests WHERE hotel_id = :h AND id = :g"), {"h": h, "g": g}
    )
    return bool(result.rowcount)


def delete_conversation(conn: _Executes, hotel_id: Any, conversation_id: Any) -> bool:
    """Delete a conversation (its messages cascade); True when it existed."""
    h, c = _ids(hotel_id, conversation_id)
    conn.execute(_NULL_MESSAGES_OF_CONVERSATION, {"h": h, "c": c})
    result = conn.execute(
        text("DELETE FROM conversations WHERE hotel_id = :h AND id = :c"), {"h": h, "c": c}
    )
    return bool(result.rowcount)


def delete_message(conn: _Executes, hotel_id: Any, message_id: Any) -> bool:
    """Delete one message; True when it existed."""
    h, m = _ids(hotel_id, message_id)
    conn.execute(_NULL_MESSAGE, {"h": h, "m": m})
    result = conn.execute(
        text("DELETE FROM messages WHERE hotel_id = :h AND id = :m"), {"h": h, "m": m}
    )
    return bool(result.rowcount)
