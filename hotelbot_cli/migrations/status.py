"""Where the database is against the scripts' head(s), read without writing anything.

The one owner of "at head": ``db current --check``, and the commands that need the schema
at head before they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hotelbot_cli.errors import CheckFailed, NotAtHead
from hotelbot_cli.migrations.scripts import heads

if TYPE_CHECKING:
    from sqlalchemy import Engine


def current(engine: Engine) -> tuple[str, ...]:
    """The revision(s) the database is at, read in a READ ONLY transaction (writes nothing)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        revs = tuple(MigrationContext.configure(conn).get_current_heads())
        conn.rollback()
    return revs


@dataclass(frozen=True)
class HeadStatus:
    """Where the database is against the scripts' head(s): the one owner of "at head"."""

    current: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)

    def describe(self) -> str:
        """``the database is at X, not at head Y`` (for an error line)."""
        at = ", ".join(self.current) or "base (empty)"
        return f"the database is at {at}, not at head {', '.join(self.heads)}"

    def failure(self) -> CheckFailed | None:
        """The verdict of ``db current --check``."""
        if self.at_head:
            return None
        return CheckFailed(self.describe(), "run `hotelbot db upgrade`")


def head_status(engine: Engine) -> HeadStatus:
    """The database's revision(s) and the scripts' head(s), read-only."""
    return HeadStatus(current(engine), heads())


def is_at_head(engine: Engine) -> bool:
    """True when the database is at every head of the migration scripts."""
    return head_status(engine).at_head


def require_head(engine: Engine) -> None:
    """Raise NotAtHead (saying which command to run) unless the database is at head."""
    status = head_status(engine)
    if not status.at_head:
        raise NotAtHead(status.describe(), "run `hotelbot db upgrade` first")
