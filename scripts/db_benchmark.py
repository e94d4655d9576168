#!/usr/bin/env python
"""Database benchmarks, one subcommand each.

    python scripts/db_benchmark.py seed [--hotels 50 --guests-per-hotel 1000 ...]
    python scripts/db_benchmark.py bench [--duration 20 --concurrency 1 ...]
    python scripts/db_benchmark.py isolation-floor [--rounds 7 --seconds 1]
    python scripts/db_benchmark.py policy-cost [--transactions 4000 --rounds 7]

``seed`` times, on the same server in the same run, ``pgbench -i -s 10``, ``hotelbot
seed`` of the reference dataset (50 hotels × 1,000 guests × 1 conversation × 20
messages: 1,000,000 messages, ~1.18 M rows) and *the floor*: the exact rows the seed
wrote, replayed from binary files in one transaction (TRUNCATE, COPY FREEZE, the same
indexes, keys and foreign keys, ANALYZE). It prints rows/s against pgbench, the seed's
time against the floor's, where each second goes in both, and the seeding process's peak
RSS, ``--runs`` (2) times. DATABASE_URL (a superuser URL) selects the server; unset, a
throwaway embedded server is used.

``bench`` seeds the same reference dataset into a scratch database and runs
``hotelbot bench`` on it (the bot's workload, pgbench select-only as the
reference measured in the same run), passing any further options through.

``bench`` and ``growth`` pin the server to the last CPU and their clients to the others
(``--placement split``, the default where the server runs on this machine): see
``_placement`` for why; ``--placement free`` leaves it to the scheduler.

``growth`` seeds the dataset and the same with ``--factor`` (10) times the messages
per conversation, benchmarks them alternately ``--rounds`` (2) times (same seed, same
duration) and prints every operation's median p50 on the big one ÷ on the small one, then
how many rows per hotel the windowed operations (``sentiment_7d``, ``due_guests``) read on
each: an indexed lookup stays flat, a count over a window that holds more rows cannot.

``isolation-floor`` runs each tenant operation's transaction (BEGIN, the tenant binding,
its statements, COMMIT, pipelined) with ``pgbench -M prepared`` as the owner and as a bot
login, alternately ``--rounds`` (7) times ``--seconds`` (1) each, and prints the median
latencies and their ratio: the isolation cost without a Python client on either side.

``policy-cost`` measures the server's share alone: a PL/pgSQL procedure runs each one-read
operation ``--transactions`` (4000) times, each its own transaction (the binding, the read,
COMMIT), as the owner and as a bot login, under the installed tenant policies and under
simpler forms put in their place (``true``, the bare setting, ...), the fastest of
``--rounds`` (7) calls per side; the policies are put back afterwards.

``scaling`` runs the hot-path lookup (``resolve_hotel``) at 1, 2, 4 and 8 clients, as
threads of one process and as one process per client (``bench --processes``), against
pgbench select-only with the same clients, in throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

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
    with embedded.scratch_server(prefix="hotelbot-bench-") as url:
        yield normalize_url(url)


def _postmaster(url: URL) -> int | None:
    """The pid of ``url``'s postmaster when it runs on this machine: a backend's parent."""
    with psycopg.connect(libpq_url(url)) as conn:  # read while the backend lives
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:
            stat = Path(f"/proc/{row[0] if row else 0}/stat").read_text()
        except OSError:  # another machine, another pid namespace, or not Linux
            return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _idle_policy(sysfs: Path = Path("/sys")) -> str:
    """How this machine's CPUs idle, as Linux reports it (empty when it does not).

    It shapes every latency here: on this VM the haltpoll governor polls for 0 ns, so an
    idle vCPU halts at once and waking it costs more the longer it idled. One lookup took
    99-141 µs right after the previous one and 169-205 µs after 800 µs of client work, and
    pgbench keeps those gaps far shorter than a Python client does.
    """
    try:
        driver = (sysfs / "devices/system/cpu/cpuidle/current_driver").read_text().strip()
    except OSError:
        return ""
    poll = sysfs / "module/haltpoll/parameters/guest_halt_poll_ns"
    with contextlib.suppress(OSError):
        return f"{driver}, guest_halt_poll_ns={poll.read_text().strip()}"
    return driver


@contextmanager
def _placement(url: URL, mode: str) -> Iterator[str]:
    """Pin the server to the last CPU and this process (so ``hotelbot bench`` and its
    pgbench) to the others, for the run; say what was done.

    On this 2-vCPU machine a statement's round trip took 33 µs when client and backend
    shared a CPU and 115 µs when they did not, and the scheduler moves backends between the
    two every second or so: connections of one run differed by up to 2x, and so did the
    tenant and owner sides of a ratio. Split placement is the deployment's shape (the bot
    and its database on different cores), the same for every connection, pgbench's too.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if mode == "free" or len(cpus) < 2:
        yield "free (the scheduler places client and server)"
        return
    server = _postmaster(url)
    if server is None:
        yield "free (the server is not a process of this machine)"
        return
    try:
        server_before = os.sched_getaffinity(server)
        os.sched_setaffinity(server, {cpus[-1]})  # backends forked from now on inherit it
    except OSError as exc:
        yield f"free (cannot pin the server: {exc.strerror})"
        return
    client_before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus[:-1]))
    try:
        yield f"split: server on CPU {cpus[-1]}, clients on CPU {','.join(map(str, cpus[:-1]))}"
    finally:
        os.sched_setaffinity(0, client_before)
        with contextlib.suppress(OSError):  # the server is gone: nothing to restore
            os.sched_setaffinity(server, server_before)


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
        with _placement(url, args.placement) as placement:
            print(f"placement: {placement}", flush=True)
            if idle := _idle_policy():
                print(f"cpu idle: {idle}", flush=True)
            _hotelbot(url, "bench", "--duration", str(args.duration), *passthrough)
    return 0


