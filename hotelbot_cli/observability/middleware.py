"""ASGI middleware (the spec's ``db_middleware``): one correlation id and tenant per request.

Framework-free: wraps any ASGI 3 application. It takes ``X-Request-ID`` from the
request (or makes one), binds it and the request's hotel (``X-Hotel-ID``, or what
``tenant_resolver`` returns) in contextvars for the request's duration, so every SQL
log line of the request carries them, and returns the id in the response headers.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hotelbot_cli.observability.context import (
    bind_correlation_id,
    bind_tenant,
    clean_correlation_id,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _valid_uuid(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        return None


class DBMiddleware:
    """Bind correlation id and tenant around each HTTP/WebSocket request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_id_header: str = "x-request-id",
        tenant_header: str = "x-hotel-id",
        tenant_resolver: Callable[[Scope], Any] | None = None,
    ) -> None:
        self.app = app
        self.request_id_header = request_id_header.lower().encode("latin-1")
        self.tenant_header = tenant_header.lower().encode("latin-1")
        self.tenant_resolver = tenant_resolver

    def _header(self, scope: Scope, name: bytes) -> str | None:
        for key, value in scope.get("headers") or ():
            if key.lower() == name:
                return bytes(value).decode("latin-1")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        incoming = clean_correlation_id(self._header(scope, self.request_id_header))
        raw_tenant = (
            self.tenant_resolver(scope)
            if self.tenant_resolver is not None
            else self._header(scope, self.tenant_header)
        )
        hotel_id = _valid_uuid(raw_tenant)  # an invalid id is never bound nor logged
        with bind_correlation_id(incoming) as cid, bind_tenant(hotel_id):
            header = (self.request_id_header, cid.encode("latin-1"))

            async def send_with_id(message: Message) -> None:
                if message.get("type") == "http.response.start":
                    headers = [h for h in message.get("headers") or () if h[0].lower() != header[0]]
                    message["headers"] = [*headers, header]
                await send(message)

            scope.setdefault("state", {})["correlation_id"] = cid
            await self.app(scope, receive, send_with_id)


#: The spec's name for it.
db_middleware = DBMiddleware
