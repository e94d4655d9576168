"""``hotelbot rls-check``: prove tenant isolation (audit, live probes, lints) or self-test it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import JsonOption, engine

_STYLE = {"pass": "PASS", "fail": "FAIL", "ignored": "ignored", "skip": "skip"}


def rls_check(  # noqa: PLR0917 - one parameter per CLI option
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="Accept a known finding: ID, ID:table, optionally =reason (repeatable). "
            "Also read from [tool.hotelbot.rls-check] ignore in ./pyproject.toml.",
        ),
    ] = None,
    app_role: Annotated[
        str, typer.Option("--app-role", help="The application's restricted role.")
    ] = "app_user",
    no_probes: Annotated[
        bool, typer.Option("--no-probes", help="Catalog audit and lints only (writes nothing).")
    ] = False,
    self_test: Annotated[
        bool,
        typer.Option(
            "--self-test",
            help="Plant leaky tables in a scratch schema (rolled back) and prove they are caught.",
        ),
    ] = False,
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", help="Also write a JUnit XML report to PATH.")
    ] = None,
    failures_only: Annotated[
        bool, typer.Option("--failures-only", help="Show only failed and ignored checks.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Prove that no hotel can read, change or point at another hotel's rows.

    Runs against any database at head, production included: everything it writes
    happens in one transaction that is rolled back. Exit 0 all passed, 1 a check
    failed, 2 usage error, 3 cannot connect.
    """
    from hotelbot_cli import rls
    from hotelbot_cli.rls.report import Ignore, load_ignores

    ignores = [*load_ignores(), *(Ignore.parse(i) for i in ignore or [])]
    if self_test:
        report = rls.self_test(engine(), app_role)
    else:
        report = rls.check(engine(), app_role, ignores, probes=not no_probes)
    if junit_xml is not None:
        junit_xml.write_text(report.to_junit_xml(), encoding="utf-8")
    if as_json:
        out.emit_json(report.to_dict())
    else:
        rows = [
            (
                r.id,
                r.table or "-",
                _STYLE[r.status],
                r.detail
                if r.status == "pass"
                else f"{r.detail}"
                + (f" — fix: {r.fix}" if r.fix and r.status == "fail" else "")
                + (f" — ignored: {r.reason}" if r.reason else ""),
            )
            for r in report.results
            if not failures_only or r.status in {"fail", "ignored"}
        ]
        title = "rls-check --self-test" if self_test else "rls-check"
        out.info(f"{title} on {report.database} (role {app_role}, {report.server_version})")
        out.table(
            None,
            ["check", "table", "status", "detail"],
            rows,
        )
        out.line(
            f"{report.count('pass')} passed, {report.count('fail')} failed,"
            f" {report.count('ignored')} ignored, {report.count('skip')} skipped"
        )
    if not report.ok:
        for r in report.failures():
            out.error(f"{r.id} failed on {r.table or 'the database'}: {r.detail}", r.fix)
        raise typer.Exit(1)
