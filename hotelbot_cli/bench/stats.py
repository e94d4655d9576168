"""Latency percentiles without numpy: exact, from every sample of a run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return 0.0
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    frac = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


@dataclass(frozen=True)
class LatencySummary:
    """Count and latency distribution of a set of samples, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def summarize(samples_ns: Sequence[int]) -> LatencySummary:
    """Summarise latencies given in nanoseconds."""
    if not samples_ns:
        return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    ordered = sorted(samples_ns)
    scale = 1e-6
    return LatencySummary(
        count=len(ordered),
        mean_ms=sum(ordered) / len(ordered) * scale,
        p50_ms=percentile(ordered, 50) * scale,
        p95_ms=percentile(ordered, 95) * scale,
        p99_ms=percentile(ordered, 99) * scale,
        max_ms=ordered[-1] * scale,
    )


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else None
