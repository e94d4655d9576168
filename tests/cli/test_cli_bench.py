"""``hotelbot bench`` end to end against a real server and a small dataset."""

from __future__ import annotations

import json

from tests.performance.conftest import make_dataset

FAST = ("--no-reference", "--no-isolation", "--no-explain")


def test_refuses_an_empty_database(cli, db_url) -> None:
    code, _, err = cli("bench", "--iterations", "10", url=db_url)
    assert code == 1
    assert "hotelbot seed" in err


def test_refuses_a_database_not_at_head(cli, empty_db_url) -> None:
    code, _, err = cli("bench", "--iterations", "10", url=empty_db_url)
    assert code == 1
    assert "hotelbot db upgrade" in err


def test_full_run_json_round_trips_through_compare(cli, db_url, tmp_path) -> None:
    make_dataset(db_url, hotels=3, guests=100, messages=5)
    out_file = tmp_path / "base.json"
    code, out, err = cli(
        "bench",
        "--iterations",
        "300",
        "-c",
        "2",
        "--reference-seconds",
        "1",
        "--json",
        "--output",
        str(out_file),
        url=db_url,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema_version"] == 2 and doc["tool"] == "hotelbot bench"
    assert json.loads(out_file.read_text())["operations"] == doc["operations"]
    ops = {o["name"]: o for o in doc["operations"]}
    assert len(ops) == 10 and sum(o["count"] for o in ops.values()) == 300
    assert all(o["errors"] == 0 for o in ops.values()), [o["error_sample"] for o in ops.values()]
    assert all(c["ok"] for c in doc["index_checks"]), doc["index_checks"]
    assert {r["name"] for r in doc["isolation"]} == set(ops)
    assert doc["settings"]["tenant_role"] == "app_user"
    assert doc["pool"]["peak_checked_out"] <= 2 and doc["pool"]["timeouts"] == 0
    assert doc["db"]["xact_commit"] >= 300
    assert {r["clients"] for r in doc["references"]} == {1, 2}

    # The report compares against itself; a threshold that cannot hold exits 1.
    code, out, err = cli(
        "bench",
        "--iterations",
        "100",
        *FAST,
        "--compare",
        str(out_file),
        "--fail-if",
        "store_message.p95>0.001ms",
        "--fail-if",
        "pool.timeouts>0",
        url=db_url,
    )
    assert code == 1
    assert "Change against" in out and "Operations" in out and "Thresholds" in out
    assert "store_message.p95>0.001ms" in err
    code, out, err = cli(
        "bench",
        "--iterations",
        "50",
        *FAST,
        "--ops",
        "recent_messages,active_triggers",
        "--compare",
        str(out_file),
        "--fail-if",
        "*.errors>0",
        "--json",
        url=db_url,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert [c["name"] for c in doc["comparison"]] == ["recent_messages", "active_triggers"]
    assert all(not t["failed"] for t in doc["thresholds"])


def test_async_engine_and_tables(cli, db_url) -> None:
    make_dataset(db_url, hotels=2, guests=50, messages=3)
    code, out, err = cli(
        "bench",
        "--iterations",
        "120",
        "-c",
        "3",
        "--engine",
        "async",
        "--no-reference",
        "--pre-ping",
        url=db_url,
    )
    assert code == 0, err
    for title in (
        "Operations",
        "Pool: ",
        "Cost of tenant isolation",
        "Index check",
        "Database over the run",
    ):
        assert title in out
    assert "no pgbench reference" in err


def test_usage_errors(cli, db_url, tmp_path) -> None:
    assert cli("bench", "--ops", "nope", url=db_url)[0] == 2
    assert cli("bench", "--duration", "1", "--iterations", "5", url=db_url)[0] == 2
    assert cli("bench", "--fail-if", "whatever", url=db_url)[0] == 2
    assert cli("bench", "--engine", "gevent", url=db_url)[0] == 2
    assert cli("bench", "-c", "0", url=db_url)[0] == 2
    assert cli("bench", "-c", "2", "--processes", "3", url=db_url)[0] == 2
    assert cli("bench", "-c", "2", "--processes", "2", "--engine", "async", url=db_url)[0] == 2
    missing = tmp_path / "nope.json"
    code, _, err = cli("bench", "--compare", str(missing), url=db_url)
    assert code == 2 and "cannot read" in err


def test_the_signature_lifetime_is_read_once_and_checked_before_the_run(
    cli, db_url, monkeypatch
) -> None:
    """A malformed HOTELBOT_TENANT_TTL stops the bench before any operation (not 300
    failed ones); a valid one is what every tenant transaction signs with."""
    from hotelbot_cli.bench import driver
    from hotelbot_cli.bench.workload import OPERATIONS

    make_dataset(db_url, hotels=2, guests=10, messages=2)
    monkeypatch.setenv("HOTELBOT_TENANT_TTL", "soon")
    code, out, err = cli("bench", "--iterations", "20", *FAST, url=db_url)
    assert code == 2 and out == "", (code, out, err)
    assert "HOTELBOT_TENANT_TTL" in err and len(err.strip().splitlines()) == 1, err
    lives: list[int] = []
    real = driver.tenant_binding

    def spy(*args, **kwargs):
        lives.append(kwargs["ttl"])
        return real(*args, **kwargs)

    monkeypatch.setattr(driver, "tenant_binding", spy)
    monkeypatch.setenv("HOTELBOT_TENANT_TTL", "60")
    code, _, err = cli("bench", "--iterations", "20", "--ops", "recent_messages", *FAST, url=db_url)
    assert code == 0, err
    assert lives and set(lives) == {60}
    assert OPERATIONS["recent_messages"].needs_tenant


def test_processes_split_the_workers_and_merge_their_samples(cli, db_url) -> None:
    make_dataset(db_url, hotels=2, guests=20, messages=5)
    code, out, err = cli(
        "bench", "--iterations", "61", "-c", "3", "--processes", "2", *FAST, "--json", url=db_url
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["settings"]["processes"] == 2
    assert sum(o["count"] for o in doc["operations"]) == 61  # 31 + 30, every one counted
    assert all(o["errors"] == 0 for o in doc["operations"])
    assert doc["pool"]["checkouts"] == 61 and doc["pool"]["size"] == 3


def test_isolation_iterations_sets_the_pairs_per_operation(cli, db_url) -> None:
    make_dataset(db_url, hotels=2, guests=20, messages=3)
    args = ("bench", "--iterations", "10", "--no-reference", "--no-explain", "--json")
    code, out, err = cli(*args, "--ops", "due_guests", "--isolation-iterations", "7", url=db_url)
    assert code == 0, err
    doc = json.loads(out)
    assert [(r["name"], r["count"]) for r in doc["isolation"]] == [("due_guests", 7)]
    assert doc["settings"]["isolation_iterations"] == 7
    code, _, err = cli(*args, "--isolation-iterations", "0", url=db_url)
    assert code == 2 and "--isolation-iterations" in err
