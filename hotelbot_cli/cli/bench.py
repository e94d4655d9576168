"""``hotelbot bench``: run the bot's workload and report latency, pool, isolation cost, indexes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import JsonOption, count_option, finite, seconds_option

if TYPE_CHECKING:
    from hotelbot_cli.bench.comparison import Change
    from hotelbot_cli.bench.report import BenchReport
    from hotelbot_cli.bench.thresholds import ThresholdResult


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:.2f} ms"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.0f}%"


def _wrapped(text: str, width: int = 80) -> None:
    """A summary line, wrapped at spaces to fit 80 columns."""
    import textwrap

    for part in textwrap.wrap(text, width=width, subsequent_indent="  "):
        out.line(part)


def _render(report: BenchReport) -> None:
    s = report.settings
    data = ", ".join(f"{v:,} {k}" for k, v in report.dataset.items())
    out.line(
        f"hotelbot bench: {report.total_ops:,} operations in {report.elapsed_s:.1f} s,"
        f" {s['concurrency']} {s['engine']} worker(s)"
        + (f" in {s['processes']} processes" if s.get("processes", 1) > 1 else "")
        + f", PostgreSQL {report.server_version}"
    )
    out.line(f"dataset: {data}")
    ref_n = report.reference(int(s["concurrency"]))
    ratio_col = f"× pgbench (c={s['concurrency']})"
    errors = any(o.errors for o in report.operations)
    columns = ["operation", "count", "p50", "p95", "p99", "max"]
    columns += ["errors"] if errors else []
    columns += [ratio_col] if ref_n is not None else []
    out.table(
        "Operations (as app_user inside a tenant transaction)",
        columns,
        [
            (
                o.name,
                f"{o.count:,}",
                _ms(o.p50_ms),
                _ms(o.p95_ms),
                _ms(o.p99_ms),
                _ms(o.max_ms),
                *([o.errors] if errors else []),
                *([_x(o.ref_ratio)] if ref_n is not None else []),
            )
            for o in report.operations
        ],
        justify={c: "right" for c in columns[1:]},
    )
    for o in report.operations:
        if o.error_sample:
            out.info(f"{o.name}: {o.errors} error(s), e.g. {o.error_sample}")
    if report.pool:
        p = report.pool
        _wrapped(
            f"Pool: {p.pool_class} size {p.size}, max overflow {p.max_overflow}; peak"
            f" {p.peak_checked_out} checked out ({p.peak_overflow} overflow), {p.checkouts:,}"
            f" checkouts, wait p50 {_ms(p.wait_p50_ms)} / p95 {_ms(p.wait_p95_ms)} / max"
            f" {_ms(p.wait_max_ms)}, {p.timeouts} timeouts,"
            f" pre-ping {'on' if p.pre_ping else 'off'}"
        )
    if report.isolation:
        out.table(
            "Cost of tenant isolation (concurrency 1, p50; owner = no RLS, explicit hotel_id)",
            ["operation", "tenant (RLS)", "owner", "ratio", "× pgbench (c=1)"],
            [
                (r.name, _ms(r.tenant_p50_ms), _ms(r.owner_p50_ms), _x(r.ratio), _x(r.ref_ratio))
                for r in report.isolation
            ],
            justify={k: "right" for k in ("tenant (RLS)", "owner", "ratio", "× pgbench (c=1)")},
        )
    if report.index_checks:
        bad = [c for c in report.index_checks if not c.ok]
        scanned = sorted({t for c in report.index_checks if c.ok for t in c.seq_scans})
        if not bad:
            small = f" ({', '.join(scanned)}, small, are scanned)" if scanned else ""
            out.line(f"Index check: every operation uses its index{small}")
        else:
            out.table(
                "Index check (EXPLAIN): operations that miss their index",
                ["operation", "indexes used", "seq scans", "note"],
                [
                    (c.operation, ", ".join(c.used) or "-", ", ".join(c.seq_scans) or "-", c.note)
                    for c in bad
                ],
            )
    if report.db:
        d = report.db
        hit = "-" if d.cache_hit_ratio is None else f"{d.cache_hit_ratio * 100:.2f}%"
        _wrapped(
            f"Database over the run (pg_stat_database): {d.xact_commit:,} commits,"
            f" {d.xact_rollback:,} rollbacks, cache hit {hit}, rows returned {d.tup_returned:,},"
            f" fetched {d.tup_fetched:,}, inserted {d.tup_inserted:,}, updated"
            f" {d.tup_updated:,}, deleted {d.tup_deleted:,}, {d.deadlocks} deadlocks"
        )
    if report.references:
        out.table(
            "Reference: pgbench select-only on the same server",
            ["clients", "tps", "latency avg", "ours (ops/s)", "note"],
            [
                (
                    r.clients,
                    "-" if r.tps is None else f"{r.tps:,.0f}",
                    _ms(r.latency_ms),
                    f"{report.total_ops / report.elapsed_s:,.0f}"
                    if r.clients == int(s["concurrency"]) and report.elapsed_s
                    else "",
                    r.skipped or "",
                )
                for r in report.references
            ],
        )
    elif ref_n is None:
        out.info("no pgbench reference (--no-reference)")
    for note in report.notes:
        out.info(f"note: {note}")


def _render_changes(changes: list[Change], baseline: str) -> None:
    normalized = any(c.normalized for c in changes)
    title = f"Change against {baseline}" + (
        " (normalized by each run's pgbench)" if normalized else ""
    )
    out.table(
        title,
        ["operation", "p50 then", "p50 now", "p95 then", "p95 now", "p95 change", "confidence", ""],
        [
            (
                c.name,
                _ms(c.baseline_p50_ms),
                _ms(c.current_p50_ms),
                _ms(c.baseline_p95_ms),
                _ms(c.current_p95_ms),
                _pct(c.p95_change),
                "-" if c.confidence is None else f"{c.confidence * 100:.1f}%",
                "REGRESSION" if c.regression else "",
            )
            for c in changes
        ],
        justify={k: "right" for k in ("p50 then", "p50 now", "p95 then", "p95 now", "p95 change")},
    )
    if changes:
        out.info(
            f"regression: p95 > +{changes[0].noise_floor * 100:.0f}% (tolerance + reference"
            " spread), at >= 99% confidence"
        )


def _render_thresholds(results: list[ThresholdResult]) -> None:
    out.table(
        "Thresholds (--fail-if)",
        ["threshold", "operation", "observed", "result"],
        [
            (
                r.text,
                r.subject,
                "-" if r.observed is None else f"{r.observed:.4g}",
                "FAILED" if r.failed else "ok",
            )
            for r in results
        ],
    )


def bench(  # noqa: PLR0917 - Typer options are parameters
    duration: Annotated[
        float | None,
        seconds_option("--duration", "-d", help="Seconds to run (default 10).", minimum=0.001),
    ] = None,
    iterations: Annotated[
        int | None, count_option("--iterations", "-n", help="Run this many operations instead.")
    ] = None,
    concurrency: Annotated[
        int,
        count_option(
            "--concurrency", "-c", help="Concurrent workers (threads or tasks).", maximum=1000
        ),
    ] = 1,
    engine: Annotated[
        str, typer.Option("--engine", help="sync (threads) or async (asyncio, as the bot).")
    ] = "sync",
    processes: Annotated[
        int,
        count_option(
            "--processes",
            help="Split the workers over N processes (past one Python process's GIL).",
            maximum=64,
        ),
    ] = 1,
    ops: Annotated[
        str | None,
        typer.Option("--ops", help="Comma-separated operations to run (default: all)."),
    ] = None,
    seed: Annotated[
        int,
        count_option("--seed", help="Seed of the random choices.", minimum=0, maximum=2**63 - 1),
    ] = 42,
    no_reference: Annotated[
        bool, typer.Option("--no-reference", help="Skip the pgbench reference.")
    ] = False,
    no_isolation: Annotated[
        bool, typer.Option("--no-isolation", help="Skip the tenant-vs-owner comparison.")
    ] = False,
    isolation_iterations: Annotated[
        int,
        count_option(
            "--isolation-iterations",
            help="Tenant/owner pairs per operation in the isolation comparison (more: a steadier"
            " ratio, a longer run).",
            maximum=1_000_000,
        ),
    ] = 200,
    no_explain: Annotated[bool, typer.Option("--no-explain", help="Skip the index check.")] = False,
    reference_seconds: Annotated[
        float, seconds_option("--reference-seconds", help="Seconds of each pgbench run.", minimum=1)
    ] = 3.0,
    pre_ping: Annotated[
        bool,
        typer.Option(
            "--pre-ping",
            help="Check each connection on checkout, as the bot does by default (a socket"
            " poll; a ping after 30 s idle).",
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the JSON report to FILE.")
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option("--compare", help="Show the change against BASELINE.json (from --json)."),
    ] = None,
    fail_if: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-if",
            metavar="THRESHOLD",
            help="Exit 1 when this holds, e.g. 'store_message.p95>5ms', '*.errors>0',"
            " 'pool.timeouts>0', '*.isolation_ratio>1.25'. Repeatable.",
        ),
    ] = None,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="With --compare: exit 1 on a regression.")
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            min=0,
            max=100,
            callback=finite,
            help="Slower p95 than this fraction is a regression.",
        ),
    ] = 0.25,
    tenant_login: Annotated[
        str,
        typer.Option(
            "--tenant-login",
            help="login: the bot's own login, a member of app_user (HOTELBOT_APP_DATABASE_URL,"
            " else a throwaway role for the run); set-role: switch role in each transaction.",
        ),
    ] = "login",
    as_json: JsonOption = False,
) -> None:
    """Run the bot's real workload and report latency percentiles, pool stats, isolation cost.

    Needs a seeded database (`hotelbot seed`), as the tables' owner; the workload itself runs
    as app_user. The owner baseline (no RLS) needs a superuser or BYPASSRLS role: without
    one it is skipped with a note.
    """
    from hotelbot_cli.bench.options import BenchOptions, Progress
    from hotelbot_cli.bench.report_json import dumps, load
    from hotelbot_cli.bench.runner import run_bench
    from hotelbot_cli.bench.thresholds import parse_threshold
    from hotelbot_cli.bench.verdict import judge
    from hotelbot_cli.errors import UsageError, raise_if_failed

    if duration is not None and iterations is not None:
        raise UsageError("give --duration or --iterations, not both")
    thresholds = [parse_threshold(t) for t in fail_if or []]
    baseline = load(compare) if compare else None
    options = BenchOptions(
        duration=None if iterations is not None else (duration or 10.0),
        iterations=iterations,
        concurrency=concurrency,
        processes=processes,
        engine=engine,
        ops=tuple(o.strip() for o in ops.split(",") if o.strip()) if ops else (),
        seed=seed,
        reference=not no_reference,
        reference_seconds=reference_seconds,
        isolation=not no_isolation,
        isolation_iterations=isolation_iterations,
        explain=not no_explain,
        pre_ping=pre_ping,
        tenant_login=tenant_login,
    )
    options.validate()

    with out.err_console.status("starting…") as status:

        def progress(p: Progress) -> None:
            if p.phase == "run":
                where = (
                    f"{p.elapsed_s:.1f}/{p.planned_s:.0f} s"
                    if p.planned_s
                    else f"{p.ops:,}/{p.planned_ops or 0:,} ops"
                )
                status.update(
                    f"run {where}: {p.ops:,} ops, {p.ops_per_s:,.0f} ops/s, {p.errors} errors"
                )
            else:
                status.update(p.phase + "…")

        report = run_bench(None, options, progress)

    verdict = judge(
        report,
        thresholds=thresholds,
        baseline=baseline,
        tolerance=tolerance,
        fail_on_regression=fail_on_regression,
    )
    if output:
        output.write_text(dumps(report), encoding="utf-8")
    if as_json:
        out.emit_json(verdict.to_dict())
    else:
        _render(report)
        if baseline is not None:
            _render_changes(list(verdict.changes), str(compare))
        if verdict.thresholds:
            _render_thresholds(list(verdict.thresholds))
        if output:
            out.info(f"report written to {output}")
    raise_if_failed(verdict)
