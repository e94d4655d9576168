"""Database work that an interrupt stops at once: it runs in a thread, the caller only waits.

Interrupted inside a psycopg wait, psycopg cancels the query and waits for the server to
confirm (up to 5 s, then up to 5 s more), and a half-read stream is drained when it is
closed; with two busy connections on a loaded host that took more than 30 s. Here the
work runs in a worker thread, so the interrupt (KeyboardInterrupt, SystemExit: Python
delivers signals to the main thread) reaches the caller while it waits on a lock.
The caller then hangs up the work's connections (``shutdown`` of their sockets: safe
while the worker uses them, nothing is freed under it), so the worker fails at its next
read or write, and the server ends both backends: one that holds an open transaction
rolls it back, one that streams rows stops at its next send. Nothing is waited for but
the worker's exit, which the hang-up makes prompt.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def run(work: Callable[[], T], connections: Sequence[Any]) -> T:
    """``work()``, run in a thread; its result or its exception. Interrupted while waiting,
    hang up ``connections`` (psycopg connections ``work`` uses) and re-raise the interrupt:
    the connections are then closed and must be discarded.

    After the hang-up the caller waits for the worker however long it takes (it fails at
    its next read or write), and a second interrupt does not cut that wait short: the
    caller closes these connections next, and freeing a libpq connection that another
    thread is still inside is a double free (a crash, not an exit code)."""
    outcome: list[Any] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the caller, re-raised there
            failure.append(exc)
        finally:
            finished.set()

    worker = threading.Thread(target=target, name="seed-writer", daemon=True)
    worker.start()
    try:
        finished.wait()  # a lock wait: a signal's handler runs (and raises) here
    except BaseException:
        for conn in connections:
            hang_up(conn)
        _wait_through_interrupts(finished)
        raise
    if failure:
        raise failure[0]
    return outcome[0]


def _wait_through_interrupts(finished: threading.Event) -> None:
    """Wait for the worker's end, whatever interrupts the wait.

    An Event, not ``Thread.join``: on Python 3.11 a join interrupted by a signal marks the
    thread stopped while it still runs (bpo-45274's fix releases its state lock), so every
    later join returns at once and ``is_alive()`` says False.
    """
    while not finished.is_set():
        try:
            finished.wait()
        except BaseException:  # noqa: S112 - a repeated Ctrl-C: keep waiting (see run)
            continue


def hang_up(conn: Any) -> None:
    """Shut the socket of psycopg connection ``conn`` down, both ways (it stays open: the
    owner closes or discards it). The server sees the end of the connection at once; the
    client fails its next read or write (in any thread) instead of waiting for the server.
    """
    with contextlib.suppress(Exception):  # already closed or broken: nothing to hang up
        fd = conn.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
