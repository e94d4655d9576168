"""Tenant-scoped sessions: the hotel is set transaction-locally, in the same round trip as BEGIN.

``set_config(..., true)`` lasts until the end of the transaction only, so a pooled
connection never carries one hotel's context into the next user's transaction.
The value is always sent as a bound parameter after being validated as a UUID.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from hotelbot_cli.errors import UsageError
from hotelbot_cli.observability.context import bind_tenant

TENANT_SETTING = "app.current_hotel_id"


def parse_hotel_id(value: Any) -> uuid.UUID:
    """Validate a hotel id (UUID or its text); anything else is a UsageError."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise UsageError(f"hotel id {value!r} is not a UUID") from None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def tenant_statements(hotel_id: Any, role: str | None = None) -> list[str]:
    """The statements that bind the current transaction to ``hotel_id`` (and ``role``).

    The one owner of tenant binding: ``tenant_session``, ``bench`` and ``rls-check``'s
    probes all send exactly these. Literal SQL (no parameters): the hotel id is validated
    as a UUID first, the role is quoted. Run them right after BEGIN; they end with the
    transaction. ``hotel_id=None`` binds the role with no tenant (the "forgotten tenant").
    """
    calls = []
    if role:
        calls.append(f"set_config('role', {_literal(role)}, true)")
    if hotel_id is not None:
        hid = parse_hotel_id(hotel_id)
        calls.append(f"set_config({_literal(TENANT_SETTING)}, {_literal(str(hid))}, true)")
    else:
        calls.append(f"set_config({_literal(TENANT_SETTING)}, '', true)")
    return ["SELECT " + ", ".join(calls)]


def set_tenant(connection: Connection, hotel_id: Any, role: str | None = None) -> uuid.UUID:
    """Bind the current transaction of ``connection`` to ``hotel_id`` (and ``role``, if given).

    psycopg's pipeline sends the implicit BEGIN and the binding together: setting the
    tenant costs no extra round trip. It ends with the transaction.
    """
    hid = parse_hotel_id(hotel_id)
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.pipeline():
        for statement in tenant_statements(hid, role):
            raw.execute(statement)
    return hid


async def set_tenant_async(
    connection: AsyncConnection, hotel_id: Any, role: str | None = None
) -> uuid.UUID:
    """Async twin of :func:`set_tenant`."""
    hid = parse_hotel_id(hotel_id)
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    async with raw.pipeline():
        for statement in tenant_statements(hid, role):
            await raw.execute(statement)
    return hid


@contextmanager
def tenant_session(
    hotel_id: Any, factory: sessionmaker[Session] | None = None, role: str | None = None
) -> Iterator[Session]:
    """A Session in one transaction bound to ``hotel_id``; committed on success, else rolled back.

    ``role`` (e.g. ``app_user``) is assumed with SET LOCAL ROLE for this transaction only.
    """
    hid = parse_hotel_id(hotel_id)
    if factory is None:
        from hotelbot_cli.db.engine import session_factory

        factory = session_factory()
    with bind_tenant(hid), factory() as session, session.begin():
        set_tenant(session.connection(), hid, role)
        yield session


@asynccontextmanager
async def async_tenant_session(
    hotel_id: Any, engine: AsyncEngine | None = None, role: str | None = None
) -> AsyncIterator[AsyncSession]:
    """Async twin of :func:`tenant_session`."""
    hid = parse_hotel_id(hotel_id)
    from hotelbot_cli.db.engine import async_session_factory

    with bind_tenant(hid):
        async with async_session_factory(engine)() as session, session.begin():
            await set_tenant_async(await session.connection(), hid, role)
            yield session
