"""The readers of a monitoring snapshot's sections, one PostgreSQL statistics query each.

Each ``read_*`` function turns one view (pg_stat_activity, pg_stat_user_tables, pg_locks,
pg_stat_statements, citus_shards…) into its :mod:`~hotelbot_cli.observability.db_stats`
dataclass; a view this role may not read raises, and the snapshot turns that into a note.
Query texts are shown with literals replaced and phone numbers masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from hotelbot_cli.observability.db_stats import (
    BlockingChain,
    CacheStats,
    ConnectionStats,
    DatabaseCounters,
    IndexStats,
    LockInfo,
    NodeStats,
    SessionInfo,
    StatementsInfo,
    StatementStat,
    TableStats,
)
from hotelbot_cli.observability.masking import scrub_sql

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection, RowMapping

_QUERY_CHARS = 300


class ServerInfo(NamedTuple):
    """Which database this is, and whether this role sees every session's query and state."""

    database: str
    version: str
    sees_all_stats: bool


class Sessions(NamedTuple):
    """The client sessions worth a look, split by what is wrong with them."""

    long_running: list[SessionInfo]
    idle_in_transaction: list[SessionInfo]


class _IndexKey(NamedTuple):
    """What makes two indexes the same index: table, columns, operator classes, predicate."""

    relation: int
    keys: str
    opclasses: str
    expressions: str
    predicate: str


def _q(text: str | None) -> str | None:
    if text is None:
        return None
    clean = scrub_sql(" ".join(text.split()))
    return clean if len(clean) <= _QUERY_CHARS else clean[:_QUERY_CHARS] + " …"


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _rows(conn: Connection, sql: str, **params: object) -> list[RowMapping]:
    from sqlalchemy import text

    return list(conn.execute(text(sql), params).mappings())


def read_server(conn: Connection) -> ServerInfo:
    """The database's name and version, and whether this role reads all statistics."""
    head = _rows(
        conn,
        """SELECT current_database() AS db, current_setting('server_version') AS v,
                  pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')
                  OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS full""",
    )[0]
    return ServerInfo(database=head["db"], version=head["v"], sees_all_stats=bool(head["full"]))


def read_connections(conn: Connection) -> ConnectionStats:
    rows = _rows(
        conn,
        """SELECT coalesce(state, 'unknown (no privilege)') AS state, count(*) AS n,
                  count(*) FILTER (WHERE datname = current_database()) AS here
           FROM pg_stat_activity WHERE backend_type = 'client backend'
           GROUP BY 1 ORDER BY 2 DESC, 1""",
    )
    max_conn = int(_rows(conn, "SELECT current_setting('max_connections')::int AS m")[0]["m"])
    by_state = {r["state"]: int(r["n"]) for r in rows}
    total = sum(by_state.values())
    return ConnectionStats(
        max_connections=max_conn,
        total=total,
        by_state=by_state,
        this_database=sum(int(r["here"]) for r in rows),
        usage_ratio=round(total / max_conn, 4) if max_conn else 0.0,
    )


def read_tables(conn: Connection) -> list[TableStats]:
    rows = _rows(
        conn,
        """SELECT s.schemaname, s.relname, s.n_live_tup, pg_total_relation_size(s.relid) AS total,
                  pg_table_size(s.relid) AS tbl, pg_indexes_size(s.relid) AS idx,
                  coalesce(s.seq_scan, 0) AS seq_scan, coalesce(s.idx_scan, 0) AS idx_scan,
                  s.n_dead_tup, s.last_vacuum, s.last_autovacuum, s.last_analyze,
                  s.last_autoanalyze
           FROM pg_stat_user_tables s ORDER BY pg_total_relation_size(s.relid) DESC, s.relname""",
    )
    return [
        TableStats(
            schema=r["schemaname"],
            name=r["relname"],
            rows=int(r["n_live_tup"]),
            total_bytes=int(r["total"]),
            table_bytes=int(r["tbl"]),
            index_bytes=int(r["idx"]),
            seq_scan=int(r["seq_scan"]),
            idx_scan=int(r["idx_scan"]),
            dead_tuples=int(r["n_dead_tup"]),
            last_vacuum=_ts(r["last_vacuum"]),
            last_autovacuum=_ts(r["last_autovacuum"]),
            last_analyze=_ts(r["last_analyze"]),
            last_autoanalyze=_ts(r["last_autoanalyze"]),
        )
        for r in rows
    ]


