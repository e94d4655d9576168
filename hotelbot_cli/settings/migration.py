"""How online migrations wait, retry and batch (HOTELBOT_MIGRATION_*)."""

from __future__ import annotations

from collections.abc import Mapping

from hotelbot_cli.settings.env import env_count, env_number


def migration_lock_timeout(env: Mapping[str, str] | None = None) -> float:
    """HOTELBOT_MIGRATION_LOCK_TIMEOUT: seconds any migration lock wait may queue (2)."""
    return env_number("HOTELBOT_MIGRATION_LOCK_TIMEOUT", 2.0, env, minimum=0.01)


def migration_lock_retries(env: Mapping[str, str] | None = None) -> int:
    """HOTELBOT_MIGRATION_LOCK_RETRIES: retries of a step whose lock timed out (5)."""
    return env_count("HOTELBOT_MIGRATION_LOCK_RETRIES", 5, env)


def migration_small_table_bytes(env: Mapping[str, str] | None = None) -> int:
    """HOTELBOT_MIGRATION_SMALL_TABLE_BYTES: below this a table is changed in one go (8 MB)."""
    return env_count("HOTELBOT_MIGRATION_SMALL_TABLE_BYTES", 8 * 1024 * 1024, env)


def migration_batch_rows(env: Mapping[str, str] | None = None) -> int:
    """HOTELBOT_MIGRATION_BATCH_ROWS: rows per backfill batch (5000)."""
    return env_count("HOTELBOT_MIGRATION_BATCH_ROWS", 5000, env, minimum=1)
