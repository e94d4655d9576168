"""--compare --fail-on-regression must not fire on noise, and must fire on a real slowdown."""

from __future__ import annotations

import pytest

from hotelbot_cli.bench import comparison
from hotelbot_cli.bench import report as rp
from hotelbot_cli.bench.reference import Reference


def _run(p50: float, p95: float, p99: float, count: int, refs: list[float]) -> rp.BenchReport:
    return rp.BenchReport(
        started_at="2026-11-24T00:00:00+00:00",
        settings={"concurrency": 1, "engine": "sync"},
        dataset={"hotels": 2},
        operations=[rp.OpStats("store_message", count, 0, 100.0, p50, p50, p95, p99, p99 * 2)],
        pool=None,
        elapsed_s=1.0,
        total_ops=count,
        references=[Reference(clients=1, tps=1 / r * 1000, latency_ms=r) for r in refs],
    )


@pytest.mark.parametrize(("tps_then", "tps_now"), [(20_000, 44_000), (44_000, 20_000)])
def test_the_reported_flake_is_not_a_regression(tps_then: int, tps_now: int) -> None:
    # Unchanged code, 4.00 → 4.01 ms, while pgbench swung 20k ↔ 44k tps between the runs.
    base = _run(3.0, 4.00, 6.0, 2000, [1000 / tps_then])
    now = _run(3.0, 4.01, 6.0, 2000, [1000 / tps_now])
    [change] = comparison.compare(now, base)
    assert not change.regression
    assert change.raw_p95_change is not None and change.raw_p95_change < 0.01


def test_a_reference_that_swings_within_a_run_widens_the_noise_floor() -> None:
    base = _run(0.4, 1.0, 1.5, 5000, [0.05])
    now = _run(0.4, 1.4, 1.9, 5000, [0.05, 0.08, 0.05])  # +40 %, reference spread 60 %
    [change] = comparison.compare(now, base)
    assert change.noise_floor > 0.8 and not change.regression


def test_few_samples_with_a_wide_spread_are_not_confident() -> None:
    base = _run(0.4, 1.0, 20.0, 8, [0.05])
    now = _run(0.4, 2.0, 20.0, 8, [0.05])
    [change] = comparison.compare(now, base)
    assert change.confidence is not None and change.confidence < 0.99
    assert not change.regression


def test_a_real_slowdown_is_a_confident_regression() -> None:
    base = _run(0.4, 1.0, 1.5, 5000, [0.05, 0.051])
    now = _run(0.8, 2.0, 3.0, 5000, [0.05, 0.049])
    [change] = comparison.compare(now, base)
    assert change.regression and change.confidence is not None and change.confidence > 0.999
    assert change.p50_change is not None and change.p50_change > 0.9
