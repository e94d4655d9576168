"""Create guests (spec 2.3).

Revision ID: 002
Revises: 001
Create Date: 2026-11-24
"""

from alembic import op

revision = "002"
down_revision = "001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE guests (
            id UUID DEFAULT gen_random_uuid() NOT NULL,
            hotel_id UUID NOT NULL,
            phone VARCHAR(20) NOT NULL,
            name VARCHAR(255),
            preferences JSONB DEFAULT '{}'::jsonb,
            last_interaction TIMESTAMP WITH TIME ZONE,
            created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            updated_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            CONSTRAINT pk_guests PRIMARY KEY (id),
            CONSTRAINT fk_guests_hotel_id_hotels FOREIGN KEY (hotel_id)
                REFERENCES hotels (id) ON DELETE CASCADE,
            CONSTRAINT uq_guests_hotel_id_phone UNIQUE (hotel_id, phone)
        )
        """
    )
    op.execute("CREATE INDEX idx_guests_hotel_phone ON guests (hotel_id, phone)")
    op.execute("CREATE INDEX idx_guests_last_interaction ON guests (last_interaction)")


def downgrade() -> None:
    op.execute("DROP TABLE guests")
