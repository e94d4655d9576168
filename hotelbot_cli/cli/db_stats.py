"""``hotelbot db stats``: a monitoring snapshot of the live database, as tables or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import JsonOption, count_option, engine, seconds_option

if TYPE_CHECKING:
    from rich.console import Group

    from hotelbot_cli.observability.db_stats import DbStats


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns at GB


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.2f} %"


def _date(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "never"


def _table(
    title: str, columns: list[str], rows: list[list[Any]], right: set[str] | None = None
) -> Group:
    """A table fitted to the terminal (split by columns, never a value cut)."""
    from rich.console import Group

    justify = {name: "right" for name in right or set()}
    return Group(*out.fitted_tables(title, columns, rows, justify=justify))


def render(stats: DbStats) -> Group:
    """Every section of ``stats`` as rich renderables (one Group, for print or Live)."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [
        Text(f"{stats.database} · PostgreSQL {stats.server_version} · {stats.collected_at}")
    ]
    c = stats.connections
    if c is not None:
        rows = [[state, n] for state, n in c.by_state.items()]
        rows.append(
            ["total (all databases)", f"{c.total} / {c.max_connections} ({_pct(c.usage_ratio)})"]
        )
        rows.append(["in this database", c.this_database])
        parts.append(_table("Connections", ["state", "count"], rows, {"count"}))
    parts.append(
        _table(
            "Tables",
            [
                "table",
                "rows",
                "table size",
                "index size",
                "seq scans",
                "index scans",
                "dead",
                "last vacuum",
                "last analyze",
            ],
            [
                [
                    t.name,
                    t.rows,
                    _size(t.table_bytes),
                    _size(t.index_bytes),
                    t.seq_scan,
                    t.idx_scan,
                    t.dead_tuples,
                    _date(t.last_vacuum or t.last_autovacuum),
                    _date(t.last_analyze or t.last_autoanalyze),
                ]
                for t in stats.tables
            ],
            {"rows", "table size", "index size", "seq scans", "index scans", "dead"},
        )
    )
    if stats.nodes:  # Citus: the rows live on the workers, the tables above are shells
        rows = [[n.node, n.shards, _size(n.bytes)] for n in stats.nodes]
        parts.append(_table("Citus nodes", ["node", "shards", "size"], rows, {"shards", "size"}))
    parts.append(
        _table(
            "Indexes",
            ["table", "index", "scans", "size", "flags"],
            [
                [
                    i.table,
                    i.name,
                    i.scans,
                    _size(i.size_bytes),
                    ", ".join(
                        f
                        for f in (
                            "primary" if i.primary else "unique" if i.unique else "",
                            "UNUSED" if i.unused else "",
                            f"DUPLICATE of {i.duplicate_of}" if i.duplicate_of else "",
                        )
                        if f
                    ),
                ]
                for i in stats.indexes
            ],
            {"scans", "size"},
        )
    )
    rows = []
    if stats.cache is not None:
        rows += [
            ["cache hit ratio", _pct(stats.cache.hit_ratio)],
            ["index cache hit ratio", _pct(stats.cache.index_hit_ratio)],
        ]
    if stats.counters is not None:
        k = stats.counters
        rows += [
            ["deadlocks", k.deadlocks],
            ["conflicts", k.conflicts],
            ["temp files", k.temp_files],
            ["commits / rollbacks", f"{k.xact_commit} / {k.xact_rollback}"],
            ["stats since", _date(k.stats_reset) if k.stats_reset else "server start"],
        ]
    rows.append(["locks held now", len(stats.locks)])
    parts.append(_table("Health", ["metric", "value"], rows, {"value"}))
    if stats.blocking:
        parts.append(
            _table(
                "Blocking chains",
                [
                    "blocked pid",
                    "chain (→ root blocker)",
                    "waiting ms",
                    "blocked query",
                    "root state",
                    "root query",
                ],
                [
                    [
                        b.blocked_pid,
                        " → ".join(map(str, b.chain)),
                        b.waiting_ms,
                        b.blocked_query,
                        b.root_state,
                        b.root_query,
                    ]
                    for b in stats.blocking
                ],
            )
        )
    sessions = [
        ["long-running", s.pid, s.user, s.duration_ms, s.wait_event, s.query]
        for s in stats.long_running
    ]
    sessions += [
        ["idle in transaction", s.pid, s.user, s.duration_ms, s.wait_event, s.query]
        for s in stats.idle_in_transaction
    ]
    if sessions:
        parts.append(
            _table("Sessions to look at", ["kind", "pid", "user", "ms", "wait", "query"], sessions)
        )
    if stats.statements.available:
        parts.append(
            _table(
                "Top statements (pg_stat_statements)",
                ["calls", "total ms", "mean ms", "rows", "query"],
                [[s.calls, s.total_ms, s.mean_ms, s.rows, s.query] for s in stats.statements.top],
                {"calls", "total ms", "mean ms", "rows"},
            )
        )
    for note in [*stats.notes, *([stats.statements.note] if stats.statements.note else [])]:
        parts.append(Text(f"note: {note}", style="dim"))
    return Group(*parts)


def stats(
    as_json: JsonOption = False,
    watch: Annotated[
        float | None,
        seconds_option(
            "--watch", metavar="SECONDS", minimum=0.2, help="Refresh in place every SECONDS."
        ),
    ] = None,
    count: Annotated[
        int | None,
        count_option("--count", help="With --watch: stop after N refreshes."),
    ] = None,
    long_running: Annotated[
        float,
        seconds_option(
            "--long-running",
            metavar="SECONDS",
            help="Active longer than this is long-running.",
        ),
    ] = 5.0,
    top: Annotated[
        int, count_option("--top", help="Statements shown from pg_stat_statements.", maximum=10_000)
    ] = 10,
) -> None:
    """Monitoring snapshot: connections, tables, indexes, cache, locks, blocking, statements."""
    from hotelbot_cli.observability import monitor
    from hotelbot_cli.observability.db_stats import to_document

    eng = engine()
    if watch is None:
        snap = monitor.snapshot(eng, long_running_s=long_running, top=top)
        if as_json:
            out.emit_json(to_document(snap))
        else:
            out.console.print(render(snap))
        return
    if as_json:
        from hotelbot_cli.errors import UsageError

        raise UsageError("--watch and --json do not go together", "use one snapshot with --json")
    import time

    from rich.live import Live

    done = 0
    try:
        with Live(console=out.console, auto_refresh=False, screen=False) as live:
            while True:
                live.update(
                    render(monitor.snapshot(eng, long_running_s=long_running, top=top)),
                    refresh=True,
                )
                done += 1
                if count is not None and done >= count:
                    break
                time.sleep(watch)
    except KeyboardInterrupt:
        pass
