"""One active conversation per guest.

Find-or-open of a guest's active conversation raced: two messages arriving together
could each open one. A partial unique index makes the database refuse the second, and
the bot's ``INSERT … ON CONFLICT DO NOTHING`` then reads the winner. Duplicates already
stored are closed first, the latest one staying active. FORCE row level security binds
the owner too, so that UPDATE runs with FORCE lifted inside this transaction only.

Revision ID: 008
Revises: 007
Create Date: 2026-11-24
"""

from alembic import op

revision = "008"
down_revision = "007"
branch_labels = None
depends_on = None

CLOSE_DUPLICATES = """
DO $$
DECLARE
    forced boolean;
BEGIN
    SELECT relforcerowsecurity INTO forced FROM pg_catalog.pg_class
     WHERE oid = 'conversations'::regclass;
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
    op.execute(CLOSE_DUPLICATES)
    op.execute(
        "CREATE UNIQUE INDEX uq_conversations_hotel_id_guest_id_active"
        " ON conversations (hotel_id, guest_id) WHERE status = 'active'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX uq_conversations_hotel_id_guest_id_active")