def read_indexes(conn: Connection) -> list[IndexStats]:
    rows = _rows(
        conn,
        """SELECT s.relname AS tbl, s.indexrelname AS idx, coalesce(s.idx_scan, 0) AS scans,
                  pg_relation_size(s.indexrelid) AS size, i.indisunique, i.indisprimary,
                  i.indrelid::bigint AS rel, i.indkey::text AS keys, i.indclass::text AS ops,
                  coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,
                  coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS pred,
                  pg_get_indexdef(s.indexrelid) AS def
           FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
           ORDER BY s.relname, i.indisprimary DESC, i.indisunique DESC, s.indexrelname""",
    )
    first: dict[_IndexKey, str] = {}
    out = []
    for r in rows:
        key = _IndexKey(r["rel"], r["keys"], r["ops"], r["exprs"], r["pred"])
        duplicate_of = first.get(key)
        first.setdefault(key, r["idx"])
        constraint = bool(r["indisunique"] or r["indisprimary"])
        out.append(
            IndexStats(
                table=r["tbl"],
                name=r["idx"],
                scans=int(r["scans"]),
                size_bytes=int(r["size"]),
                unique=bool(r["indisunique"]),
                primary=bool(r["indisprimary"]),
                unused=int(r["scans"]) == 0 and not constraint,
                duplicate_of=duplicate_of,
                definition=r["def"],
            )
        )
    return out


def read_cache(conn: Connection) -> CacheStats:
    r = _rows(
        conn,
        """SELECT d.blks_hit, d.blks_read,
                  (SELECT sum(idx_blks_hit) FROM pg_statio_user_indexes) AS ih,
                  (SELECT sum(idx_blks_read) FROM pg_statio_user_indexes) AS ir
           FROM pg_stat_database d WHERE d.datname = current_database()""",
    )[0]
    hit, read = int(r["blks_hit"] or 0), int(r["blks_read"] or 0)
    ih, ir = int(r["ih"] or 0), int(r["ir"] or 0)
    return CacheStats(
        blks_hit=hit,
        blks_read=read,
        hit_ratio=round(hit / (hit + read), 4) if hit + read else None,
        index_hit_ratio=round(ih / (ih + ir), 4) if ih + ir else None,
    )


def read_counters(conn: Connection) -> DatabaseCounters:
    r = _rows(
        conn,
        """SELECT deadlocks, conflicts, temp_files, xact_commit, xact_rollback, stats_reset
           FROM pg_stat_database WHERE datname = current_database()""",
    )[0]
    return DatabaseCounters(
        deadlocks=int(r["deadlocks"] or 0),
        conflicts=int(r["conflicts"] or 0),
        temp_files=int(r["temp_files"] or 0),
        xact_commit=int(r["xact_commit"] or 0),
        xact_rollback=int(r["xact_rollback"] or 0),
        stats_reset=_ts(r["stats_reset"]),
    )


def read_locks(conn: Connection, limit: int) -> list[LockInfo]:
    rows = _rows(
        conn,
        """SELECT l.pid, l.locktype, l.mode, l.granted, c.relname, a.usename, a.state
           FROM pg_locks l
           LEFT JOIN pg_class c ON c.oid = l.relation
           LEFT JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.pid <> pg_backend_pid()
             AND (l.database IS NULL OR l.database =
                  (SELECT oid FROM pg_database WHERE datname = current_database()))
             AND l.locktype <> 'virtualxid'
           ORDER BY l.granted, l.pid, c.relname NULLS LAST LIMIT :limit""",
        limit=limit,
    )
    return [
        LockInfo(
            pid=int(r["pid"]) if r["pid"] is not None else 0,
            locktype=r["locktype"],
            mode=r["mode"],
            granted=bool(r["granted"]),
            relation=r["relname"],
            user=r["usename"],
            state=r["state"],
        )
        for r in rows
    ]


