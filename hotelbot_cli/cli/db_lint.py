"""``hotelbot db lint [REV…]``: lock safety and reversibility of migration revisions."""

from __future__ import annotations

from typing import Annotated

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import JsonOption
from hotelbot_cli.errors import raise_if_failed


def lint(
    revisions: Annotated[
        list[str] | None, typer.Argument(help="Revision ids to lint (default: every revision).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="A database whose table sizes the findings should name."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Lint revisions' SQL with squawk and hotelbot's own checks; exit 1 on findings."""
    from hotelbot_cli.migration_lint import lint as run_lint

    engine = None
    if url is not None:
        from sqlalchemy.pool import NullPool

        from hotelbot_cli.db.engine import make_engine

        engine = make_engine(url, poolclass=NullPool)
    try:
        report = run_lint(revisions or (), engine)
    finally:
        if engine is not None:
            engine.dispose()
    if as_json:
        out.emit_json(
            {
                "ok": report.ok,
                "revisions": report.revisions,
                "findings": report.findings,
                "ignored": report.ignored,
            },
            "db lint",
        )
    else:
        for f in report.findings:
            where = f" line {f.line}" if f.line else ""
            out.line(f"{f.revision} {f.rule} ({f.source}{where}): {f.message}")
            if f.statement:
                out.line(f"    {f.statement}")
        out.info(
            f"{len(report.findings)} finding(s) in {len(report.revisions)} revision(s);"
            f" {len(report.ignored)} ignored with a reason in pyproject.toml"
        )
    raise_if_failed(report)
