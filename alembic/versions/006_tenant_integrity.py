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

Online-safe (``hotelbot_cli.migration_steps``): on a populated database every lock that
blocks the bot is taken by a catalog-only statement in a short transaction bounded by
lock_timeout; the work proportional to table size (backfill, validation, index builds)
runs in batches, under SHARE UPDATE EXCLUSIVE, or CONCURRENTLY. Every step is idempotent,
so an interrupted run is simply run again.

Revision ID: 006
Revises: 005
Create Date: 2026-11-24
"""

from alembic import op
from hotelbot_cli import migration_steps as steps

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


def _constraint(name: str) -> str:
    """``unless`` query: the constraint exists already (an interrupted run got that far)."""
    return f"SELECT 1 FROM pg_constraint WHERE conname = '{name}' AND connamespace = current_schema()::regnamespace"


def _add(table: str, name: str, definition: str) -> None:
    """ADD CONSTRAINT … NOT VALID (a catalog change), validated later without blocking writes."""
    steps.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition} NOT VALID",
        unless=_constraint(name),
    )


#: table -> CHECK constraints (name, expression)
CHECKS = {
    "hotels": [
        ("ck_hotels_name_not_blank", "btrim(name) <> ''"),
        ("ck_hotels_whatsapp_number_e164", f"whatsapp_number ~ {E164}"),
    ],
    "guests": [
        ("ck_guests_phone_e164", f"phone ~ {E164}"),
        ("ck_guests_name_not_blank", "btrim(name) <> ''"),
    ],
    "triggers": [
        ("ck_triggers_name_not_blank", "btrim(name) <> ''"),
        ("ck_triggers_message_template_not_blank", "btrim(message_template) <> ''"),
        ("ck_triggers_priority_positive", "priority >= 1"),
        ("ck_triggers_conditions_shape", CONDITIONS_SHAPE),
    ],
    "conversations": [("ck_conversations_status_not_blank", "btrim(status) <> ''")],
    "messages": [("ck_messages_sentiment_score_range", "sentiment_score BETWEEN -1 AND 1")],
    "staff_notifications": [
        ("ck_staff_notifications_title_not_blank", "btrim(title) <> ''"),
        (
            "ck_staff_notifications_sent_at_when_sent",
            "sent_at IS NULL OR status IN ('sent', 'acknowledged')",
        ),
        (
            "ck_staff_notifications_acknowledged_at_when_acknowledged",
            "acknowledged_at IS NULL OR status = 'acknowledged'",
        ),
    ],
}

#: (table, constraint, old single-column FK to drop, definition)
COMPOSITE_FKS = [
    (
        "conversations",
        "fk_conversations_hotel_id_guest_id_guests",
        "fk_conversations_guest_id_guests",
        "FOREIGN KEY (hotel_id, guest_id) REFERENCES guests (hotel_id, id) ON DELETE CASCADE",
    ),
    (
        "messages",
        "fk_messages_hotel_id_conversation_id_conversations",
        "fk_messages_conversation_id_conversations",
        "FOREIGN KEY (hotel_id, conversation_id) REFERENCES conversations (hotel_id, id) ON DELETE CASCADE",
    ),
    (
        "staff_notifications",
        "fk_staff_notifications_hotel_id_guest_id_guests",
        "fk_staff_notifications_guest_id_guests",
        "FOREIGN KEY (hotel_id, guest_id) REFERENCES guests (hotel_id, id) ON DELETE SET NULL (guest_id)",
    ),
    (
        "staff_notifications",
        "fk_staff_notifications_hotel_id_message_id_messages",
        "fk_staff_notifications_message_id_messages",
        "FOREIGN KEY (hotel_id, message_id) REFERENCES messages (hotel_id, id) ON DELETE SET NULL (message_id)",
    ),
]

INDEXES = [
    "CREATE INDEX idx_guests_last_interaction ON guests (hotel_id, last_interaction)",
    "CREATE INDEX ix_triggers_hotel_id_priority_active ON triggers (hotel_id, priority) WHERE is_active",
    "CREATE INDEX ix_conversations_hotel_id_guest_id_last_message_at ON conversations (hotel_id, guest_id, last_message_at)",
    "CREATE INDEX ix_conversations_hotel_id_last_message_at ON conversations (hotel_id, last_message_at)",
    "CREATE INDEX ix_messages_hotel_id_conversation_id_created_at ON messages (hotel_id, conversation_id, created_at)",
    "CREATE INDEX ix_messages_hotel_id_created_at ON messages (hotel_id, created_at)",
    "CREATE INDEX ix_staff_notifications_hotel_id_created_at_pending ON staff_notifications (hotel_id, created_at DESC) WHERE status = 'pending'",
    "CREATE INDEX ix_staff_notifications_hotel_id_guest_id ON staff_notifications (hotel_id, guest_id)",
    "CREATE INDEX ix_staff_notifications_hotel_id_message_id ON staff_notifications (hotel_id, message_id)",
]

# While messages.hotel_id is being backfilled, rows the running bot inserts without it get
# it from their conversation; the trigger and its function are gone by the end of 006.
FILL_FUNCTION = """
CREATE OR REPLACE FUNCTION hotelbot_006_fill_message_hotel_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.hotel_id IS NULL THEN
        SELECT c.hotel_id INTO NEW.hotel_id FROM conversations c WHERE c.id = NEW.conversation_id;
    END IF;
    RETURN NEW;
