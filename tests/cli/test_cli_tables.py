"""Every table fits 80 columns (or is split) and never cuts a name, id or value."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from hotelbot_cli.bench import comparison
from hotelbot_cli.bench import report as rp
from hotelbot_cli.bench.explain import IndexCheck
from hotelbot_cli.bench.reference import Reference
from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli import bench as bench_cli

NAMES = [
    "resolve_hotel",
    "upsert_guest",
    "open_conversation",
    "store_message",
    "pending_notifications",
    "sentiment_7d",
]


@pytest.fixture
def console80(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, highlight=False, color_system=None)
    monkeypatch.setattr(out, "_console", lambda stderr=False: console)
    monkeypatch.setattr(out, "_write", lambda stream, text: buffer.write(text + "\n"))
    return buffer


def _check(text: str, must_contain: list[str]) -> None:
    assert text.strip()
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    assert "…" not in text
    for word in must_contain:
        assert word in text, word


def test_a_wide_table_is_split_and_keeps_every_value(console80: io.StringIO) -> None:
    columns = ["check id", *(f"column number {i}" for i in range(9))]
    rows = [
        [f"table-privileges-{n}", *(f"{k * 1000 + i:,} µs" for i in range(9))]
        for k, n in enumerate(NAMES)
    ]
    out.table("Wide", columns, rows)
    text = console80.getvalue()
    _check(
        text, [f"table-privileges-{n}" for n in NAMES] + ["(continued)", "pending_notifications"]
    )
    for n, row in enumerate(rows):
        for cell in row:
            assert cell in text, (n, cell)


def _report() -> rp.BenchReport:
    ops = [rp.OpStats(n, 12345, 0, 617.2, 0.2, 0.101, 0.33, 1.2, 12.5, 1.72) for n in NAMES]
    return rp.BenchReport(
        started_at="2026-01-01T00:00:00+00:00",
        settings={"concurrency": 1, "engine": "sync"},
        dataset={"hotels": 50, "guests": 50_000},
        operations=ops,
        pool=rp.PoolStats("QueuePool", 1, 10, 1, 0, 73_199, 0.01, 0.02, 0.5, 0, False),
        elapsed_s=20.0,
        total_ops=73_199,
        isolation=[rp.IsolationRow(n, 0.101, 0.077, 1.31, 1000, 1.72) for n in NAMES],
        index_checks=[
            IndexCheck(
                n,
                ("ix_messages_hotel_conversation_created",),
                ("ix_messages_hotel_id_created_at",),
                ("messages",),
                ("ix_messages_hotel_conversation_created",),
                False,
                "the planner read messages by a scan: run ANALYZE or check the index",
            )
            for n in NAMES
        ],
        db=rp.DbCounters(73_000, 0, 10, 1_000_000, 123_456_789, 98_765, 5_000, 4_000, 0, 0),
        references=[Reference(clients=1, seconds=3.0, tps=17_040.0, latency_ms=0.059)],
        server_version="18.6",
    )


def test_bench_tables_at_80_columns(console80: io.StringIO, capsys) -> None:
    report = _report()
    bench_cli._render(report)
    changes = comparison.compare(report, report)
    bench_cli._render_changes(changes, "base.json")
    _check(console80.getvalue(), [*NAMES, "ix_messages_hotel_id_created_at", "123,456,789"])


def test_db_stats_at_80_columns(db_url) -> None:
    env = {
        **os.environ,
        "COLUMNS": "80",
        "DATABASE_URL": db_url.render_as_string(hide_password=False),
    }
    result = subprocess.run(
        [sys.executable, "-m", "hotelbot_cli", "db", "stats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _check(result.stdout, ["staff_notifications", "conversations", "analyze"])
