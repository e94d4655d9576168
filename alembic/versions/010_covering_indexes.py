"""Covering indexes for the sentiment breakdown and the guests due for a trigger.

``sentiment_7d`` counted a hotel's messages of the last 7 days by reading every matching
heap row: at 10x the messages it took 2.3x as long. With ``sentiment_type`` in the index
it is an index-only scan (buffers 3,554 -> 37 measured). ``due_guests`` reads ``id`` and
``phone`` of a hotel's guests in a ``last_interaction`` window: with them in the index it
no longer visits the heap either. Each covering index replaces the one it extends and
keeps its name (same leading columns), so writes maintain no more indexes than before.

Plain ``CREATE INDEX IF NOT EXISTS`` in the migration transaction (the helpers for
``CONCURRENTLY`` builds come with another branch): on a large live table build them by
hand with ``CREATE INDEX CONCURRENTLY`` first; this revision then finds them and only drops
the old ones. Safe to re-run: every step is conditional.

Revision ID: 010
Revises: 008
Create Date: 2026-12-01
"""

from alembic import op

revision = "010"
down_revision = "008"
branch_labels = None
depends_on = None

#: (index, table, columns, what it covers): the name stays, the definition grows.
INDEXES = (
    ("ix_messages_hotel_id_created_at", "messages", "hotel_id, created_at", "sentiment_type"),
    ("idx_guests_last_interaction", "guests", "hotel_id, last_interaction", "id, phone"),
)


def _swap(name: str, table: str, columns: str, include: str | None) -> None:
    """Build the new form beside the old one, drop the old, give the new one its name."""
    new = f"{name}_010"
    covering = f" INCLUDE ({include})" if include else ""
    op.execute(f"CREATE INDEX IF NOT EXISTS {new} ON {table} ({columns}){covering}")
    op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute(f"ALTER INDEX {new} RENAME TO {name}")


def upgrade() -> None:
    for name, table, columns, include in INDEXES:
        _swap(name, table, columns, include)


def downgrade() -> None:
    for name, table, columns, _include in reversed(INDEXES):
        _swap(name, table, columns, None)
