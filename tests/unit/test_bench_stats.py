"""Percentiles, the report's JSON round trip, comparison and thresholds (no database)."""

from __future__ import annotations

import json

import pytest

from hotelbot_cli.bench import comparison, report_json, thresholds
from hotelbot_cli.bench import report as rp
from hotelbot_cli.bench.explain import IndexCheck, judge, plan_usage
from hotelbot_cli.bench.reference import Reference, parse_output
from hotelbot_cli.bench.stats import percentile, ratio, summarize
from hotelbot_cli.errors import UsageError


def test_percentile_interpolates_and_bounds() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_summarize_in_milliseconds() -> None:
    s = summarize([1_000_000 * i for i in range(1, 101)])  # 1..100 ms
    assert s.count == 100
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p95_ms == pytest.approx(95.05)
    assert s.max_ms == pytest.approx(100.0)
    assert summarize([]).count == 0
    assert ratio(1, 0) is None
    assert ratio(3, 2) == 1.5


def _report(p95: float = 1.0, ref: float | None = 0.05, ops: float = 1000.0) -> rp.BenchReport:
    return rp.BenchReport(
        started_at="2026-11-24T00:00:00+00:00",
        settings={"concurrency": 1, "engine": "sync"},
        dataset={"hotels": 2},
        operations=[
            rp.OpStats("store_message", 100, 0, ops, 0.5, 0.4, p95, 2.0, 3.0, 8.0),
            rp.OpStats("recent_messages", 100, 2, ops, 0.2, 0.2, 0.3, 0.4, 0.5, None, "boom"),
        ],
        pool=rp.PoolStats("QueuePool", 1, 10, 1, 0, 200, 0.01, 0.02, 0.3, 0, False),
        elapsed_s=1.0,
        total_ops=200,
        isolation=[rp.IsolationRow("store_message", 0.5, 0.4, 1.25, 10, 10.0)],
        index_checks=[IndexCheck("store_message", ("a|b",), ("a",), (), (), True)],
        db=rp.DbCounters(xact_commit=10, blks_hit=9, blks_read=1),
        references=[Reference(clients=1, tps=20000, latency_ms=ref)] if ref else [],
        server_version="18",
        notes=["n"],
    )


def test_json_round_trip_and_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    original = _report()
    doc = json.loads(report_json.dumps(original))
    assert doc["schema_version"] == report_json.VERSION == 2 and doc["tool"] == "hotelbot bench"
    assert doc["db"]["cache_hit_ratio"] == pytest.approx(0.9)
    jsonschema.validate(doc, report_json.schema())
    assert report_json.from_dict(doc) == original
    # a baseline saved before the envelope (format/version 1, same fields) still reads
    legacy = {"format": "hotelbot.bench", "version": 1}
    legacy.update({k: v for k, v in doc.items() if k not in {"schema_version", "tool"}})
    assert report_json.from_dict(legacy) == original


def test_from_dict_refuses_other_documents(tmp_path) -> None:
    with pytest.raises(UsageError, match="not a hotelbot bench document"):
        report_json.from_dict({"format": "x"})
    with pytest.raises(UsageError, match="not a hotelbot bench document"):
        report_json.from_dict({"schema_version": 1, "tool": "hotelbot rls-check"})
    with pytest.raises(UsageError, match="newer"):
        report_json.from_dict({"schema_version": 3, "tool": "hotelbot bench"})
    with pytest.raises(UsageError, match="newer"):
        report_json.from_dict({"format": "hotelbot.bench", "version": 99})
    with pytest.raises(UsageError, match="malformed"):
        report_json.from_dict({"format": "hotelbot.bench", "version": 1})
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(UsageError, match="not JSON"):
        report_json.load(bad)
    with pytest.raises(UsageError, match="cannot read"):
        report_json.load(tmp_path / "missing.json")


def test_compare_flags_regressions_normalized_by_reference() -> None:
    base = _report(p95=1.0, ref=0.05)
    same_machine_slower = _report(p95=2.0, ref=0.05)
    [change, _] = comparison.compare(same_machine_slower, base)
    assert change.regression and change.normalized and change.p95_change == pytest.approx(1.0)
    # Twice slower on a machine that is itself twice slower: no regression.
    slower_machine = _report(p95=2.0, ref=0.10)
    assert not comparison.compare(slower_machine, base)[0].regression
    # Without a reference, raw latencies are compared.
    assert comparison.compare(_report(p95=2.0, ref=None), _report(p95=1.0, ref=None))[0].regression
    assert not comparison.compare(_report(p95=1.1), base)[0].regression


@pytest.mark.parametrize(
    ("text", "fails"),
    [
        ("store_message.p95>5ms", False),
        ("store_message.p95>500us", True),
        ("store_message.p95>=1", True),
        ("*.errors>0", True),
        ("recent_messages.error_rate>1%", True),
        ("store_message.ops_s<2000", True),
        ("store_message.isolation_ratio>1.2", True),
        ("store_message.ref_ratio>10x", False),
        ("pool.timeouts>0", False),
        ("pool.wait_p95>0.01ms", True),
    ],
)
def test_thresholds(text: str, fails: bool) -> None:
    results = thresholds.evaluate(_report(), [thresholds.parse_threshold(text)])
    assert any(r.failed for r in results) is fails


@pytest.mark.parametrize(
    "text", ["nonsense", "store_message.p95", "store_message.speed>1", "pool.p95>1", "x.errors>1ms"]
)
def test_bad_thresholds_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        thresholds.parse_threshold(text)


def test_threshold_naming_no_operation_of_the_run() -> None:
    with pytest.raises(UsageError, match="names no operation"):
        thresholds.evaluate(_report(), [thresholds.parse_threshold("due_guests.p95>1ms")])


def test_plan_usage_and_judge() -> None:
    plan = {
        "Plan": {
            "Node Type": "ModifyTable",
            "Conflict Arbiter Indexes": ["uq"],
            "Plans": [
                {"Node Type": "Seq Scan", "Relation Name": "messages"},
                {"Node Type": "Index Scan", "Index Name": "ix"},
            ],
        }
    }
    used, seq = plan_usage(plan)
    assert used == {"uq", "ix"} and seq == {"messages"}
    assert not judge("op", ("ix",), used, seq).ok
    assert judge("op", ("other|ix",), used, set()).ok
    small = judge("op", ("ix_hotels",), set(), {"hotels"})
    assert small.ok and "small table" in small.note
    missing = judge("op", ("nope",), {"ix"}, set())
    assert not missing.ok and "not used" in missing.note


def test_parse_pgbench_output() -> None:
    text = (
        "number of transactions actually processed: 43118\n"
        "latency average = 0.070 ms\n"
        "tps = 14381.679186 (without initial connection time)\n"
    )
    ref = parse_output(text, 1, 3.0)
    assert ref.latency_ms == 0.070 and ref.tps == pytest.approx(14381.679186)
    assert ref.transactions == 43118
    assert parse_output("pgbench: error: connection refused", 1, 3.0).skipped
    assert "no output" in (parse_output("", 1, 1.0).skipped or "")


def test_processes_share_the_workers_evenly() -> None:
    from hotelbot_cli.bench.processes import shares

    assert shares(8, 3) == [3, 3, 2]
    assert shares(2, 4) == [1, 1]  # never an empty process
    assert sum(shares(61, 2)) == 61
