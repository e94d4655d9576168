"""The seed's generator thread: one chunk ahead, made while the consumer waits on the server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from hotelbot_cli.seed.chunks import Chunk, Prefetch


class Producer:
    """Chunks numbered by how many hotels they hold, with a record of which were started."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.started: list[int] = []
        self.progress = threading.Condition()

    def __call__(self, stopped: Callable[[], bool]) -> Iterator[Chunk]:
        for number in range(self.count):
            with self.progress:
                self.started.append(number)
                self.progress.notify_all()
            if number == self.fail_at:
                raise RuntimeError(f"generator failed at chunk {number}")
            if stopped():
                return
            yield Chunk(hotels=[None] * number)  # type: ignore[list-item]

    def wait_started(self, count: int) -> bool:
        with self.progress:
            return self.progress.wait_for(lambda: len(self.started) >= count, timeout=5)


def test_every_chunk_arrives_in_order() -> None:
    producer = Producer(5)
    assert [len(chunk.hotels) for chunk in Prefetch(producer)] == [0, 1, 2, 3, 4]


def test_the_next_chunk_waits_until_the_consumer_waits_on_the_server() -> None:
    producer = Producer(3)
    ahead = Prefetch(producer)
    chunks = iter(ahead)
    assert len(next(chunks).hotels) == 0
    # The consumer now runs Python (the chunk's small tables): no generation beside it.
    threading.Event().wait(0.2)
    assert producer.started == [0]
    ahead.overlap()  # the consumer waits on the server: the next chunk is made meanwhile
    assert producer.wait_started(2)
    ahead.overlap()  # said twice for one chunk: still one chunk ahead, not two
    threading.Event().wait(0.2)
    assert producer.started == [0, 1]
    assert len(next(chunks).hotels) == 1
    assert [len(chunk.hotels) for chunk in chunks] == [2]  # asking is permission enough


def test_a_generator_error_reaches_the_consumer() -> None:
    with pytest.raises(RuntimeError, match="chunk 2"):
        list(Prefetch(Producer(4, fail_at=2)))


def test_a_consumer_that_stops_early_stops_the_generator() -> None:
    producer = Producer(100)
    ahead = Prefetch(producer)
    for chunk in ahead:
        ahead.overlap()
        if len(chunk.hotels) == 1:
            break
    # the thread was told to stop and joined: it made at most one chunk past the last taken
    assert len(producer.started) <= 3
    assert not any(t.name == "seed-generator" and t.is_alive() for t in threading.enumerate())
