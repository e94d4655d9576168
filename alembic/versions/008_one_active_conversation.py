"""One active conversation per guest.

Find-or-open of a guest's active conversation raced: two messages arriving together
could each open one. A partial unique index makes the database refuse the second, and
the bot's ``INSERT … ON CONFLICT DO NOTHING`` then reads the winner. Duplicates already
stored are closed first, the latest one staying active. FORCE row level security binds
the owner too, so that UPDATE runs with FORCE lifted inside this transaction only (a short
ACCESS EXCLUSIVE on conversations, bounded by lock_timeout; skipped for a superuser).
The index is built CONCURRENTLY on a populated table.

Revision ID: 008
Revises: 007
Create Date: 2026-11-24
"""

from alembic import op
from hotelbot_cli import migration_steps as steps

revision = "008"
down_revision = "007"
branch_labels = None
depends_on = None

CLOSE_DUPLICATES = """
DO $$
DECLARE
    forced boolean;
BEGIN
    -- FORCE binds only a non-superuser, non-BYPASSRLS owner: only then is it lifted.
    SELECT relforcerowsecurity AND NOT (SELECT rolsuper OR rolbypassrls
                                          FROM pg_catalog.pg_roles WHERE rolname = current_user)
      INTO forced FROM pg_catalog.pg_class WHERE oid = 'conversations'::regclass;
    IF forced THEN
        ALTER TABLE conversations NO FORCE ROW LEVEL SECURITY;
    END IF;
    UPDATE conversations c SET status = 'closed'
     WHERE c.status = 'active'
       AND EXISTS (
           SELECT 1 FROM conversations n
            WHERE n.hotel_id = c.hotel_id AND n.guest_id = c.guest_id AND n.status = 'active'
              AND (coalesce(n.last_message_at, '-infinity'), n.id)
                > (coalesce(c.last_message_at, '-infinity'), c.id));
    IF forced THEN
        ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
    END IF;
END
$$
"""


def upgrade() -> None:
    steps.execute(CLOSE_DUPLICATES)
    # Built CONCURRENTLY on a populated table; a duplicate the bot opens in between makes
    # the build fail and leave an invalid index, which the re-run drops and rebuilds.
    steps.create_index(
        "CREATE UNIQUE INDEX uq_conversations_hotel_id_guest_id_active"
        " ON conversations (hotel_id, guest_id) WHERE status = 'active'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX uq_conversations_hotel_id_guest_id_active")
