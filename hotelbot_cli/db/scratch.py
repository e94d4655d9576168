"""Throwaway databases on the same server: created with a unique name, always dropped."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from hotelbot_cli.errors import DatabaseError


class ScratchUnavailable(DatabaseError):
    """The role may not create a database (no CREATEDB), or the server refused."""


@contextmanager
def scratch_database(engine: Engine, prefix: str) -> Iterator[URL]:
    """A new, empty database beside ``engine``'s, dropped (even when in use) on exit.

    Raises ScratchUnavailable when it cannot be created, so callers can fall back.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ScratchUnavailable(f"cannot create a scratch database: {reason}") from exc
    try:
        yield engine.url.set(database=name)
    finally:
        with contextlib.suppress(SQLAlchemyError), admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