def _bench_json(url: URL, *argv: str) -> dict[str, Any]:
    proc = _hotelbot(url, "bench", "--json", *argv, capture_output=True)
    return dict(json.loads(proc.stdout))


def _window_rows(url: URL) -> dict[str, float]:
    """Per hotel, on average: the messages ``sentiment_7d`` counts and the guests ``due_guests``
    returns (24 h ago), read with the operations' own SQL. A windowed count can stay flat only
    if its window does not hold more rows; this says whether it does."""
    from hotelbot_cli.bench.queries import DUE_GUESTS_SQL, SENTIMENT_7D_SQL

    counted = due = 0
    with psycopg.connect(libpq_url(url)) as conn:
        hotels = [row[0] for row in conn.execute("SELECT id FROM hotels")]
        for hid in hotels:
            counted += sum(n for _kind, n in conn.execute(SENTIMENT_7D_SQL, {"hid": hid}))
            due += len(conn.execute(DUE_GUESTS_SQL, {"hid": hid, "hours": 24}).fetchall())
    return {"sentiment_7d": counted / len(hotels), "due_guests": due / len(hotels)}


def growth_bench(args: argparse.Namespace, passthrough: list[str]) -> int:
    """Seed both datasets on one server, then bench them alternately ``--rounds`` times.

    Alternating spreads whatever else the machine does over both sides: an operation that
    reads only ``hotels`` (``resolve_hotel``) cannot depend on the messages, so its ratio is
    the run's noise floor. Each side's p50 is the median of its rounds' p50s.
    """
    factors = (1, args.factor)
    urls, windows = [], []
    with _server() as admin:
        for factor in factors:
            url = _create(admin, f"hotelbot_bench_growth_{factor}")
            _hotelbot(url, "db", "upgrade", capture_output=True)
            dataset = _dataset_args(args)
            dataset[-1] = str(args.messages_per_conversation * factor)
            _hotelbot(url, "seed", "--quiet", *dataset, capture_output=True)
            urls.append(url)
            windows.append(_window_rows(url))
        reports: list[list[dict[str, Any]]] = [[], []]
        with _placement(admin, args.placement) as placement:
            for _round in range(args.rounds):
                for side, url in enumerate(urls):
                    bench = ("--duration", str(args.duration), "--no-reference", "--no-explain")
                    reports[side].append(_bench_json(url, *bench, *passthrough))
    p50s = [_median_p50s(side) for side in reports]
    messages = [side[0]["dataset"]["messages"] for side in reports]
    print(
        f"growth: {messages[0]:,} -> {messages[1]:,} messages, p50 (main run),"
        f" median of {args.rounds} alternating round(s); placement: {placement}"
        + (f"; cpu idle: {idle}" if (idle := _idle_policy()) else "")
    )
    print(f"{'operation':24} {'small':>10} {'big':>10} {'big/small':>10}")
    for name, small in p50s[0].items():
        big = p50s[1].get(name)
        if not big or not small:
            continue
        print(f"{name:24} {small * 1000:8.0f}µs {big * 1000:8.0f}µs {big / small:9.2f}×")
    for name in windows[0]:
        small, big = windows[0][name], windows[1][name]
        share = f"{big / small:.2f}×" if small else "-"
        print(f"per hotel, rows {name} covers: {small:,.0f} -> {big:,.0f} ({share})")
    return 0


