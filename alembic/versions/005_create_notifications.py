"""Create staff_notifications and its enums (spec 2.6).

Revision ID: 005
Revises: 004
Create Date: 2026-11-24
"""

from alembic import op

revision = "005"
down_revision = "004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TYPE notification_type AS ENUM "
        "('negative_sentiment', 'urgent_request', 'system_alert')"
    )
    op.execute(
        "CREATE TYPE notification_status AS ENUM ('pending', 'sent', 'failed', 'acknowledged')"
    )
    op.execute(
        """
        CREATE TABLE staff_notifications (
            id UUID DEFAULT gen_random_uuid() NOT NULL,
            hotel_id UUID NOT NULL,
            guest_id UUID,
            message_id UUID,
            notification_type notification_type NOT NULL,
            title VARCHAR(255) NOT NULL,
            content TEXT NOT NULL,
            status notification_status DEFAULT 'pending',
            sent_at TIMESTAMP WITH TIME ZONE,
            acknowledged_at TIMESTAMP WITH TIME ZONE,
            created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            CONSTRAINT pk_staff_notifications PRIMARY KEY (id),
            CONSTRAINT fk_staff_notifications_hotel_id_hotels FOREIGN KEY (hotel_id)
                REFERENCES hotels (id) ON DELETE CASCADE,
            CONSTRAINT fk_staff_notifications_guest_id_guests FOREIGN KEY (guest_id)
                REFERENCES guests (id) ON DELETE SET NULL,
            CONSTRAINT fk_staff_notifications_message_id_messages FOREIGN KEY (message_id)
                REFERENCES messages (id) ON DELETE SET NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE staff_notifications")
    op.execute("DROP TYPE notification_status")
    op.execute("DROP TYPE notification_type")
