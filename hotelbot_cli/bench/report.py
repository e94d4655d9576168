"""What a bench run reports, its versioned JSON shape, comparison with a baseline, thresholds.

The JSON document is ``{"schema_version": 2, "tool": "hotelbot bench", ...}`` (hotelbot's
one envelope, :mod:`hotelbot_cli.envelope`); its JSON Schema is ``report.schema.json``
beside this module. Reports saved before the envelope, ``{"format": "hotelbot.bench",
"version": 1, ...}``, are still read (same fields); a newer version is refused rather
than misread.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotelbot_cli import envelope
from hotelbot_cli.bench.explain import IndexCheck
from hotelbot_cli.bench.reference import Reference
from hotelbot_cli.errors import UsageError

#: The shape of the report: 2 is version 1's fields under the schema_version/tool envelope.
VERSION = 2
#: What marked a report before the envelope; ``--compare`` still reads such baselines.
LEGACY_ENVELOPE = {"format": "hotelbot.bench", "version": 1}
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


@dataclass(frozen=True)
class OpStats:
    """Throughput and latency of one operation over the measured phase."""

    name: str
    count: int
    errors: int
    ops_per_s: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    #: p50 over pgbench's average latency at the same concurrency (None: no reference).
    ref_ratio: float | None = None
    error_sample: str | None = None


@dataclass(frozen=True)
class PoolStats:
    """The pool over the measured phase."""

    pool_class: str
    size: int | None
    max_overflow: int | None
    peak_checked_out: int
    peak_overflow: int
    checkouts: int
    wait_p50_ms: float
    wait_p95_ms: float
    wait_max_ms: float
    timeouts: int
    pre_ping: bool


@dataclass(frozen=True)
class IsolationRow:
    """One operation as the tenant (app_user, RLS) and as the owner (no RLS), concurrency 1."""

    name: str
    tenant_p50_ms: float
    owner_p50_ms: float
    ratio: float | None
    count: int
    #: tenant p50 over pgbench's latency at one client.
    ref_ratio: float | None = None


@dataclass(frozen=True)
class DbCounters:
    """pg_stat_database deltas over the measured phase."""

    xact_commit: int = 0
    xact_rollback: int = 0
    blks_read: int = 0
    blks_hit: int = 0
    tup_returned: int = 0
    tup_fetched: int = 0
    tup_inserted: int = 0
    tup_updated: int = 0
    tup_deleted: int = 0
    deadlocks: int = 0

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.blks_hit + self.blks_read
        return self.blks_hit / total if total else None


@dataclass(frozen=True)
class BenchReport:
    """Everything one ``hotelbot bench`` run measured."""

    started_at: str
    settings: dict[str, Any]
    dataset: dict[str, int]
    operations: list[OpStats]
    pool: PoolStats | None
    elapsed_s: float
    total_ops: int
    isolation: list[IsolationRow] = field(default_factory=list)
    index_checks: list[IndexCheck] = field(default_factory=list)
    db: DbCounters | None = None
    references: list[Reference] = field(default_factory=list)
    server_version: str = ""
    notes: list[str] = field(default_factory=list)
    #: Why the owner baseline (the isolation table) was not measured, when it was asked for.
    isolation_skipped: str | None = None

    def op(self, name: str) -> OpStats | None:
        return next((o for o in self.operations if o.name == name), None)

    def reference(self, clients: int) -> Reference | None:
        return next(
            (r for r in self.references if r.clients == clients and r.latency_ms is not None),
            None,
        )


# --- JSON ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, DbCounters):
            out["cache_hit_ratio"] = value.cache_hit_ratio
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def to_dict(report: BenchReport) -> dict[str, Any]:
    """The versioned JSON document of ``report``."""
    return envelope.wrap("bench", _plain(report), VERSION)


def jsonable(value: Any) -> Any:
    """Dataclasses (changes, threshold results) as plain JSON values."""
    return _plain(value)


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for f in dataclasses.fields(cls):
        if f.type in ("tuple[str, ...]",) and f.name in kwargs:
            kwargs[f.name] = tuple(kwargs[f.name])
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> BenchReport:
    """Read a document written by :func:`to_dict` (this or an older minor shape)."""
    envelope.read(
        data,
        "bench",
        VERSION,
        legacy=LEGACY_ENVELOPE,
        hint="write one with `hotelbot bench --json`",
    )
    try:
        return BenchReport(
            started_at=data["started_at"],
            settings=dict(data.get("settings") or {}),
            dataset={k: int(v) for k, v in (data.get("dataset") or {}).items()},
            operations=[_build(OpStats, o) for o in data["operations"]],
            pool=_build(PoolStats, data["pool"]) if data.get("pool") else None,
            elapsed_s=float(data["elapsed_s"]),
            total_ops=int(data["total_ops"]),
            isolation=[_build(IsolationRow, r) for r in data.get("isolation") or []],
            index_checks=[_build(IndexCheck, c) for c in data.get("index_checks") or []],
            db=_build(DbCounters, data["db"]) if data.get("db") else None,
            references=[_build(Reference, r) for r in data.get("references") or []],
            server_version=str(data.get("server_version") or ""),
            notes=list(data.get("notes") or []),
            isolation_skipped=data.get("isolation_skipped"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"malformed bench report: {exc}") from None


def load(path: str | Path) -> BenchReport:
    """Read a report file written with ``--json``/``--output``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    return from_dict(data)


def dumps(report: BenchReport) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"


def schema() -> dict[str, Any]:
    """The JSON Schema of the report document."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


# --- comparison ------------------------------------------------------------------------------


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


def reference_latency(report: BenchReport, clients: int) -> tuple[float | None, float]:
    """Median pgbench latency at ``clients`` over the run's references, and its spread.

    The spread is (max - min) / median: 0 with one measurement. A runner that measures the
    reference several times (before, between, after) lets the comparison see host noise.
    """
    values = [r.latency_ms for r in report.references if r.clients == clients and r.latency_ms]
    if not values:
        return None, 0.0
    median = _median(values)
    return median, (max(values) - min(values)) / median if median > 0 else 0.0


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


# --- thresholds ---------------------------------------------------------------------------------

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
