"""Find the hotel an incoming WhatsApp message belongs to, before any tenant is set.

The bot's role sees no hotel until a tenant is set, so it asks the SECURITY DEFINER
function ``hotelbot_hotel_id_for_whatsapp`` (migration 007), which returns only the id
of an active hotel with that number, never its row.

:func:`find_hotel` is the bot's hot path, the first query of every message: one
statement that is its own transaction, on a pooled connection that goes back as it came,
so its check-in needs no reset. :func:`hotel_id_for_whatsapp` asks on a connection the
caller already holds.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, Engine, text

from hotelbot_cli.db.engine import get_app_engine, leave_untouched
from hotelbot_cli.errors import UsageError
from hotelbot_cli.models.validation import E164
from hotelbot_cli.observability import raw_connection

LOOKUP_SQL = "SELECT hotelbot_hotel_id_for_whatsapp(%(number)s)"
_LOOKUP = text("SELECT hotelbot_hotel_id_for_whatsapp(:number)")


def _checked(whatsapp_number: str) -> str:
    if not E164.fullmatch(whatsapp_number or ""):
        raise UsageError(
            "the WhatsApp number must be E.164", "like +79161234567 (digits only after +)"
        )
    return whatsapp_number


def _hotel_id(found: object) -> uuid.UUID | None:
    return None if found is None else uuid.UUID(str(found))


def hotel_id_for_whatsapp(connection: Connection, whatsapp_number: str) -> uuid.UUID | None:
    """The id of the active hotel reached at ``whatsapp_number`` (E.164), else None."""
    number = _checked(whatsapp_number)
    return _hotel_id(connection.execute(_LOOKUP, {"number": number}).scalar())


def find_hotel(whatsapp_number: str, engine: Engine | None = None) -> uuid.UUID | None:
    """:func:`hotel_id_for_whatsapp` on a connection of ``engine``'s pool (default: the bot's
    engine), in one round trip and without the check-in reset's.

    The statement runs in autocommit mode (a client-side switch: no BEGIN, no COMMIT) and
    its function's setting is transaction-local, so the session is left exactly as the pool
    handed it out; a failed lookup leaves the connection to the usual reset.
    """
    number = _checked(whatsapp_number)
    pooled = raw_connection(engine or get_app_engine())
    try:
        raw = pooled.driver_connection
        before = raw.autocommit
        raw.autocommit = True
        try:
            row = raw.execute(LOOKUP_SQL, {"number": number}).fetchone()
        finally:  # the pool's next user gets the connection's own mode back, whatever happened
            raw.autocommit = before
        leave_untouched(pooled)
    finally:
        pooled.close()
    return _hotel_id(row[0] if row else None)
