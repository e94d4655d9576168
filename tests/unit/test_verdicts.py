"""The library owns every check's verdict: each result says whether it passed and why not."""

from __future__ import annotations

import pytest

from hotelbot_cli.bench import report as rp
from hotelbot_cli.bench import thresholds
from hotelbot_cli.bench.verdict import judge
from hotelbot_cli.embedded import ServerStatus
from hotelbot_cli.errors import EXIT_FAILED, CheckFailed, raise_if_failed
from hotelbot_cli.migration_check import CheckReport
from hotelbot_cli.migration_lint import Finding, LintReport
from hotelbot_cli.migrations import HeadStatus
from hotelbot_cli.rls.report import CheckResult, RlsReport


def _bench(p95: float) -> rp.BenchReport:
    return rp.BenchReport(
        started_at="2026-11-24T00:00:00+00:00",
        settings={"concurrency": 1, "engine": "sync"},
        dataset={"hotels": 2},
        operations=[rp.OpStats("store_message", 100, 0, 100.0, 1.0, 1.0, p95, p95, p95)],
        pool=None,
        elapsed_s=1.0,
        total_ops=100,
    )


def test_bench_thresholds_fail_the_run_in_one_line() -> None:
    threshold = thresholds.parse_threshold("store_message.p95>5ms")
    assert judge(_bench(4.0), thresholds=[threshold]).failure() is None
    verdict = judge(_bench(6.0), thresholds=[threshold])
    assert not verdict.passed
    failure = verdict.failure()
    assert isinstance(failure, CheckFailed) and failure.exit_code == EXIT_FAILED
    assert str(failure) == "1 threshold(s) failed: store_message.p95>5ms (store_message)"
    assert verdict.to_dict()["thresholds"][0]["failed"] is True


def test_a_regression_fails_the_run_only_when_asked() -> None:
    base, slow = _bench(1.0), _bench(3.0)
    shown = judge(slow, baseline=base)
    assert shown.regressions and shown.passed and "comparison" in shown.to_dict()
    failing = judge(slow, baseline=base, fail_on_regression=True)
    assert str(failing.failure()) == "regression in store_message"


def test_head_status() -> None:
    assert HeadStatus(("012",), ("012",)).failure() is None
    failure = HeadStatus((), ("012",)).failure()
    assert failure is not None
    assert failure.message == "the database is at base (empty), not at head 012"
    with pytest.raises(CheckFailed, match="hotelbot db upgrade"):
        raise_if_failed(HeadStatus(("011",), ("012",)))


def test_db_check_names_every_problem() -> None:
    assert CheckReport(heads=("012",)).failure() is None
    two_heads = CheckReport(heads=("012", "900")).failure()
    assert two_heads is not None and two_heads.message == "2 heads: 012, 900"
    assert two_heads.hint == "merge them into one"
    drift = CheckReport(heads=("012",), differences=("a",), database_differences=("b",))
    failure = drift.failure()
    assert failure is not None and failure.message == (
        "2 problems: models and migrations differ: a; the database differs from the models: b"
    )


def test_rls_report_verdict() -> None:
    ok = CheckResult("rls-enabled", "audit", "guests", "pass", "on")
    bad = CheckResult("rls-enabled", "audit", "notes", "fail", "off", fix="ENABLE it")
    other = CheckResult("lint-x", "lint", None, "fail", "bad")
    assert RlsReport("db", "app_user", "18", (ok,)).failure() is None
    one = RlsReport("db", "app_user", "18", (ok, bad)).failure()
    assert one is not None and str(one) == "rls-enabled failed on notes: off (ENABLE it)"
    two = RlsReport("db", "app_user", "18", (bad, other)).failure()
    assert two is not None
    assert two.message == "2 checks failed: rls-enabled on notes, lint-x on the database"


def test_lint_and_server_verdicts() -> None:
    assert LintReport(("001",)).failure() is None
    finding = Finding("006", "unbatched-update", "slow", 3, "UPDATE messages SET x = 1", "hotelbot")
    failure = LintReport(("006",), (finding,)).failure()
    assert failure is not None
    assert failure.message == "1 lint finding(s) in revision(s) 006: unbatched-update"
    assert ServerStatus("/d", True, True).failure() is None
    stopped = ServerStatus("/d", True, False).failure()
    assert stopped is not None and "not running" in stopped.message
