"""Messages counted per hotel, UTC hour and sentiment, kept by triggers: a flat sentiment_7d.

``sentiment_7d`` counted a hotel's messages of the last 7 days. Already an index-only scan
(010), it still read every message of the window: 4.8-5.4x as long at 10x the messages.
Now:

- ``message_sentiment_hourly (id, hotel_id, hour, sentiment_type, messages)``, one row per
  hotel, UTC hour and sentiment (NULL included: ``UNIQUE NULLS NOT DISTINCT``). A tenant
  table like the others: ``PRIMARY KEY (hotel_id, id)``, row level security enabled and
  forced, the tenant policy of 013, the app role's usual rights (read, insert, delete,
  update the count): its triggers run with its rights, and a tenant can only miscount its
  own hotel.
- ``hotelbot_count_message_sentiment()`` keeps it in the writer's own transaction: one
  upsert per INSERT statement (a transition table, so a COPY or a multi-row INSERT costs
  one statement, not one per row), one UPDATE per DELETE statement (cascades included),
  a -1/+1 per row whose hotel, time or sentiment changes, and TRUNCATE follows TRUNCATE
  (also when one statement truncates both, as ``TRUNCATE hotels CASCADE`` does).
  Rows are locked in key order (no deadlock between two writers of the same hours).
- The count is not in any index, so its update is HOT. Measured on the reference dataset
  (a single-row INSERT per transaction, random hotels, interleaved): the triggers add
  70-100 µs to ~700 µs; covering the count in the key would add ~40 µs more (a count's
  update is then not HOT) for an index-only read.

Online: the table is new; the triggers are created in one short transaction (SHARE ROW
EXCLUSIVE on messages, bounded by lock_timeout); then each hotel is recounted in its own
transaction under ``LOCK messages IN SHARE MODE``: it waits for the writes in flight (every
message is then either counted by it or by a trigger after it) and holds the bot's message
writes back only while that one hotel's messages are counted (milliseconds). A role subject
to row level security turns FORCE off on hotels/messages/the counts for the transaction
that reads them, as the seed does (that lock is stronger and does the same). Re-runnable:
the set-up checks whether it is done, and a recount sets a count (it never adds). The
downgrade drops the triggers, the function and the table.

On Citus ``hotelbot db distribute`` drops the triggers (a trigger on a shard cannot write
another distributed table) and empties the counts; the breakdown there reads the messages.

Revision ID: 014
Revises: 013
Create Date: 2026-12-03
"""

import sqlalchemy as sa

from alembic import context, op
from hotelbot_cli import migration_steps as steps

revision = "014"
down_revision = "013"
branch_labels = None
depends_on = None

APP_ROLE = "app_user"
TABLE = "message_sentiment_hourly"
FUNCTION = "hotelbot_count_message_sentiment()"
#: The tenant form of 013's policies (a revision keeps its own copy of the text).
TENANT = (
    "hotel_id = (SELECT COALESCE("
    "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid"
    " WHERE EXISTS (SELECT 1 FROM hotelbot_private.verified_tenants v"
    " WHERE v.digest = (SELECT sha256(convert_to(current_setting('app.current_hotel_id', true)"
    " || ':' || current_setting('app.tenant_signature', true), 'UTF8')))"
    " AND v.expires_at >= now())),"
    " hotelbot_current_hotel_id()))"
)
#: The hour a message is counted in: date_bin from a UTC origin is absolute time (no
#: TimeZone in it) and ten times cheaper than date_trunc(..., 'UTC').
HOUR = "date_bin('1 hour', {0}.created_at, timestamptz '2000-01-01 00:00+00')"

