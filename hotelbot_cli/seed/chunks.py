"""The Python side of a seed: hotels and guests in bounded chunks, made one ahead in a thread.

Small tables (hotels, triggers, guests, conversations) are built here; their messages are
made by the server from each chunk's parameters (``server_side``). The thread overlaps
this generation with the server's work on the previous chunk (psycopg releases the GIL
while it waits), and one chunk ahead keeps memory bounded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotelbot_cli.seed.generators import HotelPlan
    from hotelbot_cli.seed.options import SeedOptions


@dataclass
class Chunk:
    """Rows of the small tables for some hotels and guests, and the parameters from which the
    server makes their messages (one tuple per conversation, ``server_side.PARAM_NAMES``)."""

    hotels: list[HotelPlan] = field(default_factory=list)
    guests: list[Any] = field(default_factory=list)  # seed/rows.py row types
    conversations: list[Any] = field(default_factory=list)
    params: list[tuple[Any, ...]] = field(default_factory=list)


def chunks(
    opts: SeedOptions,
    first_index: int,
    taken: set[str],
    stopped: Callable[[], bool] = lambda: False,
) -> Iterator[Chunk]:
    """Hotels and guests in chunks of about ``opts.chunk_messages`` messages (bounded memory).

    ``stopped`` is asked after every guest: once true, no further chunk is made (an
    interrupted seed does not wait for the rest of a chunk it will never write).
    """
    from hotelbot_cli.seed import generators

    per_guest = opts.conversations_per_guest * opts.messages_per_conversation
    chunk = Chunk()
    for plan in generators.hotels_iter(opts, first_index, taken):
        chunk.hotels.append(plan)
        for j in range(opts.guests_per_hotel):
            rows = generators.guest(opts, plan, j)
            chunk.guests.append(rows.row)
            chunk.conversations.extend(rows.conversations)
            chunk.params.extend(rows.params)
            if stopped():
                return
            if len(chunk.guests) * per_guest >= opts.chunk_messages:
                yield _sorted(chunk)
                chunk = Chunk()
        if len(chunk.hotels) >= 1000:
            yield _sorted(chunk)
            chunk = Chunk()
    if chunk.hotels or chunk.guests:
        yield _sorted(chunk)


def _sorted(chunk: Chunk) -> Chunk:
    """Rows in (hotel_id, id) order, as the indexes will want them (cheaper index builds).

    The key is the ids' integers (the order ``uuid.UUID`` compares by): comparing the
    UUID objects themselves calls Python-level ``__eq__``/``__lt__`` and cost ~20 % of
    the generator's CPU."""
    for rows in (chunk.guests, chunk.conversations):  # row types of seed/rows.py
        rows.sort(key=lambda row: (row.hotel_id.int, row.id.int))
    chunk.params.sort(key=lambda p: (p[1].int, p[0].int))  # (conversation id, hotel id, …)
    return chunk


def prefetch(produce: Callable[[Callable[[], bool]], Iterator[Chunk]]) -> Iterator[Chunk]:
    """Generate the next chunk in a thread while the server works on this one.

    psycopg releases the GIL while it waits for the server, so Python generation and
    server-side generation overlap; one chunk ahead keeps memory bounded. ``produce`` gets
    a predicate that turns true when the consumer is gone (done, failed or interrupted):
    it stops within one guest, so the thread is joined at once.
    """
    slot: queue.Queue[object] = queue.Queue(maxsize=1)
    done = object()
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work() -> None:
        try:
            for item in produce(stop.is_set):
                put(item)
                if stop.is_set():
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(exc)

    thread = threading.Thread(target=work, name="seed-generator", daemon=True)
    thread.start()
    try:
        while True:
            item = slot.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Chunk)
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
