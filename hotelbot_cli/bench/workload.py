"""The bot's real database workload: a registry of the operations it performs.

Each operation is a *plan*: a generator that yields batches of statements and
receives their rows; :mod:`hotelbot_cli.bench.driver` sends each batch in one round
trip, inside the transaction it opens and closes. The same plan serves both sides of
the isolation comparison:

- **tenant** mode: as ``app_user`` with ``app.current_hotel_id`` set, under RLS;
- **owner** mode: as the connecting role (which must bypass RLS), no tenant set.

Every statement carries an explicit ``hotel_id = %(hid)s`` filter in both modes: the
bot knows its hotel, inserts need the value, and indexes lead with it; RLS is the
safety net. So the difference between the modes is exactly what tenant isolation
costs: the role switch, the tenant setting and the policies.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hotelbot_cli.bench.queries import (
    ACTIVE_TRIGGERS_SQL,
    BUMP_CONVERSATION_SQL,
    BUMP_GUEST_SQL,
    DUE_GUESTS_SQL,
    FIND_ACTIVE_CONVERSATION_SQL,
    INSERT_MESSAGE_SQL,
    LATEST_MESSAGE_SQL,
    NOTIFY_STAFF_SQL,
    NOTIFY_STAFF_VALUES_SQL,
    OPEN_CONVERSATION_INSERT_SQL,
    OPEN_CONVERSATION_SQL,
    PENDING_NOTIFICATIONS_SQL,
    RECENT_MESSAGES_SQL,
    RESOLVE_DEFINER_SQL,
    RESOLVE_OWNER_SQL,
    SAMPLE_SENTIMENTS,
    SAMPLE_TEXTS,
    SENTIMENT_7D_RAW_SQL,
    SENTIMENT_7D_SQL,
    UPSERT_GUEST_SQL,
)
from hotelbot_cli.errors import UsageError

APP_ROLE = "app_user"

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Stmt:
    """One SQL statement with psycopg ``%(name)s`` parameters."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Statements sent in one round trip; ``final`` commits the transaction in the same trip."""

    statements: tuple[Stmt, ...]
    final: bool = True


Plan = Generator[Batch, list[Rows], Any]


@dataclass(frozen=True)
class Target:
    """What one execution of an operation works on: a hotel and one of its guests."""

    hotel_id: uuid.UUID
    whatsapp_number: str
    guest_id: uuid.UUID
    phone: str
    conversation_id: uuid.UUID


@dataclass(frozen=True)
class Context:
    """Database-specific details the plans need (discovered once per run)."""

    resolve_function: str | None = None
    #: The key the bot's login signs its tenant with (None: the owner signs on the server).
    tenant_key: bytes | None = None
    #: A Citus coordinator: the tenant is bound with ``SET LOCAL``, which reaches the workers.
    propagate: bool = False
    #: Seconds a signature lives (None: ``HOTELBOT_TENANT_TTL`` at every binding). Read
    #: once per run like the key: reading a variable that is not set costs two raised
    #: KeyErrors in ``os.environ``, 5-7 µs of a tenant transaction between round trips.
    tenant_ttl: int | None = None


@dataclass(frozen=True)
class Operation:
    """One thing the bot does against the database."""

    name: str
    description: str
    plan: Callable[[Target, random.Random, Context, bool], Plan]
    #: Index names the plan must use (alternatives separated by ``|``); see explain.py.
    indexes: tuple[str, ...] = ()
    writes: bool = False
    #: False for operations that run before the hotel is known (no tenant is set).
    needs_tenant: bool = True
    #: One statement that is its own transaction (the lookup, as ``db.lookup.find_hotel``
    #: sends it): no BEGIN/COMMIT around it when nothing needs binding first.
    autocommit: bool = False
    #: Relative frequency in the mixed workload (the bot's real mix, roughly).
    weight: int = 1
    #: Its path depends on what an earlier run on the same target left (find-or-open: the
    #: first run opens, the next one finds): compared runs must not share a target.
    state_dependent: bool = False


# --- plans -------------------------------------------------------------------------------


def _resolve_hotel(t: Target, _r: random.Random, ctx: Context, tenant: bool) -> Plan:
    if tenant and ctx.resolve_function:
        sql = RESOLVE_DEFINER_SQL.format(fn=ctx.resolve_function)
    else:
        sql = RESOLVE_OWNER_SQL
    rows = yield Batch((Stmt(sql, {"number": t.whatsapp_number}),))
    return rows[0][0][0] if rows[0] else None


def _upsert_guest(t: Target, r: random.Random, _c: Context, _tenant: bool) -> Plan:
    # Most messages come from known guests; some from a number never seen before.
    phone = t.phone if r.random() < 0.9 else f"+1555{r.randrange(10**7):07d}"
    rows = yield Batch((Stmt(UPSERT_GUEST_SQL, {"hid": t.hotel_id, "phone": phone}),))
    return rows[0][0][0]


def _open_conversation(t: Target, _r: random.Random, c: Context, _tenant: bool) -> Plan:
    params = {"hid": t.hotel_id, "gid": t.guest_id}
    if c.propagate:  # Citus: two single-shard statements, one round trip
        rows = yield Batch(
            (Stmt(OPEN_CONVERSATION_INSERT_SQL, params), Stmt(FIND_ACTIVE_CONVERSATION_SQL, params))
        )
        return rows[1][0][0]
    rows = yield Batch((Stmt(OPEN_CONVERSATION_SQL, params),))
    if not rows[0]:  # another transaction opened it at the same moment: read the winner's
        rows = yield Batch((Stmt(FIND_ACTIVE_CONVERSATION_SQL, params),))
    return rows[0][0][0]