def _median_p50s(reports: list[dict[str, Any]]) -> dict[str, float]:
    """Each operation's median p50 (ms) over the rounds of one dataset."""
    samples: dict[str, list[float]] = {}
    for report in reports:
        for op in report["operations"]:
            if op["p50_ms"]:
                samples.setdefault(op["name"], []).append(float(op["p50_ms"]))
    return {name: statistics.median(values) for name, values in samples.items()}


def scaling_bench(args: argparse.Namespace, passthrough: list[str]) -> int:
    """Lookup throughput at 1/2/4/8 clients, threads in one process and one process per
    client (``--processes``), each against pgbench -S with the same clients, same run."""
    rows = []
    with _server() as admin:
        url = _create(admin, "hotelbot_bench_scaling")
        _hotelbot(url, "db", "upgrade", capture_output=True)
        _hotelbot(url, "seed", "--quiet", *_dataset_args(args), capture_output=True)
        for clients in (1, 2, 4, 8):
            measured = {}
            for processes in (1, clients) if clients > 1 else (1,):
                report = _bench_json(
                    url, "--duration", str(args.duration), "--concurrency", str(clients),
                    "--processes", str(processes), "--ops", "resolve_hotel", "--no-isolation",
                    "--no-explain", *passthrough,
                )  # fmt: skip
                ref = next(
                    (r for r in report["references"] if r["clients"] == clients and r["tps"]),
                    None,
                )
                measured[processes] = (
                    report["total_ops"] / report["elapsed_s"],
                    ref["tps"] if ref else None,
                )
            rows.append((clients, measured.get(1), measured.get(clients) if clients > 1 else None))
    print(f"{'clients':>7} {'threads ops/s':>14} {'× pgbench -S':>12} {'processes ops/s':>16}"
          f" {'× pgbench -S':>12}")  # fmt: skip
    for clients, threads, procs in rows:
        cells = []
        for found in (threads, procs):
            if found is None:
                cells.append(f"{'-':>14} {'-':>12}")
                continue
            ours, tps = found
            share = f"{ours / tps:11.2f}×" if tps else f"{'-':>12}"
            cells.append(f"{ours:14,.0f} {share}")
        print(f"{clients:7} {cells[0]} {cells[1]:>29}")
    return 0


_PARAM = re.compile(r"%\((\w+)\)s")


def _pgbench_script(statements: list[tuple[str, dict[str, Any] | None]]) -> tuple[str, list[str]]:
    """One pipelined transaction as a pgbench script and its ``-D`` variables.

    Parameters stay parameters (``:name`` is ``$n`` under ``-M prepared``), so the server
    plans and runs exactly what psycopg sends it; no value is spliced into the text.
    """
    lines, defines = ["\\startpipeline"], []
    for sql, params in statements:
        lines.append(_PARAM.sub(r":\1", sql).replace("%%", "%") + ";")
        defines += [f"{name}={value}" for name, value in (params or {}).items()]
    return "\n".join([*lines, "\\endpipeline", ""]), defines


def _pgbench_latencies_us(
    url: URL, script: Path, defines: list[str], seconds: float
) -> list[float]:
    """Every transaction's latency (µs) of ``script`` run by pgbench for ``seconds``: its
    per-transaction log, so that a median is taken, not an average an fsync stall moves."""
    from hotelbot_cli.bench.reference import find_pgbench

    prefix = script.with_name(f"{script.stem}-log")
    argv = [str(find_pgbench()), "-n", "-M", "prepared", "-T", str(max(1, round(seconds)))]
    run = subprocess.run(
        [*argv, "-l", f"--log-prefix={prefix}", *(a for d in defines for a in ("-D", d)),
         "-f", str(script), libpq_url(url.set(password=None))],
        env={**os.environ, "PGPASSWORD": url.password or ""},
        capture_output=True, text=True, check=False, cwd=script.parent,
    )  # fmt: skip
    logs = sorted(script.parent.glob(f"{prefix.name}.*"))
    if run.returncode != 0 or not logs:
        last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"pgbench failed on {script.name}: {last[0]}")
    latencies = []
    for log in logs:
        latencies += [float(line.split()[2]) for line in log.read_text().splitlines()]
        log.unlink()
    return latencies


