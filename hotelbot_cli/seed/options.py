"""What to seed: the options of ``hotelbot seed`` and the row counts they imply."""

from __future__ import annotations

import datetime as dt
import enum
import functools
from dataclasses import dataclass, field

from hotelbot_cli.errors import UsageError


class Mode(enum.StrEnum):
    """What to do when the database already holds hotels."""

    REFUSE = "refuse"
    APPEND = "append"
    TRUNCATE = "truncate"


#: Expected share of messages that raise a staff notification (incoming negative or urgent).
NOTIFICATION_SHARE = 0.5 * (1024 - 980 + 980 - 860) / 1024


def start_of_utc_day(now: dt.datetime | None = None) -> dt.datetime:
    """The default reference time: today 00:00 UTC (same data all day long for the same seed)."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SeedOptions:
    """Sizes, seed and safety choices; the same options and seed give the same rows anywhere.

    ``reference_time`` anchors every timestamp (data lies in the ~90 days before it);
    None means the start of the current UTC day.
    """

    hotels: int = 50
    guests_per_hotel: int = 100
    conversations_per_guest: int = 2
    messages_per_conversation: int = 10
    triggers_per_hotel: int = 5
    seed: int = 42
    reference_time: dt.datetime | None = None
    mode: Mode = Mode.REFUSE
    dry_run: bool = False
    #: Drop secondary indexes and foreign keys during the load and rebuild them after:
    #: None decides by size (worth it for large loads), True/False force it.
    rebuild_indexes: bool | None = None
    #: Messages generated per server-side statement (bounds client memory and progress steps).
    chunk_messages: int = field(default=100_000, repr=False)

    def __post_init__(self) -> None:
        for name in (
            "hotels",
            "guests_per_hotel",
            "conversations_per_guest",
            "messages_per_conversation",
        ):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if self.triggers_per_hotel < 0:
            raise UsageError("--triggers-per-hotel must not be negative")
        if not 0 <= self.seed < 2**63:
            raise UsageError("--seed must be between 0 and 2**63-1")
        if self.guests_per_hotel > 1_000_000:  # phone numbers are unique up to 10**6
            raise UsageError("--guests-per-hotel must be at most 1,000,000")
        if self.reference_time is not None and self.reference_time.tzinfo is None:
            raise UsageError("the reference time needs a time zone (e.g. 2026-01-01T00:00:00Z)")

    @functools.cached_property
    def reference(self) -> dt.datetime:
        """The reference time, resolved once: a run that crosses midnight UTC keeps one day
        (every guest is built from it, so it is also read ~50,000 times a seed)."""
        return (self.reference_time or start_of_utc_day()).astimezone(dt.UTC)

    def planned_rows(self) -> dict[str, int]:
        """Rows per table this run writes (staff_notifications is an expectation, ±)."""
        guests = self.hotels * self.guests_per_hotel
        conversations = guests * self.conversations_per_guest
        messages = conversations * self.messages_per_conversation
        return {
            "hotels": self.hotels,
            "guests": guests,
            "triggers": self.hotels * self.triggers_per_hotel,
            "conversations": conversations,
            "messages": messages,
            "staff_notifications": self.hotels + round(messages * NOTIFICATION_SHARE),
        }
