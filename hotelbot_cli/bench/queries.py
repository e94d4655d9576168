"""The bot's SQL, one constant per statement, and the sample content its writes carry.

Every statement carries an explicit ``hotel_id = %(hid)s`` filter (see
:mod:`hotelbot_cli.bench.workload`); the Citus forms are single-shard statements.
"""

from __future__ import annotations

from hotelbot_cli.db import sentiment

RESOLVE_OWNER_SQL = "SELECT id FROM hotels WHERE whatsapp_number = %(number)s AND is_active"
RESOLVE_DEFINER_SQL = "SELECT {fn}(%(number)s)"

#: updated_at from EXCLUDED: Citus allows only IMMUTABLE functions in DO UPDATE SET.
UPSERT_GUEST_SQL = (
    "INSERT INTO guests (hotel_id, phone, last_interaction, updated_at)"
    " VALUES (%(hid)s, %(phone)s, now(), now())"
    " ON CONFLICT (hotel_id, phone) DO UPDATE SET last_interaction = EXCLUDED.last_interaction,"
    " updated_at = EXCLUDED.updated_at"
    " RETURNING id, (xmax = 0) AS created"
)

#: One node: find-or-open in one statement (a data-modifying CTE).
OPEN_CONVERSATION_SQL = (
    "WITH found AS ("
    " SELECT id FROM conversations"
    " WHERE hotel_id = %(hid)s AND guest_id = %(gid)s AND status = 'active'"
    " ORDER BY last_message_at DESC NULLS LAST LIMIT 1),"
    " opened AS ("
    " INSERT INTO conversations (hotel_id, guest_id, status, last_message_at)"
    " SELECT %(hid)s, %(gid)s, 'active', now() WHERE NOT EXISTS (SELECT 1 FROM found)"
    " ON CONFLICT (hotel_id, guest_id) WHERE status = 'active' DO NOTHING"
    " RETURNING id)"
    " SELECT id, false AS opened FROM found UNION ALL SELECT id, true FROM opened"
)
#: Citus runs a data-modifying CTE through the coordinator: there, find-or-open is two
#: single-shard statements in one round trip. The partial unique index on the active
#: conversation is the arbiter, so the INSERT writes nothing when one exists (or waits for a
#: concurrent opener to commit), and FIND_ACTIVE_CONVERSATION_SQL after it sees whichever
#: row is active.
OPEN_CONVERSATION_INSERT_SQL = (
    "INSERT INTO conversations (hotel_id, guest_id, status, last_message_at)"
    " VALUES (%(hid)s, %(gid)s, 'active', now())"
    " ON CONFLICT (hotel_id, guest_id) WHERE status = 'active' DO NOTHING"
    " RETURNING id"
)
#: After losing a race to open it (one node), or after the INSERT above (Citus).
FIND_ACTIVE_CONVERSATION_SQL = (
    "SELECT id, false AS opened FROM conversations"
    " WHERE hotel_id = %(hid)s AND guest_id = %(gid)s AND status = 'active'"
)

INSERT_MESSAGE_SQL = (
    "INSERT INTO messages (hotel_id, conversation_id, message_type, content,"
    " sentiment_score, sentiment_type)"
    " VALUES (%(hid)s, %(cid)s, 'incoming', %(content)s, %(score)s, %(sentiment)s::sentiment_type)"
    " RETURNING id"
)
#: GREATEST keeps the newest time when messages of one conversation commit out of order.
BUMP_CONVERSATION_SQL = (
    "UPDATE conversations SET last_message_at = GREATEST(last_message_at, now())"
    " WHERE hotel_id = %(hid)s AND id = %(cid)s"
)
BUMP_GUEST_SQL = (
    "UPDATE guests SET last_interaction = GREATEST(last_interaction, now()), updated_at = now()"
    " WHERE hotel_id = %(hid)s AND id = %(gid)s"
)

RECENT_MESSAGES_SQL = (
    "SELECT id, message_type, content, sentiment_type, created_at FROM messages"
    " WHERE hotel_id = %(hid)s AND conversation_id = %(cid)s"
    " ORDER BY created_at DESC LIMIT 50"
)

ACTIVE_TRIGGERS_SQL = (
    "SELECT id, name, trigger_type, conditions, message_template, priority FROM triggers"
    " WHERE hotel_id = %(hid)s AND is_active ORDER BY priority"
)

DUE_GUESTS_SQL = (
    "SELECT id, phone, last_interaction FROM guests"
    " WHERE hotel_id = %(hid)s"
    " AND last_interaction >= now() - make_interval(hours => %(hours)s + 1)"
    " AND last_interaction < now() - make_interval(hours => %(hours)s)"
    " ORDER BY last_interaction LIMIT 100"
)

#: One node: the guest's latest message and the notification in one statement.
NOTIFY_STAFF_SQL = (
    "INSERT INTO staff_notifications (hotel_id, guest_id, message_id, notification_type,"
    " title, content)"
    " SELECT m.hotel_id, %(gid)s, m.id, 'negative_sentiment', 'Negative message from a guest',"
    " left(m.content, 200)"
    " FROM messages m WHERE m.hotel_id = %(hid)s AND m.conversation_id = %(cid)s"
    " ORDER BY m.created_at DESC LIMIT 1"
    " RETURNING id"
)
#: Citus plans INSERT … SELECT … LIMIT through the coordinator: there, the message, then
#: the notification, as two single-shard statements.
LATEST_MESSAGE_SQL = (
    "SELECT id, left(content, 200) FROM messages"
    " WHERE hotel_id = %(hid)s AND conversation_id = %(cid)s"
    " ORDER BY created_at DESC LIMIT 1"
)
NOTIFY_STAFF_VALUES_SQL = (
    "INSERT INTO staff_notifications (hotel_id, guest_id, message_id, notification_type,"
    " title, content)"
    " VALUES (%(hid)s, %(gid)s, %(mid)s, 'negative_sentiment', 'Negative message from a guest',"
    " %(content)s)"
    " RETURNING id"
)

PENDING_NOTIFICATIONS_SQL = (
    "SELECT id, notification_type, title, guest_id, created_at FROM staff_notifications"
    " WHERE hotel_id = %(hid)s AND status = 'pending'"
    " ORDER BY created_at DESC LIMIT 20"
)

#: From the hourly counts (revision 014); on Citus, which keeps no counts, from the messages.
#: The window is a literal, as the bot sends it (see ``sentiment.for_window``).
SENTIMENT_WINDOW = "7 days"
SENTIMENT_7D_SQL = sentiment.for_window(sentiment.BREAKDOWN, SENTIMENT_WINDOW)
SENTIMENT_7D_RAW_SQL = sentiment.for_window(sentiment.RAW_BREAKDOWN, SENTIMENT_WINDOW)

SAMPLE_SENTIMENTS = (
    ("positive", 0.7),
    ("positive", 0.4),
    ("neutral", 0.0),
    ("neutral", 0.1),
    ("negative", -0.6),
    ("requires_attention", -0.2),
)
SAMPLE_TEXTS = (
    "Could I get a late checkout tomorrow?",
    "The room is great, thank you!",
    "What time is breakfast served?",
    "The air conditioning does not work.",
    "Can you call me a taxi to the airport?",
)