#: Seconds the floor's signature lives: longer than any run of it.
_FLOOR_TTL = 4 * 3600


def _same_rows(
    name: str,
    owner: tuple[psycopg.Connection[Any], list[tuple[str, Any]]],
    tenant: tuple[psycopg.Connection[Any], list[tuple[str, Any]]],
    statements: list[tuple[str, Any]],
) -> None:
    """Both sides' transaction, rolled back, must touch as many rows: a tenant that sees
    nothing (an expired or unregistered signature) would look cheap, not isolated."""
    counts = []
    for conn, opening in (owner, tenant):
        with conn.transaction(force_rollback=True):
            for sql, params in opening:
                conn.execute(sql, params)
            counts.append([conn.execute(sql, params).rowcount for sql, params in statements])
    if counts[0] != counts[1]:
        raise SystemExit(f"{name}: the owner touched {counts[0]} rows, the tenant {counts[1]}")


class _Sides(NamedTuple):
    """A seeded scratch database's owner and bot, and the tenant both benchmarks bind."""

    url: URL
    admin: psycopg.Connection[Any]
    bot_url: URL
    bot: psycopg.Connection[Any]
    target: Any
    ctx: Any
    #: The tenant binding the bot sends (its signature already registered).
    binding: list[tuple[str, dict[str, Any] | None]]


@contextmanager
def _owner_and_bot(args: argparse.Namespace, database: str) -> Iterator[_Sides]:
    """``database`` made afresh, migrated and seeded with ``args``' dataset, placed as
    ``--placement`` says, with autocommit connections as its owner and as a throwaway bot
    login (member of the app role only), and one hotel to bind. Its signature outlives the
    run (the bot's default of 300 s would expire in it) and is registered once, as a
    bot's connection registers it."""
    from hotelbot_cli.bench.login import bot_login
    from hotelbot_cli.bench.survey import survey
    from hotelbot_cli.bench.workload import APP_ROLE
    from hotelbot_cli.db.tenant import tenant_binding
    from hotelbot_cli.db.tenant_cache import registered_signatures

    with _server() as admin_url:
        url = _create(admin_url, database)
        _hotelbot(url, "db", "upgrade", capture_output=True)
        _hotelbot(url, "seed", "--quiet", *_dataset_args(args), capture_output=True)
        with (
            _placement(url, args.placement) as placement,
            psycopg.connect(libpq_url(url), autocommit=True) as admin,
            bot_login(admin, url, APP_ROLE, None) as login,
            psycopg.connect(libpq_url(login.url), autocommit=True) as bot,
        ):
            print(f"placement: {placement}", flush=True)
            found = survey(admin, url, 1)
            target, ctx = found.targets[0], found.ctx
            signed = {"key": ctx.tenant_key, "ttl": _FLOOR_TTL}
            with bot.transaction():
                registered = registered_signatures(bot)
                for sql, params in tenant_binding(
                    target.hotel_id, None, registered=registered, **signed
                ):
                    bot.execute(sql, params)
            binding = tenant_binding(target.hotel_id, None, **signed)
            yield _Sides(url, admin, login.url, bot, target, ctx, binding)


def _tenant_batches(target: Any, ctx: Any, seed: int) -> list[tuple[Any, Any]]:
    """(operation, its first batch on ``target``) of every operation that binds a tenant."""
    import random

    from hotelbot_cli.bench.workload import OPERATIONS

    return [
        (op, next(op.plan(target, random.Random(seed), ctx, True)))
        for op in OPERATIONS.values()
        if op.needs_tenant
    ]


