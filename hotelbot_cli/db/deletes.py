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


#: What each delete nulls first, then the table it deletes from; ``:r`` is the row's id.
_NULLS = {
    "guests": (
        "UPDATE staff_notifications SET guest_id = NULL WHERE hotel_id = :h AND guest_id = :r",
        "UPDATE staff_notifications SET message_id = NULL WHERE hotel_id = :h AND message_id IN"
        " (SELECT m.id FROM messages m JOIN conversations c"
        " ON c.hotel_id = m.hotel_id AND c.id = m.conversation_id"
        " WHERE m.hotel_id = :h AND c.hotel_id = :h AND c.guest_id = :r)",
    ),
    "conversations": (
        "UPDATE staff_notifications SET message_id = NULL WHERE hotel_id = :h AND message_id IN"
        " (SELECT m.id FROM messages m WHERE m.hotel_id = :h AND m.conversation_id = :r)",
    ),
    "messages": (
        "UPDATE staff_notifications SET message_id = NULL WHERE hotel_id = :h AND message_id = :r",
    ),
}


def _ids(hotel_id: Any, row_id: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """Both ids validated as UUIDs (anything else is a UsageError, never SQL)."""
    if isinstance(row_id, uuid.UUID):
        return parse_hotel_id(hotel_id), row_id
    try:
        return parse_hotel_id(hotel_id), uuid.UUID(str(row_id))
    except ValueError:
        raise UsageError(f"id {row_id!r} is not a UUID") from None


def _delete(conn: _Executes, table: str, hotel_id: Any, row_id: Any) -> bool:
    """Null what refers to the row, then delete it from ``table``; True when it existed."""
    h, r = _ids(hotel_id, row_id)
    params = {"h": h, "r": r}
    for statement in _NULLS[table]:
        conn.execute(text(statement), params)
    result = conn.execute(text(f"DELETE FROM {table} WHERE hotel_id = :h AND id = :r"), params)
    return bool(result.rowcount)


def delete_guest(conn: _Executes, hotel_id: Any, guest_id: Any) -> bool:
    """Delete a guest (its conversations and messages cascade); True when it existed."""
    return _delete(conn, "guests", hotel_id, guest_id)


def delete_conversation(conn: _Executes, hotel_id: Any, conversation_id: Any) -> bool:
    """Delete a conversation (its messages cascade); True when it existed."""
    return _delete(conn, "conversations", hotel_id, conversation_id)


def delete_message(conn: _Executes, hotel_id: Any, message_id: Any) -> bool:
    """Delete one message; True when it existed."""
    return _delete(conn, "messages", hotel_id, message_id)
