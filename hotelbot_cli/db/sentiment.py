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

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import Cursor

#: The table and the triggers that keep it (revision 014).
HOURLY = "message_sentiment_hourly"
COUNTING_FUNCTION = "hotelbot_count_message_sentiment()"
TRIGGERS = (
    "count_message_sentiment_insert",
    "count_message_sentiment_update",
    "count_message_sentiment_delete",
    "count_message_sentiment_truncate",
)

#: The hour a message is counted in (UTC, whatever the session's TimeZone).
HOUR_OF = "date_trunc('hour', {column}, 'UTC')"

#: ``%(hid)s``'s messages since ``now() - %(window)s`` by sentiment type, from the counts.
BREAKDOWN = (
    "SELECT sentiment_type, sum(n)::bigint FROM ("
    " SELECT h.sentiment_type, h.messages AS n FROM message_sentiment_hourly h"
    " WHERE h.hotel_id = %(hid)s"
    " AND h.hour >= date_trunc('hour', now() - %(window)s::interval, 'UTC') + interval '1 hour'"
    " UNION ALL"
    " SELECT m.sentiment_type, count(*) FROM messages m"
    " WHERE m.hotel_id = %(hid)s AND m.created_at >= now() - %(window)s::interval"
    " AND m.created_at"
    " < date_trunc('hour', now() - %(window)s::interval, 'UTC') + interval '1 hour'"
    " GROUP BY m.sentiment_type"
    ") counted GROUP BY sentiment_type HAVING sum(n) > 0"
)

#: The same from the messages themselves (Citus, and the reference the tests compare with).
RAW_BREAKDOWN = (
    "SELECT sentiment_type, count(*) FROM messages"
    " WHERE hotel_id = %(hid)s AND created_at >= now() - %(window)s::interval"
    " GROUP BY sentiment_type"
)

#: A recounted row's id, from its natural key: the same seed gives the same rows, ids
#: included (rows the triggers add get random ones).
ROW_ID = (
    "CAST(md5(hotel_id::text || '/' || extract(epoch FROM hour)::bigint || '/'"
    " || coalesce(sentiment_type::text, '-')) AS uuid)"
)

#: Recount the hours of the hotels in ``%(hotels)s`` (uuid[]) from their messages: what the
#: seed runs after a load with the triggers disabled. A count set to what the messages say
#: (not added to), and hours without messages any more set to 0, so running it twice is
#: harmless.
RECOUNT = (
    "WITH counted AS ("
    " SELECT hotel_id, " + HOUR_OF.format(column="created_at") + " AS hour, sentiment_type,"
    " count(*) AS n FROM messages"
    " WHERE hotel_id = ANY(%(hotels)s::uuid[]) AND created_at IS NOT NULL"
    " GROUP BY 1, 2, 3),"
    " stored AS ("
    " INSERT INTO message_sentiment_hourly AS h (id, hotel_id, hour, sentiment_type, messages)"
    " SELECT " + ROW_ID + ", hotel_id, hour, sentiment_type, n FROM counted ORDER BY 2, 3, 4"
    " ON CONFLICT (hotel_id, hour, sentiment_type) DO UPDATE SET messages = EXCLUDED.messages"
    " RETURNING 1)"
    " UPDATE message_sentiment_hourly h SET messages = 0"
    " WHERE h.hotel_id = ANY(%(hotels)s::uuid[]) AND h.messages <> 0 AND NOT EXISTS ("
    " SELECT 1 FROM counted c WHERE c.hotel_id = h.hotel_id AND c.hour = h.hour"
    " AND c.sentiment_type IS NOT DISTINCT FROM h.sentiment_type)"
)


def pause_counting(cur: Cursor[Any]) -> list[str]:
    """Disable the counting triggers (those that exist) for a bulk load; return their names.

    For the seed, which holds its tables locked and recounts the hotels it wrote
    (:func:`recount`) in the same transaction: one GROUP BY over the load instead of one per
    COPY batch, and the load may drop and rebuild the counts' key. DDL is transactional: an
    interrupted load leaves the triggers as they were.
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


def resume_counting(cur: Cursor[Any], paused: list[str], hotels: list[uuid.UUID]) -> None:
    """Recount ``hotels`` and enable the triggers :func:`pause_counting` disabled."""
    if not paused:
        return
    cur.execute(RECOUNT, {"hotels": [str(h) for h in hotels]})
    for name in paused:
        cur.execute(f'ALTER TABLE messages ENABLE TRIGGER "{name}"')
