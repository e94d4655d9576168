"""The shape of a monitoring snapshot: :class:`DbStats` and one dataclass per section.

This is what ``hotelbot db stats`` shows and what its ``--json`` document carries; the JSON
shape is versioned by :data:`SCHEMA_VERSION` and described by ``stats.schema.json``.
Reading the sections is :mod:`~hotelbot_cli.observability.pg_stats`'s job, putting them
together :mod:`~hotelbot_cli.observability.monitor`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

ENABLE_PG_STAT_STATEMENTS = (
    "pg_stat_statements is not available: add shared_preload_libraries = 'pg_stat_statements' "
    "to postgresql.conf, restart the server, then run CREATE EXTENSION pg_stat_statements; "
    "in this database"
)


@dataclass(frozen=True)
class ConnectionStats:
    max_connections: int
    total: int
    by_state: dict[str, int]
    this_database: int
    usage_ratio: float


@dataclass(frozen=True)
class TableStats:
    schema: str
    name: str
    rows: int
    total_bytes: int
    table_bytes: int
    index_bytes: int
    seq_scan: int
    idx_scan: int
    dead_tuples: int
    last_vacuum: str | None
    last_autovacuum: str | None
    last_analyze: str | None
    last_autoanalyze: str | None


@dataclass(frozen=True)
class IndexStats:
    table: str
    name: str
    scans: int
    size_bytes: int
    unique: bool
    primary: bool
    unused: bool
    duplicate_of: str | None
    definition: str


@dataclass(frozen=True)
class CacheStats:
    blks_hit: int
    blks_read: int
    hit_ratio: float | None
    index_hit_ratio: float | None


@dataclass(frozen=True)
class DatabaseCounters:
    deadlocks: int
    conflicts: int
    temp_files: int
    xact_commit: int
    xact_rollback: int
    stats_reset: str | None


@dataclass(frozen=True)
class LockInfo:
    pid: int
    locktype: str
    mode: str
    granted: bool
    relation: str | None
    user: str | None
    state: str | None


@dataclass(frozen=True)
class BlockingChain:
    blocked_pid: int
    blocked_by: list[int]
    chain: list[int]  # blocked pid first, the root blocker last
    waiting_ms: float | None
    blocked_query: str | None
    root_query: str | None
    root_state: str | None


@dataclass(frozen=True)
class SessionInfo:
    pid: int
    user: str | None
    state: str | None
    duration_ms: float | None
    wait_event: str | None
    query: str | None


@dataclass(frozen=True)
class StatementStat:
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


@dataclass(frozen=True)
class StatementsInfo:
    available: bool
    top: list[StatementStat]
    note: str | None = None

    @classmethod
    def unavailable(cls) -> StatementsInfo:
        """The section without pg_stat_statements: its note says how to install it."""
        return cls(available=False, top=[], note=ENABLE_PG_STAT_STATEMENTS)


@dataclass(frozen=True)
class NodeStats:
    """One Citus node's share of the distributed schema (from ``citus_shards``)."""

    node: str
    shards: int
    bytes: int


@dataclass(frozen=True)
class DbStats:
    """Everything ``hotelbot db stats`` shows."""

    schema_version: int
    collected_at: str
    database: str
    server_version: str
    connections: ConnectionStats | None
    tables: list[TableStats]
    indexes: list[IndexStats]
    cache: CacheStats | None
    counters: DatabaseCounters | None
    locks: list[LockInfo]
    blocking: list[BlockingChain]
    long_running: list[SessionInfo]
    idle_in_transaction: list[SessionInfo]
    statements: StatementsInfo
    notes: list[str] = field(default_factory=list)
    #: Per-node sizes on a Citus coordinator (empty on a plain PostgreSQL).
    nodes: list[NodeStats] = field(default_factory=list)


def to_document(stats: DbStats) -> dict[str, Any]:
    """``stats`` as the ``db stats --json`` document, under hotelbot's one envelope."""
    from dataclasses import asdict

    from hotelbot_cli import envelope

    return envelope.wrap("db stats", asdict(stats), stats.schema_version)
