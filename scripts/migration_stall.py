#!/usr/bin/env python
"""Worst stall of the bot's queries while a populated database is upgraded from 005 to head.

    python scripts/migration_stall.py [--messages 1000000]

Builds a database at 005 with ``--messages`` messages (set-based SQL: the seeder needs
head), starts the bot's reader and writer (``tests/integration/online_support.py``: the
queries of conversations and messages every 10 ms, one insert and one update per 10 ms),
runs ``migrations.upgrade(head)`` and prints the slowest bot statement, the 99th
percentile and the number of statements. DATABASE_URL (a superuser URL) selects the
server; unset, a throwaway embedded server is used. To measure another version of the
code (e.g. before a change), put its checkout first: ``PYTHONPATH=/path/to/checkout``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from online_support import Traffic, check_hotel_ids, populate_005

from hotelbot_cli import embedded, migrations
from hotelbot_cli.percentiles import percentile
from hotelbot_cli.settings import libpq_url, normalize_url


@contextmanager
def _server() -> Iterator[URL]:
    given = os.environ.get("DATABASE_URL")
    if given:
        yield normalize_url(given)
        return
    with embedded.scratch_server(prefix="hotelbot-stall-") as url:
        yield normalize_url(url)


def measure(admin: URL, messages: int) -> dict[str, object]:
    name = f"hotelbot_stall_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name)
    dsn = libpq_url(url)
    try:
        engine = create_engine(url, poolclass=NullPool)
        migrations.upgrade(engine, "005")
        populate_005(dsn, messages, hotels=50)
        with Traffic(dsn) as traffic:
            time.sleep(1.0)
            start = time.perf_counter()
            migrations.upgrade(engine, "head")
            took = time.perf_counter() - start
            time.sleep(1.0)
        engine.dispose()
        latencies = sorted(v for values in traffic.latencies.values() for v in values)
        total, wrong = check_hotel_ids(dsn)
        return {
            "messages": total,
            "wrong_hotel_ids": wrong,
            "upgrade_seconds": round(took, 1),
            "bot_statements": len(latencies),
            "bot_failures": len(traffic.failures),
            "worst_stall_seconds": round(latencies[-1], 3),
            "p99_seconds": round(percentile(latencies, 99), 4),
            "lock_timeout": os.environ.get("HOTELBOT_MIGRATION_LOCK_TIMEOUT", "default"),
            "code": str(Path(migrations.__file__).resolve().parents[2]),  # the checkout
        }
    finally:
        with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with _server() as admin:
        print(json.dumps(measure(admin, args.messages), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
