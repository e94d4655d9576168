"""Engines, sessions, the connection pool and tenant-scoped sessions."""

from hotelbot_cli.db.engine import (
    async_session_factory,
    get_app_engine,
    get_db,
    get_engine,
    make_app_engine,
    make_async_engine,
    make_engine,
    resolve_url,
    session_factory,
)
from hotelbot_cli.db.tenant import (
    APP_ROLE,
    TENANT_SETTING,
    async_tenant_session,
    parse_hotel_id,
    set_tenant,
    set_tenant_async,
    tenant_binding,
    tenant_session,
    tenant_statements,
)

__all__ = [
    "APP_ROLE",
    "TENANT_SETTING",
    "async_session_factory",
    "async_tenant_session",
    "get_app_engine",
    "get_db",
    "get_engine",
    "make_app_engine",
    "make_async_engine",
    "make_engine",
    "parse_hotel_id",
    "resolve_url",
    "session_factory",
    "set_tenant",
    "set_tenant_async",
    "tenant_binding",
    "tenant_session",
    "tenant_statements",
]
