"""migration_steps refuses shapes it cannot run online, before touching any database."""

from __future__ import annotations

import pytest

from hotelbot_cli import migration_steps as steps
from hotelbot_cli.errors import ConfigError


def test_create_index_needs_a_plain_named_definition() -> None:
    with pytest.raises(ValueError, match="not a plain CREATE"):
        steps.create_index("CREATE INDEX ON guests (name)")


def test_backfill_needs_batch_bounds() -> None:
    with pytest.raises(ValueError, match=":lower and :upper"):
        steps.backfill("messages", "UPDATE messages SET hotel_id = NULL")


def test_lock_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTELBOT_MIGRATION_LOCK_TIMEOUT", "0.5")
    assert steps.lock_timeout_seconds() == 0.5
    monkeypatch.setenv("HOTELBOT_MIGRATION_LOCK_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="HOTELBOT_MIGRATION_LOCK_TIMEOUT='soon'"):
        steps.lock_timeout_seconds()  # as `hotelbot db upgrade` reads it: no silent default
    monkeypatch.delenv("HOTELBOT_MIGRATION_LOCK_TIMEOUT")
    assert steps.lock_timeout_seconds() == 2.0
