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


def test_policy_cost_loops_every_read_under_every_form_and_puts_the_policies_back(
    db_benchmark: ModuleType, engine: Engine, db_url: URL
) -> None:
    """Every one-read operation becomes a procedure that compiles and runs, as the owner and
    as app_user under each policy form, reading the tenant's rows; afterwards the installed
    policies are back, word for word."""
    from hotelbot_cli.bench.workload import Context, Target
    from hotelbot_cli.db.tenant import tenant_binding

    seed(engine, SeedOptions(hotels=2, guests_per_hotel=3, triggers_per_hotel=2))
    with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
        key = admin.execute("SELECT key FROM hotelbot_private.tenant_key").fetchone()[0]
        hotel, guest, phone, number, conversation = admin.execute(
            "SELECT h.id, g.id, g.phone, h.whatsapp_number, c.id FROM hotels h"
            " JOIN guests g ON g.hotel_id = h.id JOIN conversations c ON c.guest_id = g.id"
            " LIMIT 1"
        ).fetchone()
        target = Target(hotel, number, guest, phone, conversation)
        binding = tenant_binding(hotel, None, key=bytes(key), ttl=3600)
        with admin.transaction():  # registered, as the bot's connection registers it
            admin.execute("SET LOCAL ROLE app_user")
            for sql, params in tenant_binding(
                hotel, None, key=bytes(key), ttl=3600, registered=set()
            ):
                admin.execute(sql, params)
        installed = {t: (q, c) for t, q, c in admin.execute(db_benchmark._TENANT_POLICIES)}
        assert {"guests", "hotels", "messages"} <= set(installed)
        reads = db_benchmark._reads(target, Context(tenant_key=bytes(key)), 42)
        assert {"due_guests", "sentiment_7d"} <= {name for name, _ in reads}
        admin.execute("CREATE SCHEMA loop_test")
        admin.execute("GRANT USAGE ON SCHEMA loop_test TO app_user")
        try:
            for name, stmt in reads:
                admin.execute(
                    db_benchmark._loop_procedure(
                        f"loop_test.{name}", [*binding, (stmt.sql, stmt.params)]
                    )
                )
                admin.execute(f"GRANT EXECUTE ON PROCEDURE loop_test.{name} TO app_user")
            forms = db_benchmark._policy_forms(installed)
            assert list(forms)[-1] == "installed" and len(forms) == 5
            for policies in forms.values():
                db_benchmark._set_policies(admin, policies)
                for name, stmt in reads:
                    tenant = [("SET LOCAL ROLE app_user", None), *binding]
                    db_benchmark._same_rows(
                        name, (admin, []), (admin, tenant), [(stmt.sql, stmt.params)]
                    )
                    for role in ("NONE", "app_user"):  # the owner, then the app role
                        admin.execute(f"SET ROLE {role}")
                        (per_transaction,) = admin.execute(
                            f"CALL loop_test.{name}(2, NULL)"
                        ).fetchone()
                        admin.execute("RESET ROLE")
                        assert per_transaction > 0
        finally:
            db_benchmark._set_policies(admin, installed)
            admin.execute("DROP SCHEMA loop_test CASCADE")
        assert {t: (q, c) for t, q, c in admin.execute(db_benchmark._TENANT_POLICIES)} == installed


def test_policy_cost_refuses_what_a_loop_cannot_repeat(db_benchmark: ModuleType) -> None:
    """A write would grow the tables it measures; only SELECTs are looped."""
    with pytest.raises(ValueError, match="not a SELECT"):
        db_benchmark._loop_procedure("x.y", [("UPDATE guests SET name = name", None)])
    assert db_benchmark._plpgsql_literal(24) == ("integer", "24")
    assert db_benchmark._plpgsql_literal(2**40) == ("bigint", str(2**40))
    assert db_benchmark._plpgsql_literal("it's") == ("text", "'it''s'")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["policy-cost", "--transactions", "0"], "must be above 0: 0"),
        (["isolation-floor", "--rounds", "-1"], "must be above 0: -1"),
        (["bench", "--duration", "soon"], "not a number: 'soon'"),
    ],
)
def test_counts_and_durations_are_refused_before_anything_is_seeded(
    db_benchmark: ModuleType, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """A zero count would divide by zero (or loop never) after minutes of seeding."""
    with pytest.raises(SystemExit) as stop:
        db_benchmark.main(argv)
    assert stop.value.code == 2 and said in capsys.readouterr().err