def _store_message(t: Target, r: random.Random, _c: Context, _tenant: bool) -> Plan:
    sentiment, score = r.choice(SAMPLE_SENTIMENTS)
    params = {
        "hid": t.hotel_id,
        "cid": t.conversation_id,
        "gid": t.guest_id,
        "content": r.choice(SAMPLE_TEXTS),
        "score": score,
        "sentiment": sentiment,
    }
    rows = yield Batch(
        (
            Stmt(INSERT_MESSAGE_SQL, params),
            Stmt(BUMP_CONVERSATION_SQL, params),
            Stmt(BUMP_GUEST_SQL, params),
        )
    )
    return rows[0][0][0]


def _recent_messages(t: Target, _r: random.Random, _c: Context, _tenant: bool) -> Plan:
    rows = yield Batch((Stmt(RECENT_MESSAGES_SQL, {"hid": t.hotel_id, "cid": t.conversation_id}),))
    return len(rows[0])


def _active_triggers(t: Target, _r: random.Random, _c: Context, _tenant: bool) -> Plan:
    rows = yield Batch((Stmt(ACTIVE_TRIGGERS_SQL, {"hid": t.hotel_id}),))
    return len(rows[0])


def _due_guests(t: Target, r: random.Random, _c: Context, _tenant: bool) -> Plan:
    hours = r.choice((2, 24, 48, 72))
    rows = yield Batch((Stmt(DUE_GUESTS_SQL, {"hid": t.hotel_id, "hours": hours}),))
    return len(rows[0])


def _notify_staff(t: Target, _r: random.Random, c: Context, _tenant: bool) -> Plan:
    params: dict[str, Any] = {"hid": t.hotel_id, "cid": t.conversation_id, "gid": t.guest_id}
    if not c.propagate:  # one node: one statement, one round trip
        rows = yield Batch((Stmt(NOTIFY_STAFF_SQL, params),))
        return rows[0][0][0] if rows[0] else None
    rows = yield Batch((Stmt(LATEST_MESSAGE_SQL, params),), final=False)
    if not rows[0]:
        return None
    params |= {"mid": rows[0][0][0], "content": rows[0][0][1]}
    rows = yield Batch((Stmt(NOTIFY_STAFF_VALUES_SQL, params),))
    return rows[0][0][0]


def _pending_notifications(t: Target, _r: random.Random, _c: Context, _tenant: bool) -> Plan:
    rows = yield Batch((Stmt(PENDING_NOTIFICATIONS_SQL, {"hid": t.hotel_id}),))
    return len(rows[0])


def _sentiment_7d(t: Target, _r: random.Random, ctx: Context, _tenant: bool) -> Plan:
    sql = SENTIMENT_7D_RAW_SQL if ctx.propagate else SENTIMENT_7D_SQL  # Citus keeps no counts
    rows = yield Batch((Stmt(sql, {"hid": t.hotel_id}),))
    return {str(kind): count for kind, count in rows[0]}


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "resolve_hotel",
            "resolve a hotel from an incoming WhatsApp number",
            _resolve_hotel,
            ("uq_hotels_whatsapp_number|hotels_whatsapp_number_key",),
            needs_tenant=False,
            autocommit=True,
            weight=10,
        ),
        Operation(
            "upsert_guest",
            "find-or-create a guest by phone (upsert)",
            _upsert_guest,
            ("uq_guests_hotel_id_phone",),
            writes=True,
            weight=10,
        ),
        Operation(
            "open_conversation",
            "find-or-open the guest's active conversation",
            _open_conversation,
            (
                "uq_conversations_hotel_id_guest_id_active"
                "|ix_conversations_hotel_id_guest_id_last_message_at",
            ),
            writes=True,
            weight=10,
            state_dependent=True,
        ),
        Operation(
            "store_message",
            "store an incoming message, bump last_message_at and last_interaction",
            _store_message,
            (
                "pk_conversations|uq_conversations_hotel_id_id",
                "pk_guests|uq_guests_hotel_id_id",
            ),
            writes=True,
            weight=10,
        ),
        Operation(
            "recent_messages",
            "load the last 50 messages of a conversation",
            _recent_messages,
            ("ix_messages_hotel_id_conversation_id_created_at",),
            weight=10,
        ),
        Operation(
            "active_triggers",
            "active triggers of a hotel by priority",
            _active_triggers,
            ("ix_triggers_hotel_id_priority_active",),
            weight=4,
        ),
        Operation(
            "due_guests",
            "guests due for a time-based trigger (last interaction in a window)",
            _due_guests,
            ("idx_guests_last_interaction",),
            weight=2,
        ),
        Operation(
            "notify_staff",
            "raise a staff notification for a negative message",
            _notify_staff,
            ("ix_messages_hotel_id_conversation_id_created_at",),
            writes=True,
            weight=1,
        ),
        Operation(
            "pending_notifications",
            "pending notifications of a hotel, newest first",
            _pending_notifications,
            ("ix_staff_notifications_hotel_id_created_at_pending",),
            weight=3,
        ),
        Operation(
            "sentiment_7d",
            "a hotel's sentiment breakdown over the last 7 days",
            _sentiment_7d,
            ("uq_message_sentiment_hourly_hotel_id_hour_sentiment_type",),
            weight=1,
        ),
    )
}


def select_operations(names: Sequence[str] | None) -> list[Operation]:
    """The operations named (all when empty); an unknown name is a UsageError."""
    if not names:
        return list(OPERATIONS.values())
    unknown = [n for n in names if n not in OPERATIONS]
    if unknown:
        raise UsageError(
            f"unknown operation(s): {', '.join(unknown)}",
            "choose among " + ", ".join(OPERATIONS),
        )
    return [OPERATIONS[n] for n in dict.fromkeys(names)]
