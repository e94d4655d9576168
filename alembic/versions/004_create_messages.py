"""Create conversations, messages and their enums (spec 2.5).

Revision ID: 004
Revises: 003
Create Date: 2026-11-24
"""

from alembic import op

revision = "004"
down_revision = "003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE conversations (
            id UUID DEFAULT gen_random_uuid() NOT NULL,
            hotel_id UUID NOT NULL,
            guest_id UUID NOT NULL,
            status VARCHAR(50) DEFAULT 'active',
            last_message_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            CONSTRAINT pk_conversations PRIMARY KEY (id),
            CONSTRAINT fk_conversations_hotel_id_hotels FOREIGN KEY (hotel_id)
                REFERENCES hotels (id) ON DELETE CASCADE,
            CONSTRAINT fk_conversations_guest_id_guests FOREIGN KEY (guest_id)
                REFERENCES guests (id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE TYPE message_type AS ENUM ('incoming', 'outgoing', 'system')")
    op.execute(
        "CREATE TYPE sentiment_type AS ENUM "
        "('positive', 'negative', 'neutral', 'requires_attention')"
    )
    op.execute(
        """
        CREATE TABLE messages (
            id UUID DEFAULT gen_random_uuid() NOT NULL,
            conversation_id UUID NOT NULL,
            message_type message_type NOT NULL,
            content TEXT NOT NULL,
            sentiment_score NUMERIC(3, 2),
            sentiment_type sentiment_type,
            metadata JSONB DEFAULT '{}'::jsonb,
            created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
            CONSTRAINT pk_messages PRIMARY KEY (id),
            CONSTRAINT fk_messages_conversation_id_conversations FOREIGN KEY (conversation_id)
                REFERENCES conversations (id) ON DELETE CASCADE
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE messages")
    op.execute("DROP TYPE sentiment_type")
    op.execute("DROP TYPE message_type")
    op.execute("DROP TABLE conversations")
