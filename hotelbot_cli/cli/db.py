"""``hotelbot db …``: migrations (a facade over Alembic's commands)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli import db_stats, login
from hotelbot_cli.cli._common import JsonOption, engine, lock_timeout
from hotelbot_cli.errors import UsageError, raise_if_failed

if TYPE_CHECKING:
    from hotelbot_cli.citus.plan import DistributePlan

app = typer.Typer(
    help="Migrations: upgrade, downgrade, current, history, check…", no_args_is_help=True
)

RevisionArg = Annotated[str, typer.Argument(help="Target revision: an id, head, base, +1, -1.")]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask before dropping tables or columns with rows."),
]


def _report(result: object, verb: str, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Steps on stderr and the new revision on stdout, or one JSON object (db-migration schema)."""
    from hotelbot_cli.migrations import MigrationResult

    assert isinstance(result, MigrationResult)
    if as_json:
        out.emit_json(
            {
                "command": verb,
                "before": list(result.before),
                "after": list(result.after),
                "changed": result.before != result.after,
                "steps": list(result.steps),
                **(extra or {}),
            },
            f"db {verb}",
        )
        return
    for step in result.steps:
        out.info(step)
    after = ", ".join(result.after) or "base (empty)"
    if result.before == result.after:
        out.line(f"Already at {after}; nothing to {verb}.")
    else:
        out.line(f"Database is now at {after}.")


@app.command()
def upgrade(revision: RevisionArg = "head", as_json: JsonOption = False) -> None:
    """Upgrade the database to REVISION (default: head), under an advisory lock."""
    from hotelbot_cli import migrations

    _report(migrations.upgrade(engine(), revision, lock_timeout()), "upgrade", as_json)


# ignore_unknown_options: `downgrade -1` is a revision, not an option click does not know.
@app.command(context_settings={"ignore_unknown_options": True})
def downgrade(revision: RevisionArg, yes: YesOption = False, as_json: JsonOption = False) -> None:
    """Downgrade the database to REVISION (`base` removes every object of ours).

    When the downgrade would drop tables or columns that hold rows, it lists them and asks
    (or takes --yes); without a terminal it refuses unless --yes is given.
    """
    from hotelbot_cli import migration_losses, migrations

    if revision.startswith("-") and migrations.relative_steps(revision) is None:
        raise UsageError(f"no such option: {revision}", "see hotelbot db downgrade --help")
    db = engine()
    losses = migration_losses.downgrade_losses(db, revision)
    if losses and not yes:
        listing = ", ".join(str(loss) for loss in losses)
        if not sys.stdin.isatty():
            raise UsageError(
                f"downgrade to {revision} drops data: {listing}", "add --yes to confirm"
            )
        typer.confirm(f"Downgrade to {revision} drops data: {listing}. Go ahead?", abort=True)
    result = migrations.downgrade(db, revision, lock_timeout())
    _report(result, "downgrade", as_json, {"dropped_data": [out.to_jsonable(x) for x in losses]})


