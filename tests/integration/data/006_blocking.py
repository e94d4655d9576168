# ruff: noqa: E501 - revision 006 as it was before the online rework, kept verbatim for db lint tests
"""Tenant integrity, validation, hot-path indexes and updated_at maintenance.

- messages.hotel_id (backfilled from the conversation), so every tenant table is
  filtered by its own column;
- composite foreign keys (hotel_id, x_id), so no row can reference another
  hotel's row even by a guessed UUID (foreign-key checks do not see RLS);
  staff_notifications null only the referencing column (PostgreSQL 15+);
- CHECK constraints: E.164 numbers, non-blank names, sentiment_score in [-1, 1],
  priority >= 1, trigger conditions shaped per trigger_type;
- indexes for the bot's hot paths, each leading with hotel_id; the spec's
  idx_guests_hotel_phone duplicated the (hotel_id, phone) unique index and is dropped,
  idx_guests_last_interaction now leads with hotel_id;
- a trigger that bumps updated_at on every UPDATE, raw SQL included.

Revision ID: 006
Revises: 005
Create Date: 2026-11-24
"""

from alembic import op

revision = "006"
down_revision = "005"
branch_labels = None
depends_on = None

E164 = r"'^\+[1-9][0-9]{6,14}$'"
CONDITIONS_SHAPE = (
    "jsonb_typeof(conditions) = 'object' AND COALESCE(CASE trigger_type"
    " WHEN 'time_based' THEN jsonb_typeof(conditions -> 'hours_after_checkin') = 'number'"
    " OR jsonb_typeof(conditions -> 'hours_before_checkout') = 'number'"
    " OR jsonb_typeof(conditions -> 'hours_after_checkout') = 'number'"
    " WHEN 'condition_based' THEN conditions <> '{}'::jsonb"
    " WHEN 'event_based' THEN jsonb_typeof(conditions -> 'event') = 'string'"
    " AND conditions ->> 'event' <> '' ELSE false END, false)"
)
TIMESTAMPED = ("hotels", "guests", "triggers")

