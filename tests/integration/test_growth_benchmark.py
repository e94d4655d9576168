"""The rows the growth benchmark says the windowed operations read are the rows they read.

``scripts/db_benchmark.py growth`` explains a ratio by the rows per hotel in the window of
``sentiment_7d`` and ``due_guests``; those figures must equal plain aggregates over the
tables, or the explanation is wrong.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from hotelbot_cli.seed import SeedOptions, seed
from hotelbot_cli.settings import libpq_url

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "db_benchmark.py"


@pytest.fixture(scope="module")
def db_benchmark() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("db_benchmark", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("db_benchmark", module)
    spec.loader.exec_module(module)
    return module


def test_window_rows_match_plain_aggregates(
    db_benchmark: ModuleType, engine: Engine, db_url: URL
) -> None:
    # Anchored at the current hour, so the ops' now()-relative windows hold seeded rows.
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    seed(
        engine,
        SeedOptions(
            hotels=3,
            guests_per_hotel=40,
            conversations_per_guest=2,
            messages_per_conversation=12,
            reference_time=now,
        ),
    )
    with psycopg.connect(libpq_url(db_url)) as conn:
        hotels = conn.execute("SELECT count(*) FROM hotels").fetchone()[0]
        messages = conn.execute(
            "SELECT count(*) FROM messages WHERE created_at >= now() - interval '7 days'"
        ).fetchone()[0]
        due = conn.execute(
            "SELECT count(*) FROM guests WHERE last_interaction >= now() - interval '25 hours'"
            " AND last_interaction < now() - interval '24 hours'"
        ).fetchone()[0]
    assert messages > 0
    rows = db_benchmark._window_rows(db_url)
    assert rows == {"sentiment_7d": messages / hotels, "due_guests": due / hotels}


def test_median_p50s_take_each_operations_median(db_benchmark: ModuleType) -> None:
    rounds = [
        {"operations": [{"name": "a", "p50_ms": 1.0}, {"name": "b", "p50_ms": 0}]},
        {"operations": [{"name": "a", "p50_ms": 3.0}, {"name": "b", "p50_ms": 2.0}]},
        {"operations": [{"name": "a", "p50_ms": 2.5}]},
    ]
    # An operation with no samples in a round (p50 0) is left out of that round.
    assert db_benchmark._median_p50s(rounds) == {"a": 2.5, "b": 2.0}


def test_idle_policy_reads_what_linux_reports(db_benchmark: ModuleType, tmp_path: Path) -> None:
    assert db_benchmark._idle_policy(tmp_path) == ""  # nothing reported: nothing printed
    cpuidle = tmp_path / "devices/system/cpu/cpuidle"
    cpuidle.mkdir(parents=True)
    (cpuidle / "current_driver").write_text("acpi_idle\n")
    assert db_benchmark._idle_policy(tmp_path) == "acpi_idle"
    params = tmp_path / "module/haltpoll/parameters"
    params.mkdir(parents=True)
    (params / "guest_halt_poll_ns").write_text("0\n")
    (cpuidle / "current_driver").write_text("haltpoll\n")
    assert db_benchmark._idle_policy(tmp_path) == "haltpoll, guest_halt_poll_ns=0"


def test_the_floors_pgbench_script_runs_the_benchs_own_transaction(
    db_benchmark: ModuleType, engine: Engine, db_url: URL, tmp_path: Path
) -> None:
    """The script keeps the statement's parameters as parameters (``-M prepared``) and
    pgbench runs it: every transaction logged, each with a latency."""
    import random

    from hotelbot_cli.bench.workload import OPERATIONS, Context, Target

    seed(engine, SeedOptions(hotels=1, guests_per_hotel=2, triggers_per_hotel=3))
    with psycopg.connect(libpq_url(db_url)) as conn:
        hotel = conn.execute("SELECT id FROM hotels").fetchone()[0]
    target = Target(hotel, "+100", hotel, "+100", hotel)
    batch = next(OPERATIONS["active_triggers"].plan(target, random.Random(1), Context(), True))
    (stmt,) = batch.statements
    text, defines = db_benchmark._pgbench_script(
        [("BEGIN", None), (stmt.sql, stmt.params), ("COMMIT", None)]
    )
    assert ":hid" in text and "%(" not in text and text.startswith("\\startpipeline")
    assert defines == [f"hid={hotel}"]
    script = tmp_path / "active_triggers-owner.sql"
    script.write_text(text)
    latencies = db_benchmark._pgbench_latencies_us(db_url, script, defines, 1)
    assert latencies and all(us > 0 for us in latencies)
    assert sorted(p.name for p in tmp_path.iterdir()) == [script.name]  # its logs are read, gone


def test_the_floor_refuses_a_tenant_that_sees_nothing(
    db_benchmark: ModuleType, engine: Engine, db_url: URL
) -> None:
    """A tenant whose binding does not verify reads no rows, and would look cheap."""
    seed(engine, SeedOptions(hotels=1, guests_per_hotel=2, triggers_per_hotel=3))
    statements = [("SELECT id FROM triggers WHERE is_active OR NOT is_active", None)]
    with psycopg.connect(libpq_url(db_url), autocommit=True) as owner:
        with pytest.raises(SystemExit, match="the owner touched \\[3\\] rows, the tenant \\[0\\]"):
            db_benchmark._same_rows(
                "active_triggers",
                (owner, []),
                (owner, [("SET LOCAL ROLE app_user", None)]),  # no tenant bound
                statements,
            )
        db_benchmark._same_rows("active_triggers", (owner, []), (owner, []), statements)