@app.command()
def current(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the database is not at head (for CI).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the revision the database is at (read-only: writes nothing)."""
    from hotelbot_cli import migrations

    status = migrations.head_status(engine())
    if as_json:
        out.emit_json(
            {
                "current": list(status.current),
                "heads": list(status.heads),
                "at_head": status.at_head,
            },
            "db current",
        )
    else:
        label = ", ".join(status.current) or "base (empty)"
        out.line(f"{label}{' (head)' if status.at_head else ''}")
    if check:
        raise_if_failed(status)


@app.command()
def history(as_json: JsonOption = False) -> None:
    """List every revision, newest first."""
    from hotelbot_cli import migrations

    revisions = migrations.history()
    if as_json:
        out.emit_json({"revisions": revisions}, "db history")
        return
    out.table(
        "Migrations",
        ["revision", "down", "head", "message"],
        [
            (r.revision, r.down_revision or "base", "yes" if r.is_head else "", r.message)
            for r in revisions
        ],
    )


@app.command()
def heads(as_json: JsonOption = False) -> None:
    """Show the head revision(s) of the migration scripts."""
    from hotelbot_cli import migrations

    if as_json:
        out.emit_json({"heads": list(migrations.heads())}, "db heads")
        return
    for head in migrations.heads():
        out.line(head)


@app.command()
def check(as_json: JsonOption = False) -> None:
    """Exit 1 when the models differ from the migrations or from the database, or >1 head.

    The migrations are built in a scratch database (created and dropped; a role revision 007
    creates on the server for it is dropped again); the database itself is compared when it
    is at head, as `alembic check` does.
    """
    from hotelbot_cli import migration_check

    report = migration_check.check(engine(), lock_timeout())
    if as_json:
        out.emit_json(
            {
                "ok": report.ok,
                "heads": list(report.heads),
                "differences": list(report.differences),
                "database": {
                    "current": list(report.database),
                    "compared": report.database_compared,
                    "differences": list(report.database_differences),
                },
                "notes": list(report.notes),
            },
            "db check",
        )
    else:
        for note in report.notes:
            out.info(f"note: {note}")
        if report.ok:
            checked = " and the database" if report.database_compared else ""
            out.line(f"OK: models match the migrations{checked} (head {report.heads[0]}).")
    raise_if_failed(report)


@app.command()
def sql(
    revision_range: Annotated[str, typer.Argument(help="FROM:TO, e.g. base:head or 006:005.")],
) -> None:
    """Print the SQL of a migration range for review, without touching a database."""
    from hotelbot_cli import migrations

    out.console.file.write(migrations.offline_sql(revision_range))


@app.command()
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision changes.")],
    autogenerate: Annotated[
        bool, typer.Option("--autogenerate", help="Fill it from the models' differences.")
    ] = False,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            metavar="PATH",
            help="Source checkout to write into (default: the one holding the working "
            "directory, or the scripts in use when installed editable).",
        ),
    ] = None,
) -> None:
    """Create a new revision file in a source checkout (never in site-packages)."""
    from hotelbot_cli import migration_authoring

    path = migration_authoring.revision(
        engine() if autogenerate else None, message, autogenerate, source
    )
    out.line(f"Created {path}")


@app.command()
def stamp(revision: RevisionArg, as_json: JsonOption = False) -> None:
    """Record REVISION as current without running migrations."""
    from hotelbot_cli import migrations

    _report(migrations.stamp(engine(), revision, lock_timeout()), "stamp", as_json)


app.command("stats")(db_stats.stats)


app.command("create-login")(login.create_login)
app.command("lint")(__import__("hotelbot_cli.cli.db_lint", fromlist=["lint"]).lint)


@app.command()
def distribute(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Distribute the schema over a Citus cluster (run on the coordinator, at head).

    `hotels` becomes a reference table, the tenant tables are distributed by hotel_id and
    colocated, their rows moved into the shards; one transaction under the migration lock.
    Safe to re-run. Exit 1 when this is not a Citus coordinator with an active worker.
    """
    from hotelbot_cli.citus.distribute import distribute as run_distribute

    report = run_distribute(engine(), dry_run=dry_run, lock_wait=lock_timeout())
    plan = report.plan
    if as_json:
        out.emit_json(
            {
                "database": plan.database,
                "citus_version": plan.citus_version,
                "workers": list(plan.workers),
                "dry_run": report.dry_run,
                "steps": [
                    {"action": s.action, "target": s.target, "sql": s.sql} for s in plan.steps
                ],
                "applied": report.applied,
                "tables": [
                    {"table": t.table, "type": t.kind, "shards": t.shards} for t in report.tables
                ],
                "operator": list(plan.operator),
                "seconds": round(report.seconds, 3),
            },
            "db distribute",
        )
        return
    for line in render_plan(plan, report.dry_run):
        out.line(line)
    if not report.dry_run:
        for t in report.tables:
            out.line(f"  {t.table}: {t.kind}, {t.shards} shard(s)")
    for note in plan.operator:
        out.info(f"operator: {note}")


def render_plan(plan: DistributePlan, dry_run: bool) -> list[str]:
    """The plan as text lines (a dry run says what would run)."""
    verb = "would run" if dry_run else "ran"
    lines = [
        f"{plan.database} on Citus {plan.citus_version}, workers {', '.join(plan.workers)}:"
        f" {verb} {len(plan.steps)} step(s)"
    ]
    lines += [f"  {s.action:<17} {s.sql}" for s in plan.steps]
    if not plan.distributes and not dry_run:
        lines.append("The tables were already distributed; the workers' key was refreshed.")
    return lines
