"""``--fail-if`` thresholds: ``subject.metric OP value``, parsed and checked against a run."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hotelbot_cli.bench.report import BenchReport, OpStats
from hotelbot_cli.errors import UsageError

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_UNITS = {"ms": 1.0, "us": 0.001, "µs": 0.001, "s": 1000.0, "": 1.0, "%": 0.01, "x": 1.0}
_THRESHOLD = re.compile(
    r"^\s*(?P<subject>[A-Za-z_*][\w*]*)\.(?P<metric>[a-z_0-9]+)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|us|µs|s|%|x)?\s*$"
)
_TIME_METRICS = {"p50", "p95", "p99", "max", "mean"}
_OP_METRICS = _TIME_METRICS | {"ops_s", "errors", "error_rate", "ref_ratio", "isolation_ratio"}
_POOL_METRICS = {"timeouts", "wait_p95", "peak_checked_out"}


@dataclass(frozen=True)
class Threshold:
    """``subject.metric OP value``: the run FAILS when the comparison holds (``--fail-if``)."""

    text: str
    subject: str
    metric: str
    op: str
    value: float


@dataclass(frozen=True)
class ThresholdResult:
    """One threshold on one subject of the run (an operation, or the pool)."""

    text: str
    subject: str
    observed: float | None
    failed: bool


def parse_threshold(text: str) -> Threshold:
    """Parse ``store_message.p95>5ms``, ``*.errors>0``, ``pool.timeouts>0``, ``*.ref_ratio>2``."""
    m = _THRESHOLD.match(text)
    if not m:
        raise UsageError(
            f"cannot read threshold {text!r}",
            "write OPERATION.METRIC>VALUE[unit], e.g. 'store_message.p95>5ms' or 'pool.timeouts>0'",
        )
    subject, metric, unit = m["subject"], m["metric"], m["unit"] or ""
    allowed = _POOL_METRICS if subject == "pool" else _OP_METRICS
    if metric not in allowed:
        raise UsageError(
            f"unknown metric {metric!r} in {text!r}", "choose among " + ", ".join(sorted(allowed))
        )
    is_time = metric in _TIME_METRICS or metric == "wait_p95"
    if unit in ("ms", "us", "µs", "s") and not is_time:
        raise UsageError(f"{metric} is not a time; drop the unit in {text!r}")
    value = float(m["value"]) * _UNITS[unit]
    if metric == "error_rate" and unit != "%":
        value = float(m["value"])
    return Threshold(text.strip(), subject, metric, m["op"], value)


def _op_metric(report: BenchReport, op: OpStats, metric: str) -> float | None:
    if metric in _TIME_METRICS:
        return float(getattr(op, f"{metric}_ms"))
    if metric == "ops_s":
        return op.ops_per_s
    if metric == "errors":
        return float(op.errors)
    if metric == "error_rate":
        total = op.count + op.errors
        return op.errors / total if total else 0.0
    if metric == "ref_ratio":
        return op.ref_ratio
    row = next((r for r in report.isolation if r.name == op.name), None)
    return row.ratio if row else None


def evaluate(report: BenchReport, thresholds: Sequence[Threshold]) -> list[ThresholdResult]:
    """Check every threshold; ``*`` expands to every operation of the run."""
    results = []
    for th in thresholds:
        compare_fn = _OPS[th.op]
        if th.subject == "pool":
            pool = report.pool
            observed: float | None = None
            if pool is not None:
                observed = {
                    "timeouts": float(pool.timeouts),
                    "wait_p95": pool.wait_p95_ms,
                    "peak_checked_out": float(pool.peak_checked_out),
                }[th.metric]
            results.append(
                ThresholdResult(
                    th.text,
                    "pool",
                    observed,
                    observed is not None and compare_fn(observed, th.value),
                )
            )
            continue
        ops = (
            report.operations
            if th.subject == "*"
            else [o for o in report.operations if o.name == th.subject]
        )
        if not ops:
            raise UsageError(
                f"threshold {th.text!r} names no operation of this run",
                "run it with --ops including it, or use * for every operation",
            )
        for op in ops:
            value = _op_metric(report, op, th.metric)
            results.append(
                ThresholdResult(
                    th.text, op.name, value, value is not None and compare_fn(value, th.value)
                )
            )
    return results
