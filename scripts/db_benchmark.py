#!/usr/bin/env python
"""Database benchmarks, one subcommand each.

    python scripts/db_benchmark.py seed [--hotels 50 --guests-per-hotel 1000 ...]
    python scripts/db_benchmark.py bench [--duration 20 --concurrency 1 ...]

``seed`` times, on the same server in the same run, ``pgbench -i -s 10`` and
``hotelbot seed`` of the reference dataset (50 hotels × 1,000 guests × 1
conversation × 20 messages: 1,000,000 messages, ~1.18 M rows), and prints both
in rows/s, their ratio and the seeding process's peak RSS. DATABASE_URL (a
superuser URL) selects the server; unset, a throwaway embedded server is used.

``bench`` seeds the same reference dataset into a scratch database and runs
``hotelbot bench`` on it (the bot's workload, pgbench select-only as the
reference measured in the same run), passing any further options through.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import embedded, migrations
from hotelbot_cli.settings import libpq_url, normalize_url

PGBENCH_ROWS = {10: 10 + 100 + 1_000_000}


def _bin(name: str) -> str:
    return str(embedded.bin_dir() / name)


def _create(admin_url, name: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.set(database=name)


@contextmanager
def _server() -> Iterator[URL]:
    """DATABASE_URL's server, or a throwaway embedded one (stopped and deleted afterwards)."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield normalize_url(given)
        return
    tmp = Path(tempfile.mkdtemp(prefix="hotelbot-bench-"))
    try:
        yield normalize_url(embedded.start(tmp / "pgdata", database="postgres"))
    finally:
        embedded.stop(tmp / "pgdata")
        shutil.rmtree(tmp, ignore_errors=True)


def _dataset_args(args: argparse.Namespace) -> list[str]:
    return [
        "--hotels", str(args.hotels), "--guests-per-hotel", str(args.guests_per_hotel),
        "--conversations-per-guest", str(args.conversations_per_guest),
        "--messages-per-conversation", str(args.messages_per_conversation),
    ]  # fmt: skip


def _hotelbot(url: URL, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run(
        [sys.executable, "-m", "hotelbot_cli", *argv], env=env, text=True, check=True, **kwargs
    )


def queries_bench(args: argparse.Namespace, passthrough: list[str]) -> int:
    with _server() as admin:
        url = _create(admin, "hotelbot_bench_queries")
        _hotelbot(url, "db", "upgrade", capture_output=True)
        _hotelbot(url, "seed", "--quiet", *_dataset_args(args), capture_output=True)
        _hotelbot(url, "bench", "--duration", str(args.duration), *passthrough)
    return 0


def seed_bench(args: argparse.Namespace, _passthrough: list[str]) -> int:
    with _server() as admin:
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
            sys.executable,
            "-m",
            "hotelbot_cli",
            "seed",
            "--quiet",
            "--json",
            *_dataset_args(args),
        ]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed", help="pgbench -i vs hotelbot seed of the reference dataset")
    queries = sub.add_parser(
        "bench", help="hotelbot bench on the reference dataset (other options go to hotelbot bench)"
    )
    queries.add_argument("--duration", type=float, default=20)
    for command in (seed, queries):
        command.add_argument("--hotels", type=int, default=50)
        command.add_argument("--guests-per-hotel", type=int, default=1000)
        command.add_argument("--conversations-per-guest", type=int, default=1)
        command.add_argument("--messages-per-conversation", type=int, default=20)
    seed.set_defaults(func=seed_bench)
    queries.set_defaults(func=queries_bench)
    args, passthrough = parser.parse_known_args(argv)
    if passthrough and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    return int(args.func(args, passthrough))


if __name__ == "__main__":
    sys.exit(main())
