"""Map driver and SQLAlchemy exceptions to the library's one-line errors."""

from __future__ import annotations

from hotelbot_cli.errors import (
    ConnectionFailed,
    DatabaseError,
    HotelbotError,
    PoolTimeout,
    UsageError,
)
from hotelbot_cli.settings import redact_text

#: SQLSTATE classes that mean "you cannot use this server/database/login".
_CONNECTION_SQLSTATES = ("08", "28", "3D", "57P")


def _first_line(exc: BaseException) -> str:
    text = redact_text(str(exc)).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.removeprefix("(psycopg.OperationalError) ").strip()


#: SQLSTATEs of a session the server ended (admin or crash shutdown, pg_terminate_backend).
_LOST_SQLSTATES = ("57P01", "57P02", "08003")
#: libpq's and psycopg's words for a connection that was open and went away.
_LOST_TEXT = (
    "server closed the connection",
    "the connection is lost",
    "the connection is closed",
    "terminating connection",
    "consuming input failed",
    "sending query failed",
    "could not receive data",
)


def _lost(exc: BaseException, sqlstate: str) -> bool:
    """True for a connection that worked and then went away (not one that never opened)."""
    text = str(exc)
    return sqlstate in _LOST_SQLSTATES or any(marker in text for marker in _LOST_TEXT)


def translate(exc: BaseException) -> HotelbotError | None:
    """A HotelbotError for a database exception we know how to explain, else None."""
    import psycopg
    from sqlalchemy import exc as sa_exc

    orig = getattr(exc, "orig", None) or exc
    if isinstance(exc, sa_exc.TimeoutError):
        return PoolTimeout(
            "no free database connection within the pool timeout",
            "raise HOTELBOT_POOL_SIZE / HOTELBOT_MAX_OVERFLOW or release connections sooner",
        )
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if isinstance(orig, psycopg.OperationalError) and _lost(orig, sqlstate):
        return ConnectionFailed(
            f"lost the connection to the database: {_first_line(orig)}",
            "the server stopped or ended the session; what it interrupted was rolled back",
        )
    if isinstance(orig, psycopg.OperationalError) and (
        not sqlstate or sqlstate.startswith(_CONNECTION_SQLSTATES)
    ):
        return ConnectionFailed(
            f"cannot connect to the database: {_first_line(orig)}",
            "check DATABASE_URL and that the server is running",
        )
    if isinstance(orig, psycopg.errors.LockNotAvailable):
        from hotelbot_cli.errors import LockTimeout

        return LockTimeout(f"lock timeout: {_first_line(orig)}")
    if isinstance(orig, psycopg.errors.InvalidTextRepresentation | psycopg.errors.DataException):
        return UsageError(f"invalid value: {_first_line(orig)}")
    if isinstance(orig, psycopg.Error):
        return DatabaseError(f"database error: {_first_line(orig)}")
    return None
