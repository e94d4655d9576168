"""The Python side of a seed: hotels and guests in bounded chunks, made one ahead.

Small tables (hotels, triggers, guests, conversations) are built here; their messages are
made by the server from each chunk's parameters (``server_side``). The chunks are made one
ahead of the load, overlapping the server's work on the previous one: in a forked process
(``seed.forked``) or, where the platform cannot fork, in a thread (:class:`Prefetch`); one
chunk ahead keeps memory bounded.
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


#: The first chunk holds 1/RAMP of a full one; each next one as much as all before it.
RAMP = 8


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

    The first full chunk comes in parts (an eighth, an eighth, a quarter, a half: each as
    large as all before it): nothing is loaded until the first chunk is made, and the
    server writes a chunk's messages more slowly than Python makes the next, so each part
    is ready in time (the reference seed waited 0.17 s for its first full chunk). Later
    boundaries stay where full chunks put them, whole hotels apart in the reference
    dataset: each hotel's rows reach the tables in one sorted run, as its indexes want.
    Chunk boundaries change no row, only the rows' physical order.

    ``stopped`` is asked after every guest: once true, no further chunk is made (an
    interrupted seed does not wait for the rest of a chunk it will never write).
    """
    from hotelbot_cli.seed import generators

    per_guest = opts.conversations_per_guest * opts.messages_per_conversation
    limit = max(opts.chunk_messages // RAMP, 1)
    made = 0  # messages in the chunks cut at the size limit so far: the limit never shrinks
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
            if len(chunk.guests) * per_guest >= limit:
                made += len(chunk.guests) * per_guest
                yield _sorted(chunk)
                chunk = Chunk()
                limit = min(made, opts.chunk_messages)
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


class Prefetch:
    """Generate the next chunk in a thread while the server works on this one (where the
    platform cannot fork: a thread shares the interpreter lock with the load).

    psycopg releases the GIL while it waits for the server, so Python generation and
    server-side generation overlap; one chunk ahead keeps memory bounded. The next chunk
    is started only once the consumer says it is waiting on the server (:meth:`overlap`)
    or asks for that chunk: while the consumer itself runs Python (COPYing a chunk's small
    tables), a generating thread would hold the GIL for up to the 5 ms switch interval
    each time the consumer's socket returns (measured: 0.96 s of wall for 0.23 s of CPU
    in the reference seed's small-table COPYs).

    ``produce`` gets a predicate that turns true when the consumer is gone (done, failed or
    interrupted): it stops within one guest, so the thread is joined at once.
    """

    def __init__(self, produce: Callable[[Callable[[], bool]], Iterator[Any]]) -> None:
        self._produce = produce
        self._slot: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._permits = threading.Semaphore(1)  # the first chunk is made at once
        self._granted = True  # whether the chunk after the one in hand may be made

    def overlap(self) -> None:
        """The consumer waits on the server from now on: make the next chunk meanwhile."""
        if not self._granted:
            self._granted = True
            self._permits.release()

    def __iter__(self) -> Iterator[Any]:
        done = object()
        thread = threading.Thread(
            target=self._work, args=(done,), name="seed-generator", daemon=True
        )
        thread.start()
        try:
            while True:
                self.overlap()  # asked for it: the next chunk is wanted now at the latest
                item = self._slot.get()
                self._granted = False
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            thread.join(timeout=5)

    def _work(self, done: object) -> None:
        try:
            items = iter(self._produce(self._stop.is_set))
            while self._wait_for_permit():
                item = next(items, done)
                self._put(item)
                if item is done:
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put(exc)

    def _wait_for_permit(self) -> bool:
        while not self._stop.is_set():
            if self._permits.acquire(timeout=0.1):
                return True
        return False

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._slot.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
