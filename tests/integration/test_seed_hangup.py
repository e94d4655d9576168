"""Seeding work interrupted while it waits on the server: its connections are hung up, the
server rolls back and ends their backends, the interrupt reaches the caller."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import psycopg
import pytest
from sqlalchemy.engine import URL
from waiting import wait_until

from hotelbot_cli.seed import hangup
from hotelbot_cli.settings import libpq_url


def _sleeping(url: URL, pids: list[int]) -> int:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND query LIKE '%%sleep%%'",
            (pids,),
        ).fetchone()
        return int(row[0]) if row else 0


def _alive(url: URL, pids: list[int]) -> int:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.usefixtures("sigint_raises")
def test_an_interrupt_hangs_up_and_the_server_rolls_back(db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as setup:
        setup.execute("CREATE TABLE written (x int)")
    writer = psycopg.connect(libpq_url(db_url))
    streamer = psycopg.connect(libpq_url(db_url), autocommit=True)
    pids = [writer.info.backend_pid, streamer.info.backend_pid]
    for conn in (writer, streamer):  # as the seed's sessions: pg_sleep reads no socket
        conn.execute("SET client_connection_check_interval = '100ms'")

    def work() -> None:  # a transaction that wrote, and a long read on the other connection
        writer.execute("INSERT INTO written VALUES (1)")
        threading.Thread(target=lambda: _ignore(streamer, "SELECT pg_sleep(60)")).start()
        writer.execute("SELECT pg_sleep(60)")

    def interrupt() -> None:
        if wait_until(lambda: _sleeping(db_url, pids) == 2, every=0.02):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            hangup.run(work, (writer, streamer))
        # both backends ended, not cancelled
        assert wait_until(lambda: _alive(db_url, pids) == 0, every=0.02)
        with psycopg.connect(libpq_url(db_url)) as check:
            assert check.execute("SELECT count(*) FROM written").fetchone() == (0,)
        with pytest.raises(psycopg.OperationalError):
            writer.execute("SELECT 1")
    finally:
        writer.close()
        streamer.close()


def _ignore(conn: psycopg.Connection, query: str) -> None:
    with contextlib.suppress(psycopg.OperationalError):  # hung up
        conn.execute(query)


def test_the_work_s_result_and_errors_reach_the_caller(db_url: URL) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        assert hangup.run(lambda: conn.execute("SELECT 41 + 1").fetchone(), (conn,)) == (42,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            hangup.run(lambda: conn.execute("SELECT 1 / 0"), (conn,))
        assert conn.execute("SELECT 1").fetchone() == (1,)  # an error hangs nothing up


def test_hanging_up_a_closed_connection_does_nothing(db_url: URL) -> None:
    conn = psycopg.connect(libpq_url(db_url))
    conn.close()
    hangup.hang_up(conn)
    assert conn.closed


def test_a_second_interrupt_still_waits_for_the_worker() -> None:
    """The caller closes the work's connections once run() re-raises: never while the
    worker may still be inside one of them, however often the user presses Ctrl-C."""
    finished = threading.Event()

    def work() -> None:
        time.sleep(0.6)
        finished.set()

    def interrupt_twice() -> None:
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_twice, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        hangup.run(work, ())
    assert finished.is_set()
