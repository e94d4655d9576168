"""The guests the workload runs on: read once as the owner, then picked at random (seeded)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hotelbot_cli.bench.workload import Target

if TYPE_CHECKING:
    import psycopg

#: A hotel's first guests by id, each with its latest conversation. Window functions and
#: DISTINCT ON partitioned by hotel_id, not LATERAL … LIMIT: Citus pushes these down.
_TARGETS_SQL = """
SELECT h.id, h.whatsapp_number, g.id, g.phone, c.id
FROM (
    SELECT hotel_id, id, phone, row_number() OVER (PARTITION BY hotel_id ORDER BY id) AS n
    FROM guests
) g
JOIN (
    SELECT DISTINCT ON (hotel_id, guest_id) hotel_id, guest_id, id FROM conversations
    ORDER BY hotel_id, guest_id, last_message_at DESC NULLS LAST
) c ON c.hotel_id = g.hotel_id AND c.guest_id = g.id
JOIN hotels h ON h.id = g.hotel_id
WHERE h.is_active AND g.n <= %(per_hotel)s
ORDER BY h.id, g.id
"""


def load_targets(conn: psycopg.Connection[Any], per_hotel: int = 200) -> list[Target]:
    """Guests with a conversation, up to ``per_hotel`` per active hotel (read as the owner)."""
    rows = conn.execute(_TARGETS_SQL, {"per_hotel": per_hotel}).fetchall()
    return [Target(*row) for row in rows]


class TargetPicker:
    """Picks a hotel at random, then one of its guests (seeded, so runs are repeatable)."""

    def __init__(self, targets: Sequence[Target], rng: random.Random) -> None:
        by_hotel: dict[uuid.UUID, list[Target]] = {}
        for t in targets:
            by_hotel.setdefault(t.hotel_id, []).append(t)
        self._hotels = list(by_hotel.values())
        self._rng = rng

    def pick(self) -> Target:
        return self._rng.choice(self._rng.choice(self._hotels))
