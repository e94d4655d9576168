"""What a bench run reports: one frozen dataclass per part of the report.

Written and read as JSON by :mod:`hotelbot_cli.bench.report_json`; compared with a
baseline by :mod:`hotelbot_cli.bench.comparison`, checked by
:mod:`hotelbot_cli.bench.thresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hotelbot_cli.bench.explain import IndexCheck
from hotelbot_cli.bench.reference import Reference


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
