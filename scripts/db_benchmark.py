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

``growth`` seeds the dataset and the same with ``--factor`` (10) times the messages
per conversation, benchmarks each (same seed, same duration) and prints every
operation's p50 on the big one ÷ on the small one: indexed operations stay flat.

``scaling`` runs the hot-path lookup (``resolve_hotel``) at 1, 2, 4 and 8 clients
against pgbench select-only with the same clients, in throughput.
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


def _bench_json(url: URL, *argv: str) -> dict[str, Any]:
    proc = _hotelbot(url, "bench", "--json", *argv, capture_output=True)
    return dict(json.loads(proc.stdout))


def growth_bench(args: argparse.Namespace, passthrough: list[str]) -> int:
    reports = []
    with _server() as admin:
        for factor in (1, args.factor):
            url = _create(admin, f"hotelbot_bench_growth_{factor}")
            _hotelbot(url, "db", "upgrade", capture_output=True)
            dataset = _dataset_args(args)
            dataset[-1] = str(args.messages_per_conversation * factor)
            _hotelbot(url, "seed", "--quiet", *dataset, capture_output=True)
            reports.append(
                _bench_json(
                    url,
                    "--duration",
                    str(args.duration),
                    "--no-reference",
                    "--no-explain",
                    *passthrough,
                )
            )
    small, big = ({o["name"]: o for o in r["operations"]} for r in reports)
    messages = [r["dataset"]["messages"] for r in reports]
    print(f"growth: {messages[0]:,} -> {messages[1]:,} messages, p50 (main run)")
    print(f"{'operation':24} {'small':>10} {'big':>10} {'big/small':>10}")
    for name, op in small.items():
        other = big.get(name)
        if not other or not op["p50_ms"]:
            continue
        print(
            f"{name:24} {op['p50_ms'] * 1000:8.0f}µs {other['p50_ms'] * 1000:8.0f}µs"
            f" {other['p50_ms'] / op['p50_ms']:9.2f}×"
        )
    return 0


def scaling_bench(args: argparse.Namespace, passthrough: list[str]) -> int:
    rows = []
    with _server() as admin:
        url = _create(admin, "hotelbot_bench_scaling")
        _hotelbot(url, "db", "upgrade", capture_output=True)
        _hotelbot(url, "seed", "--quiet", *_dataset_args(args), capture_output=True)
        for clients in (1, 2, 4, 8):
            report = _bench_json(
                url,
                "--duration",
                str(args.duration),
                "--concurrency",
                str(clients),
                "--ops",
                "resolve_hotel",
                "--no-isolation",
                "--no-explain",
                *passthrough,
            )
            ref = next(
                (r for r in report["references"] if r["clients"] == clients and r["tps"]), None
            )
            ours = report["total_ops"] / report["elapsed_s"]
            rows.append((clients, ours, ref["tps"] if ref else None))
    print(f"{'clients':>7} {'ours ops/s':>11} {'pgbench -S tps':>15} {'ours/pgbench':>13}")
    for clients, ours, tps in rows:
        share = f"{ours / tps:12.2f}×" if tps else "           -"
        print(f"{clients:7} {ours:11,.0f} {tps or 0:15,.0f} {share}")
    return 0


def seed_bench(args: argparse.Namespace, _passthrough: list[str]) -> int:
    with _server() as admin:
        pg_url = _create(admin, "hotelbot_bench_pgbench")

        def pgbench_init() -> float:
            started = time.perf_counter()
            subprocess.run(
                [_bin("pgbench"), "-i", "-q", "-s", "10", libpq_url(pg_url)],
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - started

        # before and after the seed: the host is shared, its load drifts within a run
        pgbench_times = [pgbench_init()]
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
        pgbench_times.append(pgbench_init())
    pgbench_s = sum(pgbench_times) / len(pgbench_times)
    report = json.loads(output)
    rows = sum(report["rows"].values())
    pg_rate = PGBENCH_ROWS[10] / pgbench_s
    seed_rate = rows / report["seconds"]
    print(
        f"pgbench -i -s 10 : {PGBENCH_ROWS[10]:>10,} rows in {pgbench_s:6.2f} s"
        f" = {pg_rate:>11,.0f} rows/s"
        f"  (mean of before {pgbench_times[0]:.2f} s and after {pgbench_times[1]:.2f} s)"
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
    growth = sub.add_parser(
        "growth", help="p50 of every operation at 1x and --factor x the messages"
    )
    growth.add_argument("--duration", type=float, default=10)
    growth.add_argument("--factor", type=int, default=10)
    scaling = sub.add_parser(
        "scaling", help="lookup throughput at 1/2/4/8 clients vs pgbench -S (same clients)"
    )
    scaling.add_argument("--duration", type=float, default=5)
    for command in (seed, queries, growth, scaling):
        command.add_argument("--hotels", type=int, default=50)
        command.add_argument("--guests-per-hotel", type=int, default=1000)
        command.add_argument("--conversations-per-guest", type=int, default=1)
        command.add_argument("--messages-per-conversation", type=int, default=20)
    seed.set_defaults(func=seed_bench)
    queries.set_defaults(func=queries_bench)
    growth.set_defaults(func=growth_bench)
    scaling.set_defaults(func=scaling_bench)
    args, passthrough = parser.parse_known_args(argv)
    if passthrough and args.command == "seed":
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    return int(args.func(args, passthrough))


if __name__ == "__main__":
    sys.exit(main())
