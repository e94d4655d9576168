"""The sentiment breakdown of a hotel's recent messages, read from the hourly counts.

``message_sentiment_hourly`` (revision 014) holds, per hotel, UTC hour and sentiment, how
many messages there are; triggers on ``messages`` keep it in the writer's transaction. A
window "since now() - <interval>" is then the counted hours that lie wholly inside it plus
the raw messages of its partial first hour: at most one row per hour and sentiment, however
many messages there are. The result equals the plain ``count(*) … GROUP BY sentiment_type``
over the messages (a test checks it under inserts, updates, deletes and cascades).

On Citus the triggers are dropped by ``db distribute`` (a trigger on a shard cannot write
another distributed table), and the counts with them: :data:`RAW_BREAKDOWN` is the query there.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import Cursor

#: The table and the triggers that keep it (revision 014).
HOURLY = "message_sentiment_hourly"
TRIGGERS = (
    "count_message_sentiment_insert",
    "count_message_sentiment_update",
    "count_message_sentiment_delete",
    "count_message_sentiment_truncate",
)

#: The hour a message is counted in: date_bin from a UTC origin is absolute time (no
#: TimeZone in it) and ten times cheaper than date_trunc(..., 'UTC').
_ORIGIN = "timestamptz '2000-01-01 00:00+00'"
HOUR_OF = "date_bin('1 hour', {column}, " + _ORIGIN + ")"

#: The first hour wholly inside the window: from it on, the counts; before it, the messages.
_FIRST_WHOLE_HOUR = HOUR_OF.format(column="now() - %(window)s::interval") + " + interval '1 hour'"

#: ``%(hid)s``'s messages since ``now() - %(window)s`` by sentiment type, from the counts.
BREAKDOWN = (
    "SELECT sentiment_type, sum(n)::bigint FROM ("
    " SELECT h.sentiment_type, h.messages AS n FROM message_sentiment_hourly h"
    f" WHERE h.hotel_id = %(hid)s AND h.hour >= {_FIRST_WHOLE_HOUR}"
    " UNION ALL"
    " SELECT m.sentiment_type, count(*) FROM messages m"
    " WHERE m.hotel_id = %(hid)s AND m.created_at >= now() - %(window)s::interval"
    f" AND m.created_at < {_FIRST_WHOLE_HOUR}"
    " GROUP BY m.sentiment_type"
    ") counted GROUP BY sentiment_type HAVING sum(n) > 0"
)

#: The same from the messages themselves (Citus, and the reference the tests compare with).
RAW_BREAKDOWN = (
    "SELECT sentiment_type, count(*) FROM messages"
    " WHERE hotel_id = %(hid)s AND created_at >= now() - %(window)s::interval"
    " GROUP BY sentiment_type"
)

#: What a window may be written with: an interval literal with no quote or backslash in it.
_WINDOW = re.compile(r"[0-9A-Za-z :.+-]{1,64}")


def for_window(sql: str, window: str) -> str:
    """``sql`` (:data:`BREAKDOWN` or :data:`RAW_BREAKDOWN`) for one fixed window, written in
    it as a literal: the bot asks for a few windows, each then a statement of its own.

    With the window a parameter the planner cannot tell a week from a decade in a generic
    plan, so every execution is planned again (95 custom plans in 100), the policies' sub-
    selects with it. With a literal, prepared statements keep a generic plan: on the
    reference dataset ``sentiment_7d`` went from 452-530 µs to 283-290 µs as the owner and
    606 to 368-374 µs as the bot (same CPU, interleaved, /tmp harness; see issue 13's note).
    """
    if not _WINDOW.fullmatch(window):
        raise ValueError(f"not an interval literal: {window!r}")
    return sql.replace("%(window)s::interval", f"'{window}'::interval")


#: A counted row's id, from its natural key: the same seed gives the same rows, ids
#: included (rows the triggers add get random ones).
ROW_ID = (
    "CAST(md5(hotel_id::text || '/' || extract(epoch FROM hour)::bigint || '/'"
    " || coalesce(sentiment_type::text, '-')) AS uuid)"
)

#: Count the messages of the hotels in ``%(hotels)s`` (uuid[]), which have no counts yet:
#: what the seed runs for the hotels it wrote, with the triggers paused and its tables
#: locked. A plain INSERT (no upsert): the seed may have dropped the counts' key for its
#: load and rebuilds it afterwards.
COUNT_NEW_HOTELS = (
    "INSERT INTO message_sentiment_hourly (id, hotel_id, hour, sentiment_type, messages)"
    " SELECT " + ROW_ID + ", hotel_id, hour, sentiment_type, n FROM ("
    " SELECT hotel_id, " + HOUR_OF.format(column="created_at") + " AS hour, sentiment_type,"
    " count(*) AS n FROM messages"
    " WHERE hotel_id = ANY(%(hotels)s::uuid[]) AND created_at IS NOT NULL"
    " GROUP BY 1, 2, 3) counted"
    " ORDER BY 2, 3, 4"  # a hotel's hours together in the heap: a week is a few pages
)


def pause_counting(cur: Cursor[Any]) -> list[str]:
    """Disable the counting triggers (those that exist) for a bulk load; return their names.

    For the seed, which holds its tables locked and counts the hotels it wrote
    (:func:`resume_counting`) in the same transaction: one GROUP BY over the load instead of
    one per batch. DDL is transactional: an interrupted load leaves the triggers as they were.
    """
    cur.execute(
        "SELECT tgname FROM pg_catalog.pg_trigger"
        " WHERE tgrelid = to_regclass('messages') AND tgname = ANY(%s) AND tgenabled <> 'D'"
        " ORDER BY tgname",
        (list(TRIGGERS),),
    )
    paused = [row[0] for row in cur.fetchall()]
    for name in paused:
        cur.execute(f'ALTER TABLE messages DISABLE TRIGGER "{name}"')
    return paused


def resume_counting(
    cur: Cursor[Any], paused: list[str], hotels: list[uuid.UUID], *, counted: bool = False
) -> None:
    """Count ``hotels`` (new: no counts yet), unless the caller ``counted`` them itself, and
    enable what :func:`pause_counting` disabled."""
    if not paused:
        return
    if hotels and not counted:
        cur.execute(COUNT_NEW_HOTELS, {"hotels": [str(h) for h in hotels]})
    for name in paused:
        cur.execute(f'ALTER TABLE messages ENABLE TRIGGER "{name}"')
