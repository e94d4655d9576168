"""Create hotels (spec 2.2).

Revision ID: 001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE hotels (
            id UUID DEFAULT gen_random_uuid() NOT NULL,
            name VARCHAR(255) NOT NULL,
            whatsapp_number VARCHAR(20) NOT NULL,
            green_api_instance_id VARCHAR(50),
            green_api_token VARCHAR(255),
            settings JSONB DEFAULT '{}'::jsonb,
            is_active BOOLEAN DEFAULT true,
            created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            updated_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            CONSTRAINT pk_hotels PRIMARY KEY (id),
            CONSTRAINT uq_hotels_whatsapp_number UNIQUE (whatsapp_number)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE hotels")