def isolation_floor(args: argparse.Namespace, _passthrough: list[str]) -> int:
    """The isolation ratio with a C client: each operation's transaction, as the bench's
    isolation phase sends it (BEGIN, the tenant binding, the statements, COMMIT, pipelined),
    run by ``pgbench -M prepared`` as the owner and as the bot's login, alternately
    ``--rounds`` times (median). What is left is the server's share of the isolation cost:
    the binding statement and the policies; Python's share is what ``bench`` adds to both."""
    with (
        _owner_and_bot(args, "hotelbot_bench_floor") as on,
        tempfile.TemporaryDirectory(prefix="hotelbot-floor-") as tmp,
    ):
        for op, batch in _tenant_batches(on.target, on.ctx, args.seed):
            statements = [(s.sql, s.params) for s in batch.statements]
            sides = {}
            for side, opening, who in (("owner", [], on.url), ("tenant", on.binding, on.bot_url)):
                text, defines = _pgbench_script(
                    [("BEGIN", None), *opening, *statements, ("COMMIT", None)]
                )
                script = Path(tmp, f"{op.name}-{side}.sql")
                script.write_text(text)
                sides[side] = (who, script, defines)
            _same_rows(op.name, (on.admin, []), (on.bot, on.binding), statements)
            samples: dict[str, list[float]] = {"owner": [], "tenant": []}
            for _ in range(args.rounds):  # alternating: a slow moment meets both sides
                for side, (who, script, defines) in sides.items():
                    samples[side] += _pgbench_latencies_us(who, script, defines, args.seconds)
            owner, tenant = _median(samples["owner"]), _median(samples["tenant"])
            print(f"{op.name:22} owner {owner:7.0f} µs  tenant {tenant:7.0f} µs"
                  f"  ratio {tenant / owner:5.2f}×", flush=True)  # fmt: skip
    return 0


#: Policies ``policy-cost`` puts in place of each ``<table>_tenant_isolation`` in turn
#: (``{column}``: the table's tenant column), cheapest first; then the installed one. The
#: cache lookup and the installed policy are unforgeable; the three before them are what any
#: policy costs at least.
_POLICY_FORMS = {
    "true (no isolation)": "true",
    "the bare setting (forgeable)": (
        "{column} = NULLIF(current_setting('app.current_hotel_id', true), '')::uuid"
    ),
    "the setting in an InitPlan (forgeable)": (
        "{column} = (SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"
    ),
    "the cache lookup, no fallback": (
        "{column} = (SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid"
        " WHERE EXISTS (SELECT 1 FROM hotelbot_private.verified_tenants v"
        " WHERE v.digest = (SELECT sha256(convert_to(current_setting('app.current_hotel_id',"
        " true) || ':' || current_setting('app.tenant_signature', true), 'UTF8')))"
        " AND v.expires_at >= now()))"
    ),
}
_INSTALLED = "installed"
_TENANT_POLICIES = (
    "SELECT c.relname, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)"
    " FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid"
    " WHERE p.polname = c.relname || '_tenant_isolation' ORDER BY 1"
)


def _plpgsql_literal(value: Any) -> tuple[str, str]:
    """``value`` of an operation's parameter as a PL/pgSQL (type, literal)."""
    import uuid

    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int):
        return "integer" if -(2**31) <= value < 2**31 else "bigint", str(value)
    if isinstance(value, float):
        return "double precision", repr(value)
    kind = "uuid" if isinstance(value, uuid.UUID) else "text"
    return kind, "'" + str(value).replace("'", "''") + "'"


def _loop_procedure(name: str, statements: list[tuple[str, dict[str, Any] | None]]) -> str:
    """A procedure that runs ``statements`` (SELECTs: the binding, then a read)
    ``transactions`` times, each its own transaction, and says how long one took (µs).

    Their parameters become PL/pgSQL variables, so the server keeps generic plans as it
    does for psycopg's prepared statements; PERFORM computes every row, as a client reads.
    """
    declare, body = [], []
    for n, (sql, params) in enumerate(statements):
        for key, value in (params or {}).items():
            kind, literal = _plpgsql_literal(value)
            declare.append(f"    p{n}_{key} {kind} := {literal};\n")
        if not sql.startswith("SELECT "):
            raise ValueError(f"not a SELECT: {sql[:40]}")
        text = _PARAM.sub(rf"p{n}_\1", sql).replace("%%", "%")
        body.append(f"        PERFORM {text.removeprefix('SELECT ')};\n")
    return f"""CREATE PROCEDURE {name}(transactions integer, INOUT per_transaction_us float8)
LANGUAGE plpgsql AS $loop$
#variable_conflict use_column
DECLARE
{"".join(declare)}    started timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..transactions LOOP
{"".join(body)}        COMMIT;
    END LOOP;
    per_transaction_us := extract(epoch FROM clock_timestamp() - started) * 1e6 / transactions;
END
$loop$"""


