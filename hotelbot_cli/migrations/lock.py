"""The migration lock: one advisory key that every schema change takes, and a bounded wait.

``db upgrade``/``downgrade``/``stamp`` take it in every transaction they begin, and
``db distribute`` in its one transaction: a TRANSACTION-level lock, so it holds through
PgBouncer in transaction mode and is released by the commit.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hotelbot_cli.errors import LockTimeout

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: pg_advisory_lock key taken while migrating: b"hotelbot" as a big-endian bigint.
MIGRATION_LOCK_KEY = int.from_bytes(b"hotelbot", "big")


def take_migration_lock(conn: Connection, deadline: float, waited: float) -> None:
    """Take the lock for ``conn``'s transaction, polling until ``deadline`` (monotonic).

    ``waited`` is the whole wait allowed, for the message: a caller retrying several
    transactions shares one deadline among them.
    """
    while not conn.exec_driver_sql(
        f"SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ).scalar():
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"another migration holds the lock (waited {waited:g} s)",
                "wait for it to finish, or raise HOTELBOT_LOCK_TIMEOUT",
            )
        time.sleep(0.1)
