"""The ASGI middleware binds a correlation id and tenant per request and returns the id."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hotelbot_cli.observability.context import current_correlation_id, current_hotel_id
from hotelbot_cli.observability.middleware import DBMiddleware

HOTEL = str(uuid.uuid4())


async def _app(scope: Any, receive: Any, send: Any) -> None:
    seen = f"{current_correlation_id()}|{current_hotel_id()}".encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"old")]}
    )
    await send({"type": "http.response.body", "body": seen})


def _call(app: Any, headers: list[tuple[bytes, bytes]], kind: str = "http") -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app({"type": kind, "headers": headers}, receive, send))
    return sent


def test_incoming_request_id_and_tenant_are_bound_and_returned() -> None:
    sent = _call(
        DBMiddleware(_app), [(b"X-Request-ID", b"req-42"), (b"x-hotel-id", HOTEL.encode())]
    )
    assert sent[0]["headers"] == [(b"x-request-id", b"req-42")]
    assert sent[1]["body"] == f"req-42|{HOTEL}".encode()
    assert current_correlation_id() != "req-42"  # unbound after the request


def test_missing_id_is_made_and_invalid_tenant_ignored() -> None:
    sent = _call(DBMiddleware(_app), [(b"x-hotel-id", b"'; DROP TABLE hotels")])
    rid = dict(sent[0]["headers"])[b"x-request-id"].decode()
    assert rid.startswith("hb-") and sent[1]["body"] == f"{rid}|None".encode()


def test_tenant_resolver_and_non_http_scopes() -> None:
    app = DBMiddleware(_app, tenant_resolver=lambda scope: uuid.UUID(HOTEL))
    assert _call(app, [])[1]["body"].endswith(HOTEL.encode())
    calls: list[str] = []

    async def lifespan(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    _call(DBMiddleware(lifespan), [], kind="lifespan")
    assert calls == ["lifespan"]
