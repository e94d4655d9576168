"""Create the trigger_type enum and triggers (spec 2.4).

Revision ID: 003
Revises: 002
Create Date: 2026-11-24
"""

from alembic import op

revision = "003"
down_revision = "002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TYPE trigger_type AS ENUM ('time_based', 'condition_based', 'event_based')")
    op.execute(
        """
        CREATE TABLE triggers (
            id UUID DEFAULT gen_random_uuid() NOT NULL,
            hotel_id UUID NOT NULL,
            name VARCHAR(255) NOT NULL,
            trigger_type trigger_type NOT NULL,
            conditions JSONB DEFAULT '{}'::jsonb NOT NULL,
            message_template TEXT NOT NULL,
            is_active BOOLEAN DEFAULT true,
            priority INTEGER DEFAULT 1,
            created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            updated_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            CONSTRAINT pk_triggers PRIMARY KEY (id),
            CONSTRAINT fk_triggers_hotel_id_hotels FOREIGN KEY (hotel_id)
                REFERENCES hotels (id) ON DELETE CASCADE
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE triggers")
    op.execute("DROP TYPE trigger_type")
