"""A thin facade over ``alembic.command``: one function per verb, an advisory lock, plain results.

The names callers use, from the modules that own them:

- :mod:`~hotelbot_cli.migrations.scripts` — the shipped scripts, a Config, their revisions;
- :mod:`~hotelbot_cli.migrations.status` — where the database is against the head(s);
- :mod:`~hotelbot_cli.migrations.run` — upgrade, downgrade and stamp, online and retried
  (through :mod:`~hotelbot_cli.migrations.online` under :mod:`~hotelbot_cli.migrations.lock`);
- :mod:`~hotelbot_cli.migrations.offline` — the SQL of a range, without a database.

``db check`` is :mod:`hotelbot_cli.migration_check`; new revision files,
:mod:`hotelbot_cli.migration_authoring`. Importing this package imports no Alembic or
SQLAlchemy: each function imports what it needs when called.
"""

from hotelbot_cli.migrations.lock import MIGRATION_LOCK_KEY
from hotelbot_cli.migrations.offline import offline_sql, relative_steps
from hotelbot_cli.migrations.run import MigrationResult, downgrade, stamp, upgrade
from hotelbot_cli.migrations.scripts import (
    RevisionInfo,
    heads,
    history,
    make_config,
    script_directory,
    script_location,
)
from hotelbot_cli.migrations.status import (
    HeadStatus,
    current,
    head_status,
    is_at_head,
    require_head,
)

__all__ = [
    "MIGRATION_LOCK_KEY",
    "HeadStatus",
    "MigrationResult",
    "RevisionInfo",
    "current",
    "downgrade",
    "head_status",
    "heads",
    "history",
    "is_at_head",
    "make_config",
    "offline_sql",
    "relative_steps",
    "require_head",
    "script_directory",
    "script_location",
    "stamp",
    "upgrade",
]
