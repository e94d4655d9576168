"""The seed's forked generator: items in order, its errors raised here, nothing left running."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from hotelbot_cli.errors import HotelbotError
from hotelbot_cli.seed import forked

pytestmark = pytest.mark.skipif(not forked.available(), reason="this platform cannot fork")


def _children_of_mine() -> set[int]:
    """Pids whose parent is this process (Linux: /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.add(int(entry))
    return found


def test_items_arrive_in_order_and_made_in_another_process() -> None:
    def produce() -> Iterator[tuple[int, int, bytes]]:
        for n in range(5):
            yield n, os.getpid(), bytes(100_000 * n)  # larger than the pipe holds

    items = list(forked.Forked(produce))
    assert [n for n, _, _ in items] == [0, 1, 2, 3, 4]
    assert [len(b) for _, _, b in items] == [0, 100_000, 200_000, 300_000, 400_000]
    assert {pid for _, pid, _ in items} != {os.getpid()}


def test_an_error_in_the_child_is_raised_here_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ValueError("hotel 7 has no number")

    got = []
    with pytest.raises(ValueError, match="hotel 7 has no number"):
        for item in forked.Forked(produce):
            got.append(item)
    assert got == [1]


def test_our_own_errors_cross_with_their_hint() -> None:
    from hotelbot_cli.errors import UsageError

    def produce() -> Iterator[int]:
        raise UsageError("the hotel index is taken", "pass --append")
        yield 0  # pragma: no cover - a generator

    with pytest.raises(UsageError) as raised:
        list(forked.Forked(produce))
    assert raised.value.message == "the hotel index is taken"
    assert raised.value.hint == "pass --append"


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickle rebuilds it with one argument
        super().__init__(f"{a}/{b}")


def test_an_error_that_cannot_cross_the_pipe_arrives_as_its_text() -> None:
    def produce() -> Iterator[int]:
        raise _Unpicklable(1, 2)
        yield 0  # pragma: no cover - a generator

    with pytest.raises(RuntimeError, match="_Unpicklable: 1/2"):
        list(forked.Forked(produce))


def test_a_child_that_dies_without_a_word_is_an_error_not_an_empty_seed() -> None:
    def produce() -> Iterator[int]:
        yield 1
        os._exit(3)

    with pytest.raises(HotelbotError, match="ended without a word"):
        list(forked.Forked(produce))


def test_a_child_killed_in_the_middle_of_an_item_is_the_same_error() -> None:
    def produce() -> Iterator[bytes]:
        yield b"first"
        os.kill(os.getpid(), signal.SIGSTOP)  # stopped until the parent kills it below
        yield b""  # pragma: no cover - never reached

    ahead = forked.Forked(produce)
    items = iter(ahead)
    assert next(items) == b"first"
    assert ahead.pid is not None
    os.kill(ahead.pid, signal.SIGKILL)
    with pytest.raises(HotelbotError, match="ended without a word"):
        next(items)


def test_stopping_early_leaves_no_child_behind() -> None:
    def produce() -> Iterator[bytes]:
        while True:  # never ends on its own
            yield bytes(300_000)

    ahead = forked.Forked(produce)
    items = iter(ahead)
    next(items)
    child = ahead.pid
    assert child in _children_of_mine()  # the generator runs
    items.close()  # what the seed's loop does when it stops, however it stops
    assert child not in _children_of_mine() and ahead.pid is None


def test_overlap_asks_nothing_of_a_child() -> None:
    ahead = forked.Forked(lambda: iter([1, 2]))
    ahead.overlap()
    assert list(ahead) == [1, 2]


def test_where_no_process_can_be_forked_the_items_are_made_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert list(forked.Forked(lambda: (os.getpid() for _ in range(3)))) == [os.getpid()] * 3
