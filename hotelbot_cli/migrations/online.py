"""The runner ``migration_steps`` talks to: every transaction a migration run begins is bounded.

It is :class:`hotelbot_cli.migration_steps.Runner`, handed to the revisions through the
Alembic config, and it keeps the run's account (the revision reached, the steps committed,
the warnings raised) for :mod:`hotelbot_cli.migrations.run`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hotelbot_cli.migrations.lock import take_migration_lock

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationInfo
    from psycopg.errors import Diagnostic
    from sqlalchemy import Connection, RootTransaction


class Superseded(Exception):
    """Another upgrader moved the version while this one was between transactions."""


class OnlineRunner:
    """Bounded transactions on one connection, and what they committed.

    Each transaction sets ``lock_timeout`` (SET LOCAL: nothing leaks to the next user of a
    pooled server connection) and takes the migration lock as a TRANSACTION-level advisory
    lock, so it holds through PgBouncer in transaction mode; after a boundary the version
    is re-read under the lock.
    """

    def __init__(
        self,
        conn: Connection,
        lock_timeout: float,
        lock_wait: float,
        deadline: float,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.conn = conn
        self.lock_timeout = lock_timeout
        self.deadline = deadline
        self.lock_wait = lock_wait
        self.progress = progress
        self.trans: RootTransaction | None = None
        self.at: tuple[str, ...] = ()
        self.pending: list[str] = []
        self.committed: list[str] = []
        self.notes: list[str] = []
        driver = getattr(conn.connection, "driver_connection", None)
        if driver is not None and hasattr(driver, "add_notice_handler"):
            driver.add_notice_handler(self._notice)

    def _notice(self, diag: Diagnostic) -> None:
        """A revision's RAISE WARNING reaches the user (a NOTICE is only chatter)."""
        if getattr(diag, "severity_nonlocalized", None) == "WARNING":
            self.notes.append(f"warning: {diag.message_primary}")

    def on_version_apply(self, *, step: MigrationInfo, **_: object) -> None:
        """Alembic's callback after each revision: record it (committed with the transaction)."""
        arrow = "->" if step.is_upgrade else "<-"
        doc = getattr(step.up_revision, "doc", None) or ""  # a Script: the revision's file
        self.pending.append(f"{arrow} {step.up_revision_id}  {doc.strip()}")
        if self.progress is not None:
            self.progress(self.pending[-1])
        if step.is_upgrade:
            self.at = step.up_revision_ids[:1]
        else:
            self.at = tuple(step.down_revision_ids)

    def begin(self) -> None:
        self.trans = self.conn.begin()
        self.conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
        take_migration_lock(self.conn, self.deadline, self.lock_wait)

    def read_version(self) -> tuple[str, ...]:
        from sqlalchemy import text

        if self.conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
            return ()
        rows = self.conn.exec_driver_sql("SELECT version_num FROM alembic_version")
        return tuple(sorted(r[0] for r in rows))

    def commit(self) -> None:
        assert self.trans is not None
        self.trans.commit()
        self.trans = None
        self.committed += self.pending
        self.pending.clear()

    def boundary(self) -> None:
        self.commit()
        self.begin()
        if self.read_version() != tuple(sorted(self.at)):
            raise Superseded

    @contextmanager
    def outside(self) -> Iterator[None]:
        self.commit()
        self.conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield
        finally:
            if self.conn.in_transaction():
                self.conn.commit()  # SQLAlchemy's autobegin; nothing is sent in AUTOCOMMIT
            self.conn.execution_options(isolation_level=self.conn.default_isolation_level)
        self.begin()
        if self.read_version() != tuple(sorted(self.at)):
            raise Superseded

    def note(self, message: str) -> None:
        self.notes.append(message)