END
$$
"""

TOUCH_FUNCTION = """
CREATE OR REPLACE FUNCTION hotelbot_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$
"""


def _messages_hotel_id() -> None:
    """messages.hotel_id: nullable column, batched backfill, NOT NULL proven by a CHECK."""
    steps.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS hotel_id UUID")
    steps.execute(FILL_FUNCTION)
    steps.execute(
        "CREATE OR REPLACE TRIGGER messages_006_fill_hotel_id BEFORE INSERT ON messages"
        " FOR EACH ROW EXECUTE FUNCTION hotelbot_006_fill_message_hotel_id()"
    )
    steps.commit("messages")
    steps.backfill(
        "messages",
        "UPDATE messages m SET hotel_id = c.hotel_id FROM conversations c"
        " WHERE c.id = m.conversation_id AND m.hotel_id IS NULL"
        " AND m.id BETWEEN :lower AND :upper",
    )
    _add("messages", "ck_messages_hotel_id_not_null", "CHECK (hotel_id IS NOT NULL)")
    steps.commit("messages")
    steps.validate("messages", "ck_messages_hotel_id_not_null")
    # The validated CHECK proves NOT NULL: SET NOT NULL skips its table scan.
    steps.execute("ALTER TABLE messages ALTER COLUMN hotel_id SET NOT NULL")
    steps.execute("ALTER TABLE messages DROP CONSTRAINT IF EXISTS ck_messages_hotel_id_not_null")
    steps.execute("DROP TRIGGER IF EXISTS messages_006_fill_hotel_id ON messages")
    steps.execute("DROP FUNCTION IF EXISTS hotelbot_006_fill_message_hotel_id()")
    steps.commit("messages")
    _add(
        "messages",
        "fk_messages_hotel_id_hotels",
        "FOREIGN KEY (hotel_id) REFERENCES hotels (id) ON DELETE CASCADE",
    )
    steps.commit("messages", "hotels")
    steps.validate("messages", "fk_messages_hotel_id_hotels")


def upgrade() -> None:
    _messages_hotel_id()
    # targets of the composite keys: a unique index built CONCURRENTLY, then attached
    for table in ("guests", "conversations", "messages"):
        name = f"uq_{table}_hotel_id_id"
        steps.create_index(f"CREATE UNIQUE INDEX {name} ON {table} (hotel_id, id)")
        steps.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}",
            unless=_constraint(name),
        )
        steps.commit(table)
    # composite foreign keys replace the single-column ones (dropped in the same transaction)
    for table, name, old, definition in COMPOSITE_FKS:
        steps.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {old}")
        _add(table, name, definition)
        steps.commit(table, "guests", "messages", "conversations")
        steps.validate(table, name)
    # validation: NOT VALID, then VALIDATE (SHARE UPDATE EXCLUSIVE: the bot keeps writing)
    for table, checks in CHECKS.items():
        for name, expression in checks:
            _add(table, name, f"CHECK ({expression})")
        steps.commit(table)
        for name, _expression in checks:
            steps.validate(table, name)
    # hot-path indexes, each leading with hotel_id
    steps.drop_index("idx_guests_hotel_phone", "guests")
    steps.drop_index(
        "idx_guests_last_interaction",
        "guests",
        unless="SELECT 1 FROM pg_indexes WHERE indexname = 'idx_guests_last_interaction'"
        " AND indexdef LIKE '%(hotel_id, last_interaction)'",
    )
    for definition in INDEXES:
        steps.create_index(definition)
    # updated_at maintained by the database
    steps.execute(TOUCH_FUNCTION)
    for table in TIMESTAMPED:
        steps.execute(
            f"CREATE OR REPLACE TRIGGER {table}_touch_updated_at BEFORE UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION hotelbot_touch_updated_at()"
        )
        steps.commit(table)


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


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