UPGRADE = [
    # messages.hotel_id
    "ALTER TABLE messages ADD COLUMN hotel_id UUID",
    "UPDATE messages m SET hotel_id = c.hotel_id FROM conversations c WHERE c.id = m.conversation_id",
    "ALTER TABLE messages ALTER COLUMN hotel_id SET NOT NULL",
    "ALTER TABLE messages ADD CONSTRAINT fk_messages_hotel_id_hotels FOREIGN KEY (hotel_id)"
    " REFERENCES hotels (id) ON DELETE CASCADE",
    # targets of the composite keys
    "ALTER TABLE guests ADD CONSTRAINT uq_guests_hotel_id_id UNIQUE (hotel_id, id)",
    "ALTER TABLE conversations ADD CONSTRAINT uq_conversations_hotel_id_id UNIQUE (hotel_id, id)",
    "ALTER TABLE messages ADD CONSTRAINT uq_messages_hotel_id_id UNIQUE (hotel_id, id)",
    # composite foreign keys replace the single-column ones
    "ALTER TABLE conversations DROP CONSTRAINT fk_conversations_guest_id_guests",
    "ALTER TABLE conversations ADD CONSTRAINT fk_conversations_hotel_id_guest_id_guests"
    " FOREIGN KEY (hotel_id, guest_id) REFERENCES guests (hotel_id, id) ON DELETE CASCADE",
    "ALTER TABLE messages DROP CONSTRAINT fk_messages_conversation_id_conversations",
    "ALTER TABLE messages ADD CONSTRAINT fk_messages_hotel_id_conversation_id_conversations"
    " FOREIGN KEY (hotel_id, conversation_id) REFERENCES conversations (hotel_id, id)"
    " ON DELETE CASCADE",
    "ALTER TABLE staff_notifications DROP CONSTRAINT fk_staff_notifications_guest_id_guests",
    "ALTER TABLE staff_notifications ADD CONSTRAINT fk_staff_notifications_hotel_id_guest_id_guests"
    " FOREIGN KEY (hotel_id, guest_id) REFERENCES guests (hotel_id, id)"
    " ON DELETE SET NULL (guest_id)",
    "ALTER TABLE staff_notifications DROP CONSTRAINT fk_staff_notifications_message_id_messages",
    "ALTER TABLE staff_notifications ADD CONSTRAINT"
    " fk_staff_notifications_hotel_id_message_id_messages"
    " FOREIGN KEY (hotel_id, message_id) REFERENCES messages (hotel_id, id)"
    " ON DELETE SET NULL (message_id)",
    # validation
    "ALTER TABLE hotels ADD CONSTRAINT ck_hotels_name_not_blank CHECK (btrim(name) <> '')",
    f"ALTER TABLE hotels ADD CONSTRAINT ck_hotels_whatsapp_number_e164 CHECK (whatsapp_number ~ {E164})",
    f"ALTER TABLE guests ADD CONSTRAINT ck_guests_phone_e164 CHECK (phone ~ {E164})",
    "ALTER TABLE guests ADD CONSTRAINT ck_guests_name_not_blank CHECK (btrim(name) <> '')",
    "ALTER TABLE triggers ADD CONSTRAINT ck_triggers_name_not_blank CHECK (btrim(name) <> '')",
    "ALTER TABLE triggers ADD CONSTRAINT ck_triggers_message_template_not_blank"
    " CHECK (btrim(message_template) <> '')",
    "ALTER TABLE triggers ADD CONSTRAINT ck_triggers_priority_positive CHECK (priority >= 1)",
    f"ALTER TABLE triggers ADD CONSTRAINT ck_triggers_conditions_shape CHECK ({CONDITIONS_SHAPE})",
    "ALTER TABLE conversations ADD CONSTRAINT ck_conversations_status_not_blank"
    " CHECK (btrim(status) <> '')",
    "ALTER TABLE messages ADD CONSTRAINT ck_messages_sentiment_score_range"
    " CHECK (sentiment_score BETWEEN -1 AND 1)",
    "ALTER TABLE staff_notifications ADD CONSTRAINT ck_staff_notifications_title_not_blank"
    " CHECK (btrim(title) <> '')",
    "ALTER TABLE staff_notifications ADD CONSTRAINT ck_staff_notifications_sent_at_when_sent"
    " CHECK (sent_at IS NULL OR status IN ('sent', 'acknowledged'))",
    "ALTER TABLE staff_notifications ADD CONSTRAINT"
    " ck_staff_notifications_acknowledged_at_when_acknowledged"
    " CHECK (acknowledged_at IS NULL OR status = 'acknowledged')",
    # hot-path indexes, each leading with hotel_id
    "DROP INDEX idx_guests_hotel_phone",
    "DROP INDEX idx_guests_last_interaction",
    "CREATE INDEX idx_guests_last_interaction ON guests (hotel_id, last_interaction)",
    "CREATE INDEX ix_triggers_hotel_id_priority_active ON triggers (hotel_id, priority)"
    " WHERE is_active",
    "CREATE INDEX ix_conversations_hotel_id_guest_id_last_message_at"
    " ON conversations (hotel_id, guest_id, last_message_at)",
    "CREATE INDEX ix_conversations_hotel_id_last_message_at"
    " ON conversations (hotel_id, last_message_at)",
    "CREATE INDEX ix_messages_hotel_id_conversation_id_created_at"
    " ON messages (hotel_id, conversation_id, created_at)",
    "CREATE INDEX ix_messages_hotel_id_created_at ON messages (hotel_id, created_at)",
    "CREATE INDEX ix_staff_notifications_hotel_id_created_at_pending"
    " ON staff_notifications (hotel_id, created_at DESC) WHERE status = 'pending'",
    "CREATE INDEX ix_staff_notifications_hotel_id_guest_id ON staff_notifications (hotel_id, guest_id)",
    "CREATE INDEX ix_staff_notifications_hotel_id_message_id"
    " ON staff_notifications (hotel_id, message_id)",
    # updated_at maintained by the database
    """
    CREATE FUNCTION hotelbot_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$
    """,
    *(
        f"CREATE TRIGGER {table}_touch_updated_at BEFORE UPDATE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION hotelbot_touch_updated_at()"
        for table in TIMESTAMPED
    ),
]