FUNCTION_BODY = f"""
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        BEGIN
            TRUNCATE {TABLE};
        EXCEPTION WHEN object_in_use THEN
            -- in use by this session: truncated by the same statement (TRUNCATE hotels
            -- CASCADE, or both tables named), or read by an open cursor
            DELETE FROM {TABLE};
        END;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO {TABLE} AS h (hotel_id, hour, sentiment_type, messages)
        SELECT a.hotel_id, {HOUR.format("a")}, a.sentiment_type, count(*)
          FROM added a WHERE a.created_at IS NOT NULL
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (hotel_id, hour, sentiment_type)
        DO UPDATE SET messages = h.messages + EXCLUDED.messages;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM 1 FROM {TABLE} h JOIN (
            SELECT r.hotel_id, {HOUR.format("r")} AS hour, r.sentiment_type FROM removed r
             WHERE r.created_at IS NOT NULL GROUP BY 1, 2, 3) g
            ON h.hotel_id = g.hotel_id AND h.hour = g.hour
           AND h.sentiment_type IS NOT DISTINCT FROM g.sentiment_type
         ORDER BY h.hotel_id, h.hour, h.sentiment_type FOR UPDATE OF h;
        UPDATE {TABLE} h SET messages = h.messages - g.n
          FROM (SELECT r.hotel_id, {HOUR.format("r")} AS hour, r.sentiment_type, count(*) AS n
                  FROM removed r WHERE r.created_at IS NOT NULL GROUP BY 1, 2, 3) g
         WHERE h.hotel_id = g.hotel_id AND h.hour = g.hour
           AND h.sentiment_type IS NOT DISTINCT FROM g.sentiment_type;
    ELSE
        IF OLD.created_at IS NOT NULL THEN
            UPDATE {TABLE} h SET messages = h.messages - 1
             WHERE h.hotel_id = OLD.hotel_id AND h.hour = {HOUR.format("OLD")}
               AND h.sentiment_type IS NOT DISTINCT FROM OLD.sentiment_type;
        END IF;
        IF NEW.created_at IS NOT NULL THEN
            INSERT INTO {TABLE} AS h (hotel_id, hour, sentiment_type, messages)
            VALUES (NEW.hotel_id, {HOUR.format("NEW")}, NEW.sentiment_type, 1)
            ON CONFLICT (hotel_id, hour, sentiment_type)
            DO UPDATE SET messages = h.messages + 1;
        END IF;
    END IF;
    RETURN NULL;
END
"""

#: What the messages say for one hotel (``:h``), stored as the count (never added to);
#: hours without messages any more go to 0.
RECOUNT = f"""
WITH counted AS (
    SELECT {HOUR.format("m")} AS hour, m.sentiment_type, count(*) AS n FROM messages m
     WHERE m.hotel_id = CAST(:h AS uuid) AND m.created_at IS NOT NULL GROUP BY 1, 2),
stored AS (
    INSERT INTO {TABLE} AS h (hotel_id, hour, sentiment_type, messages)
    SELECT CAST(:h AS uuid), c.hour, c.sentiment_type, c.n FROM counted c ORDER BY 2, 3
    ON CONFLICT (hotel_id, hour, sentiment_type) DO UPDATE SET messages = EXCLUDED.messages
    RETURNING 1)
UPDATE {TABLE} h SET messages = 0
 WHERE h.hotel_id = CAST(:h AS uuid) AND h.messages <> 0 AND NOT EXISTS (
    SELECT 1 FROM counted c WHERE c.hour = h.hour
       AND c.sentiment_type IS NOT DISTINCT FROM h.sentiment_type)
"""

TRIGGERS = (
    f"CREATE TRIGGER count_message_sentiment_insert AFTER INSERT ON messages"
    f" REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}",
    f"CREATE TRIGGER count_message_sentiment_delete AFTER DELETE ON messages"
    f" REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}",
    "CREATE TRIGGER count_message_sentiment_update"
    " AFTER UPDATE OF hotel_id, created_at, sentiment_type ON messages FOR EACH ROW"
    " WHEN (OLD.hotel_id IS DISTINCT FROM NEW.hotel_id"
    " OR OLD.created_at IS DISTINCT FROM NEW.created_at"
    " OR OLD.sentiment_type IS DISTINCT FROM NEW.sentiment_type)"
    f" EXECUTE FUNCTION {FUNCTION}",
    "CREATE TRIGGER count_message_sentiment_truncate AFTER TRUNCATE ON messages"
    f" FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}",
)