def _set_policies(conn: psycopg.Connection[Any], policies: dict[str, tuple[str, str]]) -> None:
    """``ALTER POLICY <table>_tenant_isolation`` to each table's (USING, WITH CHECK)."""
    with conn.transaction():
        for table, (using, check) in policies.items():
            conn.execute(
                f"ALTER POLICY {table}_tenant_isolation ON {table} USING ({using})"
                f" WITH CHECK ({check})"
            )


def _policy_forms(
    installed: dict[str, tuple[str, str]],
) -> dict[str, dict[str, tuple[str, str]]]:
    """Each form's (USING, WITH CHECK) for every table of ``installed``, then ``installed``;
    the tenant column of each as rls-check knows it (the root's key, else the tenant column)."""
    from hotelbot_cli.rls.config import RlsConfig

    cfg = RlsConfig()
    forms = {
        name: {t: (form.format(column=cfg.root_column if t == cfg.root_table
                               else cfg.tenant_column),) * 2
               for t in installed}
        for name, form in _POLICY_FORMS.items()
    }  # fmt: skip
    return forms | {_INSTALLED: installed}


def _reads(target: Any, ctx: Any, seed: int) -> list[tuple[str, Any]]:
    """(name, statement) of every tenant operation that is one read: a loop may repeat it."""
    return [
        (op.name, batch.statements[0])
        for op, batch in _tenant_batches(target, ctx, seed)
        if not op.writes and len(batch.statements) == 1
    ]


def policy_cost(args: argparse.Namespace, _passthrough: list[str]) -> int:
    """The server's cost of each form of the tenant check, with no protocol and no client:
    a procedure runs each read operation ``--transactions`` times (its binding, its
    statement, COMMIT) as the owner and as the bot's login, under every policy of
    :data:`_POLICY_FORMS` and the installed one; the fastest of ``--rounds`` per side."""
    from hotelbot_cli.bench.workload import APP_ROLE

    with _owner_and_bot(args, "hotelbot_bench_policy") as on:
        admin = on.admin
        installed = {t: (q, c) for t, q, c in admin.execute(_TENANT_POLICIES).fetchall()}
        admin.execute("CREATE SCHEMA hotelbot_policy_cost")
        admin.execute(f"GRANT USAGE ON SCHEMA hotelbot_policy_cost TO {APP_ROLE}")
        try:
            for name, stmt in _reads(on.target, on.ctx, args.seed):
                procedure = f"hotelbot_policy_cost.{name}"
                admin.execute(_loop_procedure(procedure, [*on.binding, (stmt.sql, stmt.params)]))
                admin.execute(f"GRANT EXECUTE ON PROCEDURE {procedure} TO {APP_ROLE}")
                call = f"CALL {procedure}(%s, NULL)"
                print(f"{name}:", flush=True)
                for form, policies in _policy_forms(installed).items():
                    _set_policies(admin, policies)
                    _same_rows(name, (admin, []), (on.bot, on.binding), [(stmt.sql, stmt.params)])
                    best = {"owner": float("inf"), "bot": float("inf")}
                    for _ in range(args.rounds):  # alternating, the fastest call of each side
                        for side, conn in (("owner", admin), ("bot", on.bot)):
                            (per_transaction,) = conn.execute(call, (args.transactions,)).fetchone()
                            best[side] = min(best[side], per_transaction)
                    print(f"  {form:40} owner {best['owner']:6.1f} µs  bot {best['bot']:6.1f}"
                          f" µs  {best['bot'] - best['owner']:+5.1f}", flush=True)  # fmt: skip
        finally:
            _set_policies(admin, installed)
            admin.execute("DROP SCHEMA hotelbot_policy_cost CASCADE")
    return 0


def _dump(url: URL, directory: Path) -> list[tuple[str, Path]]:
    """Every table of ours as a binary COPY file (the exact rows the seed wrote)."""
    from hotelbot_cli.seed import loader

    files = []
    with psycopg.connect(libpq_url(url)) as conn:
        for table in loader.our_tables():
            path = directory / f"{table}.copy"
            with (
                path.open("wb") as out,
                conn.cursor().copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as copy,
            ):
                for block in copy:
                    out.write(block)
            files.append((table, path))
    return files


