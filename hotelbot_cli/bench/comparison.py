"""A run against a baseline: per operation, whether p95 got slower beyond the noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from hotelbot_cli.bench.report import BenchReport, OpStats


@dataclass(frozen=True)
class Change:
    """One operation against the baseline, and how sure we are that it changed."""

    name: str
    baseline_p50_ms: float
    current_p50_ms: float
    baseline_p95_ms: float
    current_p95_ms: float
    p95_change: float | None  # relative, e.g. 0.25 = 25 % slower (against the scaled baseline)
    ops_change: float | None
    normalized: bool  # compared as multiples of each run's pgbench latency
    regression: bool
    p50_change: float | None = None
    raw_p95_change: float | None = None  # unscaled: the latencies as measured
    #: The relative change below which a difference is noise: tolerance + the spread of
    #: the repeated pgbench references of either run.
    noise_floor: float = 0.0
    #: One-sided confidence (0..1) that p95 really got slower, from both runs' counts and
    #: spreads (normal approximation of the percentile's standard error).
    confidence: float | None = None


def _rel(new: float, old: float) -> float | None:
    return (new - old) / old if old > 0 else None


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


class ReferenceLatency(NamedTuple):
    """A run's pgbench latency at one client count, over its repeated references."""

    median_ms: float | None  # None: no reference at that client count
    #: (max - min) / median: 0 with one measurement.
    spread: float


def reference_latency(report: BenchReport, clients: int) -> ReferenceLatency:
    """Median pgbench latency at ``clients`` over the run's references, and its spread.

    The spread is (max - min) / median: 0 with one measurement. A runner that measures the
    reference several times (before, between, after) lets the comparison see host noise.
    """
    values = [r.latency_ms for r in report.references if r.clients == clients and r.latency_ms]
    if not values:
        return ReferenceLatency(None, 0.0)
    median = _median(values)
    return ReferenceLatency(median, (max(values) - min(values)) / median if median > 0 else 0.0)


def _p95_standard_error(op: OpStats) -> float:
    """Standard error of p95 in ms: sqrt(q(1-q)/n) / density, the density from the spread."""
    if op.count < 2:
        return float("inf")
    scale = max(op.p99_ms - op.p50_ms, 1e-6) / 2.326  # ≈ σ of the latency distribution
    return 2.11 * scale / math.sqrt(op.count)


def _confidence(delta_ms: float, se_ms: float) -> float:
    """P(true change > 0) under a normal approximation: Φ(delta / se)."""
    if se_ms == float("inf"):
        return 0.5
    if se_ms <= 0:
        return 1.0 if delta_ms > 0 else 0.0
    return 0.5 * (1.0 + math.erf(delta_ms / se_ms / math.sqrt(2.0)))


def compare(
    current: BenchReport,
    baseline: BenchReport,
    tolerance: float = 0.25,
    floor_ms: float = 0.05,
    min_confidence: float = 0.99,
) -> list[Change]:
    """Per-operation change; a regression is a p95 change that noise cannot explain.

    It must hold on every reading at once: slower by more than ``tolerance`` plus the
    reference's own spread (the noise floor), both as measured and as multiples of each
    run's pgbench latency (a host that got slower, or a reference that swung, is not a
    regression), slower by more than ``floor_ms``, and with a confidence of at least
    ``min_confidence`` given both runs' sample counts and spreads.
    """
    clients = int(current.settings.get("concurrency", 1))
    ref_now, spread_now = reference_latency(current, clients)
    ref_then, spread_then = reference_latency(baseline, clients)
    normalized = ref_now is not None and ref_then is not None
    scale = ref_now / ref_then if normalized and ref_now and ref_then else 1.0
    noise_floor = tolerance + max(spread_now, spread_then)
    changes = []
    for op in current.operations:
        old = baseline.op(op.name)
        if old is None:
            continue
        old_p95 = old.p95_ms * scale  # the baseline as it would be on this run's machine
        p95_change = _rel(op.p95_ms, old_p95)
        raw_change = _rel(op.p95_ms, old.p95_ms)
        se = math.hypot(_p95_standard_error(op), _p95_standard_error(old) * scale)
        confidence = _confidence(op.p95_ms - old_p95, se)
        regression = (
            p95_change is not None
            and raw_change is not None
            and min(p95_change, raw_change) > noise_floor
            and min(op.p95_ms - old_p95, op.p95_ms - old.p95_ms) > floor_ms
            and confidence >= min_confidence
        )
        changes.append(
            Change(
                name=op.name,
                baseline_p50_ms=old.p50_ms,
                current_p50_ms=op.p50_ms,
                baseline_p95_ms=old.p95_ms,
                current_p95_ms=op.p95_ms,
                p95_change=p95_change,
                ops_change=_rel(op.ops_per_s, old.ops_per_s),
                normalized=normalized,
                regression=regression,
                p50_change=_rel(op.p50_ms, old.p50_ms * scale),
                raw_p95_change=raw_change,
                noise_floor=noise_floor,
                confidence=round(confidence, 4),
            )
        )
    return changes
