"""A schema Citus can distribute as it stands: tenant keys, delete actions, no per-node values.

Citus routes every statement by the distribution column (``hotel_id``), so it needs what
one node does not, and this revision gives it to the single node too, where it changes
nothing the bot can see:

- **Primary keys ``(hotel_id, id)``** on every tenant table (Citus refuses a unique key
  without the distribution column). They replace both ``PRIMARY KEY (id)`` and the
  ``UNIQUE (hotel_id, id)`` that 006 added as the target of the composite foreign keys,
  so writes maintain one index fewer on guests, conversations and messages. ``hotels``
  keeps ``PRIMARY KEY (id)``: it becomes a reference table (a copy on every node).
- **Composite foreign keys to those primary keys**, re-pointed one at a time.
  ``staff_notifications`` no longer nulls ``guest_id``/``message_id`` by itself: Citus
  supports no ``SET NULL`` on a key that includes the distribution column, so those keys
  are ``NO ACTION`` and the library nulls them first (``hotelbot_cli.db.deletes``).
- **No ``updated_at`` trigger**: ``now()`` in a BEFORE trigger runs on every node that holds
  a copy, and the three copies of a hotel row got three timestamps. The writers set
  ``updated_at`` (the ORM through ``onupdate``; raw writers say ``updated_at = now()``,
  which Citus evaluates once, on the coordinator), so the app role may now update that
  column, and ``guest_id``/``message_id`` of a notification (the nulling above).

Online-safe (``migration_steps``): each new key index is built ``CONCURRENTLY`` and attached
with ``PRIMARY KEY USING INDEX`` (a catalog change under a brief lock bounded by
``lock_timeout``); foreign keys are added ``NOT VALID`` and validated in their own
transaction (SHARE UPDATE EXCLUSIVE: the bot keeps writing); one table per transaction,
except a foreign key's own two. Every step checks whether it is done, so an interrupted
run is simply run again. The downgrade swaps the keys back the same way, except that a
key is swapped back in one transaction with the foreign keys that depend on it.

Revision ID: 012
Revises: 011
Create Date: 2026-12-02
"""

import sqlalchemy as sa

from alembic import context, op
from hotelbot_cli import migration_steps as steps

revision = "012"
down_revision = "011"
branch_labels = None
depends_on = None

#: Tenant tables in the order their keys are swapped (a referenced table before its referrers).
TABLES = ("guests", "conversations", "messages", "triggers", "staff_notifications")
#: Tables whose ``UNIQUE (hotel_id, id)`` (006) was the target of composite foreign keys.
TARGETS = ("guests", "conversations", "messages")
#: (table, constraint, columns, referenced table, delete action before, delete action after)
FOREIGN_KEYS = (
    (
        "conversations",
        "fk_conversations_hotel_id_guest_id_guests",
        "hotel_id, guest_id",
        "guests",
        "ON DELETE CASCADE",
        "ON DELETE CASCADE",
    ),
    (
        "messages",
        "fk_messages_hotel_id_conversation_id_conversations",
        "hotel_id, conversation_id",
        "conversations",
        "ON DELETE CASCADE",
        "ON DELETE CASCADE",
    ),
    (
        "staff_notifications",
        "fk_staff_notifications_hotel_id_guest_id_guests",
        "hotel_id, guest_id",
        "guests",
        "ON DELETE SET NULL (guest_id)",
        "",
    ),
    (
        "staff_notifications",
        "fk_staff_notifications_hotel_id_message_id_messages",
        "hotel_id, message_id",
        "messages",
        "ON DELETE SET NULL (message_id)",
        "",
    ),
)
TIMESTAMPED = ("hotels", "guests", "triggers")
APP_ROLE = "app_user"
#: Columns the app role may now update: what the trigger and the SET NULL actions wrote.
APP_UPDATES = {
    "hotels": "updated_at",
    "guests": "updated_at",
    "triggers": "updated_at",
    "staff_notifications": "guest_id, message_id",
}
#: 006's trigger function, byte for byte: the downgrade re-creates exactly what 006 made (a
#: revision cannot import another revision's module, so the text is copied, as 011 copies 009).
TOUCH_FUNCTION = """
CREATE OR REPLACE FUNCTION hotelbot_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$
"""


def _key_is(table: str, columns: str) -> str:
    """``unless`` query: ``pk_<table>`` already is ``PRIMARY KEY (<columns>)``."""
    return (
        "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = to_regclass('"
        f"{table}') AND conname = 'pk_{table}'"
        f" AND pg_catalog.pg_get_constraintdef(oid) = 'PRIMARY KEY ({columns})'"
    )


def _fk_on(name: str, index: str) -> str:
    """``unless`` query: foreign key ``name`` exists and depends on index ``index``."""
    return (
        "SELECT 1 FROM pg_catalog.pg_constraint WHERE conname = '"
        f"{name}' AND contype = 'f' AND conindid = to_regclass('{index}')"
    )


