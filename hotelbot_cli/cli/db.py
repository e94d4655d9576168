"""``hotelbot db …``: migrations (a facade over Alembic's commands)."""

from __future__ import annotations

from typing import Annotated

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli import db_stats, login
from hotelbot_cli.cli._common import JsonOption, engine, lock_timeout

app = typer.Typer(
    help="Migrations: upgrade, downgrade, current, history, check…", no_args_is_help=True
)

RevisionArg = Annotated[str, typer.Argument(help="Target revision: an id, head, base, +1, -1.")]


def _report(result: object, verb: str) -> None:
    from hotelbot_cli.migrations import MigrationResult

    assert isinstance(result, MigrationResult)
    for step in result.steps:
        out.info(step)
    after = ", ".join(result.after) or "base (empty)"
    if result.before == result.after:
        out.line(f"Already at {after}; nothing to {verb}.")
    else:
        out.line(f"Database is now at {after}.")


@app.command()
def upgrade(revision: RevisionArg = "head") -> None:
    """Upgrade the database to REVISION (default: head), under an advisory lock."""
    from hotelbot_cli import migrations

    _report(migrations.upgrade(engine(), revision, lock_timeout()), "upgrade")


@app.command()
def downgrade(revision: RevisionArg) -> None:
    """Downgrade the database to REVISION (`base` removes every object of ours)."""
    from hotelbot_cli import migrations

    _report(migrations.downgrade(engine(), revision, lock_timeout()), "downgrade")


@app.command()
def current(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the database is not at head (for CI).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the revision the database is at (read-only: writes nothing)."""
    from hotelbot_cli import migrations

    revs = migrations.current(engine())
    head = migrations.heads()
    at_head = set(revs) == set(head)
    if as_json:
        out.emit_json({"current": list(revs), "heads": list(head), "at_head": at_head})
    else:
        label = ", ".join(revs) or "base (empty)"
        out.line(f"{label}{' (head)' if at_head else ''}")
    if check and not at_head:
        out.error(
            f"the database is at {', '.join(revs) or 'base'}, not at head {', '.join(head)}",
            "run `hotelbot db upgrade`",
        )
        raise typer.Exit(1)


@app.command()
def history(as_json: JsonOption = False) -> None:
    """List every revision, newest first."""
    from hotelbot_cli import migrations

    revisions = migrations.history()
    if as_json:
        out.emit_json(revisions)
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
def heads() -> None:
    """Show the head revision(s) of the migration scripts."""
    from hotelbot_cli import migrations

    for head in migrations.heads():
        out.line(head)


@app.command()
def check(as_json: JsonOption = False) -> None:
    """Exit 1 when the models and the migrations differ, or when there is more than one head."""
    from hotelbot_cli import migrations

    report = migrations.check(engine(), lock_timeout())
    if as_json:
        out.emit_json({"ok": report.ok, "heads": report.heads, "differences": report.differences})
    elif report.ok:
        out.line(f"OK: models match the migrations (head {report.heads[0]}).")
    if report.ok:
        return
    if len(report.heads) != 1:
        out.error(f"{len(report.heads)} heads: {', '.join(report.heads)}", "merge them into one")
    for diff in report.differences:
        out.error(f"models and migrations differ: {diff}")
    if report.differences:
        out.info("Run `hotelbot db revision --autogenerate -m '…'` and review the new file.")
    raise typer.Exit(1)


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
) -> None:
    """Create a new revision file in the migration scripts."""
    from hotelbot_cli import migrations

    path = migrations.revision(engine() if autogenerate else None, message, autogenerate)
    out.line(f"Created {path}")


@app.command()
def stamp(revision: RevisionArg) -> None:
    """Record REVISION as current without running migrations."""
    from hotelbot_cli import migrations

    _report(migrations.stamp(engine(), revision, lock_timeout()), "stamp")


app.command("stats")(db_stats.stats)


app.command("create-login")(login.create_login)
app.command("lint")(__import__("hotelbot_cli.cli.db_lint", fromlist=["lint"]).lint)
