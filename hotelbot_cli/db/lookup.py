"""Find the hotel an incoming WhatsApp message belongs to, before any tenant is set.

The bot's role sees no hotel until a tenant is set, so it asks the SECURITY DEFINER
function ``hotelbot_hotel_id_for_whatsapp`` (migration 007), which returns only the id
of an active hotel with that number, never its row.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, text

from hotelbot_cli.errors import UsageError
from hotelbot_cli.models.validation import E164

_LOOKUP = text("SELECT hotelbot_hotel_id_for_whatsapp(:number)")


def hotel_id_for_whatsapp(connection: Connection, whatsapp_number: str) -> uuid.UUID | None:
    """The id of the active hotel reached at ``whatsapp_number`` (E.164), else None."""
    if not E164.fullmatch(whatsapp_number or ""):
        raise UsageError(
            "the WhatsApp number must be E.164", "like +79161234567 (digits only after +)"
        )
    found = connection.execute(_LOOKUP, {"number": whatsapp_number}).scalar()
    return None if found is None else uuid.UUID(str(found))
