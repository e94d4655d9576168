"""The sentiment window as a literal: written into the statement, never anything else."""

import pytest

from hotelbot_cli.db.sentiment import BREAKDOWN, RAW_BREAKDOWN, for_window


@pytest.mark.parametrize("sql", [BREAKDOWN, RAW_BREAKDOWN])
def test_the_window_becomes_a_literal(sql: str) -> None:
    fixed = for_window(sql, "36 hours 17 minutes")
    assert "%(window)s" not in fixed
    assert "'36 hours 17 minutes'::interval" in fixed
    assert "%(hid)s" in fixed  # the hotel stays a parameter


@pytest.mark.parametrize(
    "window", ["7 days'; DROP TABLE messages; --", "1 day\\", "", "x" * 65, "1 day\n"]
)
def test_anything_but_an_interval_literal_is_refused(window: str) -> None:
    with pytest.raises(ValueError, match="not an interval literal"):
        for_window(BREAKDOWN, window)
