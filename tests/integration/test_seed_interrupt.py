"""An interrupted seeding run (Ctrl-C or a killed process) leaves the previous data intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from waiting import wait_until

from hotelbot_cli.seed import SeedOptions, seed
from hotelbot_cli.settings import libpq_url

BIG = [
    "--hotels", "20", "--guests-per-hotel", "2000", "--conversations-per-guest", "1",
    "--messages-per-conversation", "20", "--truncate", "--yes", "--quiet",
]  # fmt: skip


def _state(url: URL) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM hotels), (SELECT count(*) FROM messages),"
            " (SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM guests),"
            " (SELECT count(*) FROM pg_index WHERE indrelid = 'messages'::regclass)"
        ).fetchall()


def _seeding_backends(url: URL, query_like: str = "%") -> int:
    with psycopg.connect(libpq_url(url.set(database="postgres")), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE %s"
            " AND pid <> pg_backend_pid() AND application_name = 'hotelbot'",
            (url.database, query_like),
        ).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_reseed_changes_nothing(engine: Engine, db_url: URL, sig: int) -> None:
    seed(engine, SeedOptions(hotels=2, guests_per_hotel=10))
    before = _state(db_url)
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotelbot_cli", "seed", *BIG],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        loading = wait_until(lambda: _seeding_backends(db_url, "%COPY messages%") > 0, 60)
        assert loading, proc.communicate(timeout=60)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the test already failed
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
    # the server notices the dead client (client_connection_check_interval) and rolls back
    assert wait_until(lambda: _seeding_backends(db_url) == 0, 30)
    assert _state(db_url) == before


@pytest.mark.usefixtures("sigint_raises")
def test_an_interrupt_after_the_commit_keeps_the_rows(engine: Engine, db_url: URL) -> None:
    """Ctrl-C while both connections VACUUM and ANALYZE: the interrupt reaches the caller,
    neither backend is left running, and the committed rows stay."""
    from hotelbot_cli.seed import MAINTENANCE

    def progress(step: str, done: int, _total: int) -> None:
        if step == MAINTENANCE and done == 1:  # one table done, the others under way
            os.kill(os.getpid(), signal.SIGINT)

    options = SeedOptions(hotels=3, guests_per_hotel=50)
    with pytest.raises(KeyboardInterrupt):
        seed(engine, options, progress)
    assert wait_until(lambda: _seeding_backends(db_url) == 0, 30)
    assert _state(db_url)[0][:2] == (3, options.planned_rows()["messages"])
