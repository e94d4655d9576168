"""Correlation id and tenant of the current unit of work, carried in contextvars.

Context variables follow threads' and asyncio tasks' own contexts, so every log line
of one request (or one CLI run) carries the same correlation id and hotel, with no
argument threaded through the call chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

correlation_id_var: ContextVar[str | None] = ContextVar("hotelbot_correlation_id", default=None)
hotel_id_var: ContextVar[str | None] = ContextVar("hotelbot_hotel_id", default=None)

_MAX_ID = 128


def new_correlation_id(prefix: str = "hb") -> str:
    """A fresh, short, unique id such as ``hb-3f2a9c1d7b4e``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def clean_correlation_id(value: str | None) -> str | None:
    """An incoming id (header, option) made safe to log: printable ASCII, bounded length."""
    if not value:
        return None
    text = "".join(ch for ch in value if 33 <= ord(ch) < 127)[:_MAX_ID]
    return text or None


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def current_hotel_id() -> str | None:
    return hotel_id_var.get()


def set_correlation_id(value: str | None) -> str:
    """Set the id for the rest of this context (a CLI run); returns the id in force."""
    cid = clean_correlation_id(value) or new_correlation_id()
    correlation_id_var.set(cid)
    return cid


@contextmanager
def bind_correlation_id(value: str | None = None) -> Iterator[str]:
    """Bind a correlation id (given or new) for the duration of the block."""
    cid = clean_correlation_id(value) or new_correlation_id()
    token = correlation_id_var.set(cid)
    try:
        yield cid
    finally:
        correlation_id_var.reset(token)


@contextmanager
def bind_tenant(hotel_id: Any) -> Iterator[None]:
    """Bind the hotel whose data the block works on (shown as ``hotel_id`` in log lines)."""
    token = hotel_id_var.set(None if hotel_id is None else str(hotel_id))
    try:
        yield
    finally:
        hotel_id_var.reset(token)
