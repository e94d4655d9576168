"""A populated database at revision 005 and the bot's traffic, for the online-migration tests.

Shared with ``scripts/migration_stall.py`` (which measures the worst stall before/after).
The seeder needs head, so data at 005 is built with set-based SQL here.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors

POPULATE = [
    "INSERT INTO hotels (name, whatsapp_number)"
    " SELECT 'Hotel ' || h, '+7495' || lpad(h::text, 7, '0') FROM generate_series(1, %(hotels)s) h",
    "INSERT INTO guests (hotel_id, phone, name, last_interaction)"
    " SELECT h.id, '+7916' || lpad((row_number() OVER ())::text, 7, '0'), 'Guest ' || g, now()"
    " FROM hotels h, generate_series(1, %(guests)s) g",
    "INSERT INTO conversations (hotel_id, guest_id, status, last_message_at)"
    " SELECT hotel_id, id, 'active', now() - random() * interval '30 days' FROM guests",
    "INSERT INTO messages (conversation_id, message_type, content, created_at)"
    " SELECT c.id, 'incoming', 'Could I get fresh towels in my room, please? #' || g,"
    " now() - g * interval '1 minute' FROM conversations c, generate_series(1, %(per)s) g",
    "INSERT INTO staff_notifications (hotel_id, guest_id, notification_type, title, content)"
    " SELECT hotel_id, guest_id, 'urgent_request', 'Towels', 'Room needs towels'"
    " FROM conversations LIMIT 1000",
]


def populate_005(dsn: str, messages: int, hotels: int = 20) -> None:
    """Fill a database at 005: ``hotels`` hotels, one conversation per guest, 20 messages each."""
    guests = max(messages // (hotels * 20), 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in POPULATE:
            conn.execute(statement, {"hotels": hotels, "guests": guests, "per": 20})
        conn.execute("VACUUM ANALYZE")


def check_hotel_ids(dsn: str) -> tuple[int, int]:
    """(messages, messages whose hotel_id is not their conversation's): the backfill's result."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE m.hotel_id IS DISTINCT FROM c.hotel_id)"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@dataclass
class Traffic:
    """The bot's reads and writes in two threads; records every statement's latency."""

    dsn: str
    pause: float = 0.01
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "write": []})
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        with psycopg.connect(self.dsn) as conn:
            self.targets = conn.execute(
                "SELECT hotel_id, guest_id, id FROM conversations ORDER BY random() LIMIT 500"
            ).fetchall()
        for target in (self._reader, self._writer):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def worst(self) -> float:
        return max((max(v) for v in self.latencies.values() if v), default=0.0)

    def count(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def _timed(self, kind: str, conn: psycopg.Connection, sql: str, params: Any) -> None:
        start = time.perf_counter()
        try:
            conn.execute(sql, params)
        finally:
            self.latencies[kind].append(time.perf_counter() - start)

    def _reader(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                hotel, guest, conversation = random.choice(self.targets)
                self._timed(
                    "read",
                    conn,
                    "SELECT id FROM conversations WHERE hotel_id = %s AND guest_id = %s"
                    " AND status = 'active' ORDER BY last_message_at DESC LIMIT 1",
                    (hotel, guest),
                )
                self._timed(
                    "read",
                    conn,
                    "SELECT content FROM messages WHERE conversation_id = %s"
                    " ORDER BY created_at DESC LIMIT 20",
                    (conversation,),
                )
                time.sleep(self.pause)

    def _writer(self) -> None:
        # The bot of 005 inserts messages without hotel_id, the bot of head with it.
        with_hotel = False
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                hotel, _guest, conversation = random.choice(self.targets)
                try:
                    if with_hotel:
                        self._timed(
                            "write",
                            conn,
                            "INSERT INTO messages (hotel_id, conversation_id, message_type,"
                            " content) VALUES (%s, %s, 'incoming', 'ping')",
                            (hotel, conversation),
                        )
                    else:
                        self._timed(
                            "write",
                            conn,
                            "INSERT INTO messages (conversation_id, message_type, content)"
                            " VALUES (%s, 'incoming', 'ping')",
                            (conversation,),
                        )
                    self._timed(
                        "write",
                        conn,
                        "UPDATE conversations SET last_message_at = now() WHERE id = %s",
                        (conversation,),
                    )
                except errors.NotNullViolation:
                    with_hotel = True
                except psycopg.Error as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(self.pause)
