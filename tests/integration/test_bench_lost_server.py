"""Losing the server in the middle of ``hotelbot bench``: one readable line, exit 3 (issue 11).

Reproduced for real: while a bench runs (in its own process, as a user runs it), another
connection ends every session of its database with pg_terminate_backend.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from sqlalchemy.engine import URL

from hotelbot_cli.settings import libpq_url
from tests.performance.conftest import make_dataset


def test_sessions_ended_mid_bench_give_one_line_and_exit_3(db_url: URL) -> None:
    make_dataset(db_url, hotels=3, guests=50, messages=3)
    env = {
        **os.environ,
        "DATABASE_URL": db_url.render_as_string(hide_password=False),
        "COLUMNS": "80",
    }
    bench = subprocess.Popen(
        [sys.executable, "-m", "hotelbot_cli", "bench", "--duration", "600", "--no-reference"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
            running = False
            while not running and bench.poll() is None:  # the throwaway bot login is working
                running = bool(
                    conn.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE datname = %s"
                        " AND usename LIKE 'hotelbot_bench_%%' AND pid <> pg_backend_pid()"
                        " AND pg_sleep(0.05) IS NOT NULL",
                        (db_url.database,),
                    ).fetchone()
                )
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (db_url.database,),
            )
        out, err = bench.communicate()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        left = [
            r[0]
            for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                (f"hotelbot_bench_{bench.pid}_%",),
            )
        ]
        for role in left:  # never leave a cluster-wide role to other tests
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    assert left == []  # the throwaway bot login is dropped on a new connection
    assert bench.returncode == 3, err
    assert err.count("\n") == 1 and err.startswith("error: lost the connection to the database"), (
        err
    )
    assert "Traceback" not in err and out == ""
