"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from hotelbot_cli import migration_steps as steps
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

# The bot runs while this migrates. `hotelbot db upgrade` gives every transaction a short
# lock_timeout and retries; you keep each lock short and every step safe to re-run (an
# interrupted revision runs again from its first step). Patterns (see README, Migrations):
#
#   steps.lock_timeout()                        # first, if you use bare op.* calls
#   steps.execute("ALTER TABLE t ADD COLUMN IF NOT EXISTS c uuid")        # nullable first
#   steps.backfill("t", "UPDATE t SET c = … WHERE c IS NULL AND id BETWEEN :lower AND :upper")
#   steps.execute("ALTER TABLE t ADD CONSTRAINT ck_t_c_not_null CHECK (c IS NOT NULL) NOT VALID",
#                 unless="SELECT 1 FROM pg_constraint WHERE conname = 'ck_t_c_not_null'")
#   steps.commit("t")                           # release t's lock before VALIDATE
#   steps.validate("t", "ck_t_c_not_null")      # SHARE UPDATE EXCLUSIVE: writes go on
#   steps.execute("ALTER TABLE t ALTER COLUMN c SET NOT NULL")  # proven by the check: no scan
#   steps.execute("ALTER TABLE t ADD CONSTRAINT fk_… FOREIGN KEY (…) REFERENCES … NOT VALID",
#                 unless=…); steps.commit("t"); steps.validate("t", "fk_…")
#   steps.create_index("CREATE INDEX ix_t_c ON t (c)")   # CONCURRENTLY, outside the transaction
#   steps.drop_index("ix_old", "t")                       # CONCURRENTLY
#   steps.commit("t")                           # after each table: never hold one while queueing
#
# Avoid on populated tables: a single UPDATE/DELETE of many rows, ALTER COLUMN … TYPE,
# a volatile DEFAULT, CHECK/FOREIGN KEY without NOT VALID, CREATE INDEX without the helper.
# Run `hotelbot db lint ${up_revision}` before you commit.


def upgrade() -> None:
    steps.lock_timeout()
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    steps.lock_timeout()
    ${downgrades if downgrades else "pass"}