def floor_replay(url: URL, files: list[tuple[str, Path]]) -> tuple[float, dict[str, float]]:
    """The floor: the same rows replayed from files in one transaction, as fast as this
    schema can take them: TRUNCATE, drop the indexes and keys, COPY FREEZE, rebuild them,
    ANALYZE, with the seed's own session settings. Returns the seconds and its phases."""
    from hotelbot_cli.db import sentiment
    from hotelbot_cli.seed import _session_settings, loader

    phases: dict[str, float] = {}
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        started = mark = time.perf_counter()
        cur.execute("SET LOCAL synchronous_commit = off")
        _session_settings(cur, local=True)
        tables = [t for t, _ in files]
        paused = sentiment.pause_counting(cur)  # the counts are replayed from their file
        cur.execute("TRUNCATE " + ", ".join(tables))
        snap = loader.snapshot(cur, tables)
        loader.drop(cur, snap)
        phases["prepare"] = time.perf_counter() - mark
        for table, path in files:
            mark = time.perf_counter()
            with (
                path.open("rb") as src,
                cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY, FREEZE)") as copy,
            ):
                while block := src.read(1 << 20):
                    copy.write(block)
            phases[table] = time.perf_counter() - mark
        mark = time.perf_counter()
        loader.restore(cur, snap)
        sentiment.resume_counting(cur, paused, [])
        phases["indexes + keys"] = time.perf_counter() - mark
        mark = time.perf_counter()
        for table in tables:
            cur.execute(f"ANALYZE {table}")
        phases["analyze"] = time.perf_counter() - mark
        conn.commit()
        return time.perf_counter() - started, phases


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def seed_bench(args: argparse.Namespace, _passthrough: list[str]) -> int:
    """pgbench -i, hotelbot seed and the floor replay, ``--runs`` times in turn, one server."""
    runs: list[dict[str, Any]] = []
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

        seed_url = _create(admin, "hotelbot_bench_seed")
        engine = create_engine(seed_url, poolclass=NullPool)
        migrations.upgrade(engine, "head")
        engine.dispose()
        cmd = [
            sys.executable, "-m", "hotelbot_cli", "seed", "--quiet", "--json", "--truncate",
            "--yes", *_dataset_args(args),
        ]  # fmt: skip
        env = {**os.environ, "DATABASE_URL": seed_url.render_as_string(hide_password=False)}
        dump_dir = Path(tempfile.mkdtemp(prefix="hotelbot-floor-"))
        try:
            for _ in range(args.runs):
                # pgbench before and after: the host is shared, its load drifts within a run
                before = pgbench_init()
                started = time.perf_counter()
                proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
                output = proc.stdout.read() if proc.stdout else ""
                _pid, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - started
                if os.waitstatus_to_exitcode(status) != 0:
                    print("hotelbot seed failed", file=sys.stderr)
                    return 1
                report = json.loads(output)
                files = _dump(seed_url, dump_dir)
                floor_s, floor_phases = floor_replay(seed_url, files)
                after = pgbench_init()
                runs.append(
                    {
                        "pgbench": (before + after) / 2,
                        "pgbench_spread": (before, after),
                        "seed": report["seconds"],
                        "wall": wall,
                        "phases": report["phases"],
                        "rows": sum(report["rows"].values()),
                        "floor": floor_s,
                        "floor_phases": floor_phases,
                        "rss_mb": usage.ru_maxrss / 1024,
                    }
                )
                # leave the seeded data as hotelbot seed wrote it (the replay is the same rows)
                _hotelbot(seed_url, *cmd[3:], capture_output=True)
        finally:
            shutil.rmtree(dump_dir, ignore_errors=True)
    rows = runs[0]["rows"]
    print(
        f"dataset: {rows:,} rows; pgbench -i -s 10: {PGBENCH_ROWS[10]:,} rows; {len(runs)} run(s)"
    )
    print(
        f"{'run':>3} {'pgbench -i':>11} {'floor':>8} {'seed':>8} {'floor/pgb':>10}"
        f" {'seed/pgb':>9} {'seed/floor':>11} {'RSS':>7}"
    )
    ratios: dict[str, list[float]] = {"floor": [], "seed": [], "seed/floor": []}
    for n, r in enumerate(runs, 1):
        pg_rate = PGBENCH_ROWS[10] / r["pgbench"]
        floor_x = rows / r["floor"] / pg_rate
        seed_x = rows / r["seed"] / pg_rate
        ratios["floor"].append(floor_x)
        ratios["seed"].append(seed_x)
        ratios["seed/floor"].append(r["seed"] / r["floor"])
        print(
            f"{n:>3} {r['pgbench']:9.2f} s {r['floor']:6.2f} s {r['seed']:6.2f} s"
            f" {floor_x:9.3f}× {seed_x:8.3f}× {r['seed'] / r['floor']:10.2f}×"
            f" {r['rss_mb']:4.0f} MB"
        )
    print(
        "median: seed {:.3f}× pgbench -i (rows/s; target ≥ 0.16×), floor {:.3f}×,"
        " seed time {:.2f}× the floor's (target ≤ 1.25×)".format(
            *(_median(ratios[k]) for k in ("seed", "floor", "seed/floor"))
        )
    )
    for n, r in enumerate(runs, 1):
        print(
            f"run {n} seed phases : " + ", ".join(f"{k} {v:.2f} s" for k, v in r["phases"].items())
        )
        print(
            f"run {n} floor phases: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in r["floor_phases"].items())
        )
        print(
            f"run {n} pgbench -i before {r['pgbench_spread'][0]:.2f} s, after"
            f" {r['pgbench_spread'][1]:.2f} s; seed process wall {r['wall']:.2f} s"
        )
    return 0