SET_UP = [
    f"CREATE TABLE {TABLE} ("
    " id uuid NOT NULL DEFAULT gen_random_uuid(),"
    " hotel_id uuid NOT NULL,"
    " hour timestamptz NOT NULL,"
    " sentiment_type sentiment_type,"
    " messages bigint NOT NULL DEFAULT 0,"
    f" CONSTRAINT pk_{TABLE} PRIMARY KEY (hotel_id, id),"
    f" CONSTRAINT fk_{TABLE}_hotel_id_hotels FOREIGN KEY (hotel_id)"
    " REFERENCES hotels (id) ON DELETE CASCADE)",
    f"CREATE UNIQUE INDEX uq_{TABLE}_hotel_id_hour_sentiment_type ON {TABLE}"
    " (hotel_id, hour, sentiment_type) NULLS NOT DISTINCT",
    f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY",
    f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY {TABLE}_tenant_isolation ON {TABLE} FOR ALL TO {APP_ROLE}"
    f" USING ({TENANT}) WITH CHECK ({TENANT})",
    f"REVOKE ALL ON {TABLE} FROM PUBLIC",
    f"GRANT SELECT, INSERT, DELETE, UPDATE (messages) ON {TABLE} TO {APP_ROLE}",
    f"CREATE FUNCTION {FUNCTION} RETURNS trigger LANGUAGE plpgsql AS $$" + FUNCTION_BODY + "$$",
    # pinned to the schema the tables are in, wherever that is, and pg_temp last
    "DO $$ BEGIN EXECUTE format('ALTER FUNCTION hotelbot_count_message_sentiment()"
    " SET search_path = %I, pg_catalog, pg_temp', current_schema()); END $$",
    *TRIGGERS,
]
#: Set-up is one transaction: done when its last trigger exists.
DONE = (
    "SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = to_regclass('messages')"
    " AND tgname = 'count_message_sentiment_truncate'"
)


def _relax(conn: sa.Connection, *tables: str) -> list[str]:
    """FORCE off, for this transaction, where row level security applies to us."""
    relaxed = []
    for table in tables:
        if conn.scalar(sa.text(f"SELECT row_security_active('{table}')")):
            conn.execute(sa.text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
            relaxed.append(table)
    return relaxed


def _force(conn: sa.Connection, tables: list[str]) -> None:
    for table in tables:
        conn.execute(sa.text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))


def _recount_all() -> None:
    """Each hotel recounted in its own transaction, message writes held back meanwhile."""
    if context.is_offline_mode():  # one transaction: every hotel's lock until the end
        each = RECOUNT.replace("CAST(:h AS uuid)", "h_.id").replace("\n", " ").strip()
        steps.lock_timeout()
        op.execute("LOCK TABLE messages IN SHARE MODE")
        op.execute(
            "DO $$ DECLARE h_ record; BEGIN FOR h_ IN SELECT id FROM hotels ORDER BY id LOOP"
            f" {each}; END LOOP; END $$"
        )
        return
    conn = op.get_bind()
    relaxed = _relax(conn, "hotels")
    hotels = [row[0] for row in conn.execute(sa.text("SELECT id FROM hotels ORDER BY id"))]
    _force(conn, relaxed)
    steps.commit("messages")
    for hotel in hotels:
        steps.lock_timeout()
        # no write in flight, none until the commit: every message is counted once (FORCE
        # off, when it has to be, takes the stronger lock itself)
        relaxed = _relax(conn, "messages", TABLE)
        if "messages" not in relaxed:
            conn.execute(sa.text("LOCK TABLE messages IN SHARE MODE"))
        conn.execute(sa.text(RECOUNT), {"h": str(hotel)})
        _force(conn, relaxed)
        steps.commit("messages")


def upgrade() -> None:
    for statement in SET_UP:
        steps.execute(statement, unless=DONE)
    steps.commit("messages")
    _recount_all()


def downgrade() -> None:
    steps.lock_timeout()
    for trigger in TRIGGERS:
        name = trigger.split()[2]
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON messages")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}")
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
