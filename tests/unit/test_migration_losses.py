"""Reading what a downgrade destroys out of its SQL; relative revision ids."""

from __future__ import annotations

import pytest

from hotelbot_cli.migration_losses import DataLoss, touched
from hotelbot_cli.migrations import relative_steps


def test_tables_dropped_or_emptied_then_columns_of_the_others() -> None:
    sql = """
    BEGIN;
    ALTER TABLE messages DROP CONSTRAINT fk_x;
    ALTER TABLE messages DROP COLUMN hotel_id;
    ALTER TABLE ONLY "Guests" DROP COLUMN IF EXISTS nickname, DROP COLUMN "Age", ADD COLUMN y int;
    ALTER TABLE hotels DROP COLUMN is_active;
    DROP TABLE IF EXISTS public.hotels, triggers;
    TRUNCATE TABLE staff_notifications;
    DELETE FROM ONLY conversations WHERE true;
    DROP TABLE alembic_version;
    DROP INDEX ix_messages_hotel_id;
    COMMIT;
    """
    assert touched(sql) == [
        ("hotels", None),
        ("triggers", None),
        ("staff_notifications", None),
        ("conversations", None),
        ("messages", "hotel_id"),
        ("Guests", "nickname"),
        ("Guests", "Age"),
    ]


def test_sql_that_keeps_every_row_touches_nothing() -> None:
    sql = "DROP INDEX ix; ALTER TABLE t DROP CONSTRAINT c; DROP POLICY p ON t; DROP TYPE e;"
    assert touched(sql) == []


def test_a_loss_reads_as_a_person_would_say_it() -> None:
    assert str(DataLoss("hotels", None, 1234)) == "table hotels (about 1,234 rows)"
    assert str(DataLoss("messages", "hotel_id", 0)) == "column messages.hotel_id (holds rows)"


@pytest.mark.parametrize(
    ("revision", "steps"),
    [
        ("-1", -1),
        ("+2", 2),
        ("ae10+2", 2),
        ("008-1", -1),
        ("head", None),
        ("base", None),
        ("008", None),
        ("--bogus", None),
        ("-x", None),
        ("-", None),
    ],
)
def test_relative_revisions(revision: str, steps: int | None) -> None:
    assert relative_steps(revision) == steps