def _positive(kind: type) -> Any:
    """An argparse type: a number of ``kind`` above 0 (a count to loop or divide by, or a
    duration), refused before anything is seeded."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0: {text}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed", help="pgbench -i vs hotelbot seed of the reference dataset")
    queries = sub.add_parser(
        "bench", help="hotelbot bench on the reference dataset (other options go to hotelbot bench)"
    )
    queries.add_argument("--duration", type=_positive(float), default=20)
    growth = sub.add_parser(
        "growth", help="p50 of every operation at 1x and --factor x the messages"
    )
    growth.add_argument("--duration", type=_positive(float), default=10)
    growth.add_argument("--factor", type=_positive(int), default=10)
    growth.add_argument(
        "--rounds",
        type=_positive(int),
        default=2,
        help="alternating small/big bench rounds (median p50)",
    )
    scaling = sub.add_parser(
        "scaling", help="lookup throughput at 1/2/4/8 clients vs pgbench -S (same clients)"
    )
    scaling.add_argument("--duration", type=_positive(float), default=5)
    floor = sub.add_parser(
        "isolation-floor", help="tenant ÷ owner of each operation with pgbench as the client"
    )
    floor.add_argument("--seconds", type=_positive(float), default=1, help="of each pgbench run")
    floor.add_argument(
        "--rounds", type=_positive(int), default=7, help="owner/tenant runs per operation"
    )
    floor.add_argument("--seed", type=int, default=42)
    cost = sub.add_parser(
        "policy-cost", help="server time of each form of the tenant check (a looping procedure)"
    )
    cost.add_argument("--transactions", type=_positive(int), default=4000, help="per call")
    cost.add_argument(
        "--rounds", type=_positive(int), default=7, help="calls per side and form (fastest)"
    )
    cost.add_argument("--seed", type=int, default=42)
    seed.add_argument("--runs", type=_positive(int), default=2, help="pgbench/seed/floor rounds")
    for command in (queries, growth, floor, cost):
        command.add_argument(
            "--placement",
            choices=("split", "free"),
            default="split",
            help="split: server on the last CPU, clients on the others (default); free: unpinned",
        )
    for command in (seed, queries, growth, scaling, floor, cost):
        command.add_argument("--hotels", type=int, default=50)
        command.add_argument("--guests-per-hotel", type=int, default=1000)
        command.add_argument("--conversations-per-guest", type=int, default=1)
        command.add_argument("--messages-per-conversation", type=int, default=20)
    seed.set_defaults(func=seed_bench)
    queries.set_defaults(func=queries_bench)
    growth.set_defaults(func=growth_bench)
    scaling.set_defaults(func=scaling_bench)
    floor.set_defaults(func=isolation_floor)
    cost.set_defaults(func=policy_cost)
    args, passthrough = parser.parse_known_args(argv)
    if passthrough and args.command == "seed":
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    return int(args.func(args, passthrough))


if __name__ == "__main__":
    sys.exit(main())