def read_blocking(conn: Connection) -> list[BlockingChain]:
    waiting = _rows(
        conn,
        """SELECT pid, pg_blocking_pids(pid) AS blockers, query,
                  extract(epoch FROM now() - coalesce(state_change, query_start)) * 1000 AS ms
           FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0 ORDER BY pid""",
    )
    if not waiting:
        return []
    blockers_of = {int(r["pid"]): [int(p) for p in r["blockers"]] for r in waiting}
    pids = set(blockers_of) | {p for ps in blockers_of.values() for p in ps}
    info = {
        int(r["pid"]): r
        for r in _rows(
            conn,
            "SELECT pid, state, query FROM pg_stat_activity WHERE pid = ANY(:pids)",
            pids=sorted(pids),
        )
    }
    chains = []
    for r in waiting:
        pid = int(r["pid"])
        chain = [pid]
        while chain[-1] in blockers_of and blockers_of[chain[-1]]:
            nxt = blockers_of[chain[-1]][0]
            if nxt in chain:  # a deadlock in the making: stop at the cycle
                break
            chain.append(nxt)
        root = info.get(chain[-1])
        chains.append(
            BlockingChain(
                blocked_pid=pid,
                blocked_by=blockers_of[pid],
                chain=chain,
                waiting_ms=round(float(r["ms"]), 1) if r["ms"] is not None else None,
                blocked_query=_q(r["query"]),
                root_query=_q(root["query"]) if root is not None else None,
                root_state=root["state"] if root is not None else None,
            )
        )
    return chains


def read_sessions(conn: Connection, long_running_s: float) -> Sessions:
    rows = _rows(
        conn,
        """SELECT pid, usename, state, wait_event_type, wait_event, query,
                  extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start
                                                  ELSE xact_start END) * 1000 AS ms
           FROM pg_stat_activity
           WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
             AND ((state = 'active' AND now() - query_start > make_interval(secs => :secs))
                  OR state LIKE 'idle in transaction%')
           ORDER BY ms DESC NULLS LAST""",
        secs=long_running_s,
    )
    long_running: list[SessionInfo] = []
    idle_tx: list[SessionInfo] = []
    for r in rows:
        item = SessionInfo(
            pid=int(r["pid"]),
            user=r["usename"],
            state=r["state"],
            duration_ms=round(float(r["ms"]), 1) if r["ms"] is not None else None,
            wait_event=(
                f"{r['wait_event_type']}:{r['wait_event']}" if r["wait_event_type"] else None
            ),
            query=_q(r["query"]),
        )
        (long_running if r["state"] == "active" else idle_tx).append(item)
    return Sessions(long_running, idle_tx)


def read_statements(conn: Connection, top: int) -> StatementsInfo:
    installed = _rows(conn, "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
    if not installed:
        return StatementsInfo.unavailable()
    rows = _rows(
        conn,
        """SELECT query, calls, total_exec_time, mean_exec_time, rows
           FROM pg_stat_statements
           WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           ORDER BY total_exec_time DESC LIMIT :top""",
        top=top,
    )
    return StatementsInfo(
        available=True,
        top=[
            StatementStat(
                query=_q(r["query"]) or "",
                calls=int(r["calls"]),
                total_ms=round(float(r["total_exec_time"]), 3),
                mean_ms=round(float(r["mean_exec_time"]), 3),
                rows=int(r["rows"]),
            )
            for r in rows
        ],
    )


def read_nodes(conn: Connection) -> list[NodeStats]:
    """Shards and bytes per Citus node; the tables above then show the coordinator's shells."""
    if not _rows(conn, "SELECT 1 FROM pg_extension WHERE extname = 'citus'"):
        return []
    rows = _rows(
        conn,
        """SELECT nodename || ':' || nodeport AS node, count(*) AS shards,
                  coalesce(sum(shard_size), 0) AS bytes
           FROM citus_shards GROUP BY 1 ORDER BY 1""",
    )
    return [NodeStats(node=r["node"], shards=int(r["shards"]), bytes=int(r["bytes"])) for r in rows]
