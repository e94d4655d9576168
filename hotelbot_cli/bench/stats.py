"""Latency percentiles without numpy: exact, from every sample of a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hotelbot_cli.percentiles import percentile

__all__ = ["LatencySummary", "percentile", "ratio", "summarize"]


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