DOWNGRADE = [
    *(f"DROP TRIGGER {table}_touch_updated_at ON {table}" for table in TIMESTAMPED),
    "DROP FUNCTION hotelbot_touch_updated_at()",
    "DROP INDEX ix_staff_notifications_hotel_id_message_id",
    "DROP INDEX ix_staff_notifications_hotel_id_guest_id",
    "DROP INDEX ix_staff_notifications_hotel_id_created_at_pending",
    "DROP INDEX ix_messages_hotel_id_created_at",
    "DROP INDEX ix_messages_hotel_id_conversation_id_created_at",
    "DROP INDEX ix_conversations_hotel_id_last_message_at",
    "DROP INDEX ix_conversations_hotel_id_guest_id_last_message_at",
    "DROP INDEX ix_triggers_hotel_id_priority_active",
    "DROP INDEX idx_guests_last_interaction",
    "CREATE INDEX idx_guests_last_interaction ON guests (last_interaction)",
    "CREATE INDEX idx_guests_hotel_phone ON guests (hotel_id, phone)",
    "ALTER TABLE staff_notifications DROP CONSTRAINT"
    " ck_staff_notifications_acknowledged_at_when_acknowledged",
    "ALTER TABLE staff_notifications DROP CONSTRAINT ck_staff_notifications_sent_at_when_sent",
    "ALTER TABLE staff_notifications DROP CONSTRAINT ck_staff_notifications_title_not_blank",
    "ALTER TABLE messages DROP CONSTRAINT ck_messages_sentiment_score_range",
    "ALTER TABLE conversations DROP CONSTRAINT ck_conversations_status_not_blank",
    "ALTER TABLE triggers DROP CONSTRAINT ck_triggers_conditions_shape",
    "ALTER TABLE triggers DROP CONSTRAINT ck_triggers_priority_positive",
    "ALTER TABLE triggers DROP CONSTRAINT ck_triggers_message_template_not_blank",
    "ALTER TABLE triggers DROP CONSTRAINT ck_triggers_name_not_blank",
    "ALTER TABLE guests DROP CONSTRAINT ck_guests_name_not_blank",
    "ALTER TABLE guests DROP CONSTRAINT ck_guests_phone_e164",
    "ALTER TABLE hotels DROP CONSTRAINT ck_hotels_whatsapp_number_e164",
    "ALTER TABLE hotels DROP CONSTRAINT ck_hotels_name_not_blank",
    "ALTER TABLE staff_notifications DROP CONSTRAINT"
    " fk_staff_notifications_hotel_id_message_id_messages",
    "ALTER TABLE staff_notifications ADD CONSTRAINT fk_staff_notifications_message_id_messages"
    " FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE SET NULL",
    "ALTER TABLE staff_notifications DROP CONSTRAINT fk_staff_notifications_hotel_id_guest_id_guests",
    "ALTER TABLE staff_notifications ADD CONSTRAINT fk_staff_notifications_guest_id_guests"
    " FOREIGN KEY (guest_id) REFERENCES guests (id) ON DELETE SET NULL",
    "ALTER TABLE messages DROP CONSTRAINT fk_messages_hotel_id_conversation_id_conversations",
    "ALTER TABLE messages ADD CONSTRAINT fk_messages_conversation_id_conversations"
    " FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE",
    "ALTER TABLE conversations DROP CONSTRAINT fk_conversations_hotel_id_guest_id_guests",
    "ALTER TABLE conversations ADD CONSTRAINT fk_conversations_guest_id_guests"
    " FOREIGN KEY (guest_id) REFERENCES guests (id) ON DELETE CASCADE",
    "ALTER TABLE messages DROP CONSTRAINT uq_messages_hotel_id_id",
    "ALTER TABLE conversations DROP CONSTRAINT uq_conversations_hotel_id_id",
    "ALTER TABLE guests DROP CONSTRAINT uq_guests_hotel_id_id",
    "ALTER TABLE messages DROP COLUMN hotel_id",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