def _constraint(table: str, name: str) -> str:
    return (
        "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = to_regclass('"
        f"{table}') AND conname = '{name}'"
    )


def _done(query: str) -> bool:
    """Online: ``query`` returns a row (offline every step is printed)."""
    return (
        not context.is_offline_mode() and op.get_bind().execute(sa.text(query)).first() is not None
    )


def _swap_key(table: str) -> None:
    """``PRIMARY KEY (id)`` → ``(hotel_id, id)``: built CONCURRENTLY, attached USING INDEX."""
    done = _key_is(table, "hotel_id, id")
    if _done(done):
        return
    steps.create_index(f"CREATE UNIQUE INDEX pk_{table}_012 ON {table} (hotel_id, id)")
    steps.execute(
        f"ALTER TABLE {table} DROP CONSTRAINT pk_{table},"
        f" ADD CONSTRAINT pk_{table} PRIMARY KEY USING INDEX pk_{table}_012",
        unless=done,
    )
    steps.commit(table)


def _repoint(table: str, name: str, columns: str, target: str, action: str) -> None:
    """Re-create foreign key ``name`` on ``target``'s primary key, NOT VALID, then VALIDATE.

    ``REFERENCES target`` without a column list binds the key to the primary key, not to
    the ``UNIQUE (hotel_id, id)`` beside it, which can then be dropped.
    """
    on_delete = f" {action}" if action else ""
    steps.execute(
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}, ADD CONSTRAINT {name}"
        f" FOREIGN KEY ({columns}) REFERENCES {target}{on_delete} NOT VALID",
        unless=_fk_on(name, f"pk_{target}"),
    )
    steps.commit(table, target)
    steps.validate(table, name)


def upgrade() -> None:
    for table, columns in APP_UPDATES.items():
        if table in TIMESTAMPED:
            steps.execute(f"DROP TRIGGER IF EXISTS {table}_touch_updated_at ON {table}")
        steps.execute(f"GRANT UPDATE ({columns}) ON {table} TO {APP_ROLE}")
        steps.commit(table)
    steps.execute("DROP FUNCTION IF EXISTS hotelbot_touch_updated_at()")
    for table in TABLES:
        _swap_key(table)
    for table, name, columns, target, _before, after in FOREIGN_KEYS:
        _repoint(table, name, columns, target, after)
    for table in TARGETS:
        steps.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS uq_{table}_hotel_id_id")
        steps.commit(table)


def _restore_key(table: str) -> None:
    """``(hotel_id, id)`` → ``PRIMARY KEY (id)`` (+ 006's ``UNIQUE (hotel_id, id)``).

    The foreign keys on this key are dropped and re-added NOT VALID in the same
    transaction: with the primary key gone, they bind to the unique constraint again.
    """
    done = _key_is(table, "id")
    referrers = [fk for fk in FOREIGN_KEYS if fk[3] == table]
    if _done(done):
        for referrer, name, *_rest in referrers:
            steps.validate(referrer, name)  # a run interrupted after the swap
        return
    steps.create_index(f"CREATE UNIQUE INDEX pk_{table}_010 ON {table} (id)")
    unique = f"uq_{table}_hotel_id_id"
    if table in TARGETS:
        steps.create_index(f"CREATE UNIQUE INDEX {unique} ON {table} (hotel_id, id)")
    for referrer, name, *_rest in referrers:
        steps.execute(f"ALTER TABLE {referrer} DROP CONSTRAINT IF EXISTS {name}", unless=done)
    steps.execute(
        f"ALTER TABLE {table} DROP CONSTRAINT pk_{table},"
        f" ADD CONSTRAINT pk_{table} PRIMARY KEY USING INDEX pk_{table}_010",
        unless=done,
    )
    if table in TARGETS:
        steps.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {unique} UNIQUE USING INDEX {unique}",
            unless=_constraint(table, unique),
        )
    for referrer, name, columns, target, before, _after in referrers:
        steps.execute(
            f"ALTER TABLE {referrer} ADD CONSTRAINT {name} FOREIGN KEY ({columns})"
            f" REFERENCES {target} (hotel_id, id) {before} NOT VALID",
            unless=_constraint(referrer, name),
        )
    steps.commit(table)
    for referrer, name, *_rest in referrers:
        steps.validate(referrer, name)


def downgrade() -> None:
    for table in TABLES:
        _restore_key(table)
    steps.execute(TOUCH_FUNCTION)
    for table, columns in APP_UPDATES.items():
        steps.execute(f"REVOKE UPDATE ({columns}) ON {table} FROM {APP_ROLE}")
        if table in TIMESTAMPED:
            steps.execute(
                f"CREATE OR REPLACE TRIGGER {table}_touch_updated_at BEFORE UPDATE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION hotelbot_touch_updated_at()"
            )
        steps.commit(table)
