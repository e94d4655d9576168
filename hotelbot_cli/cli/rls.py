"""``hotelbot rls-check``: prove tenant isolation (audit, probes, lints) or self-test it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import JsonOption, engine
from hotelbot_cli.errors import raise_if_failed

_STYLE = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "ignored": "IGNORED", "skip": "SKIP"}


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
        str | None,
        typer.Option(
            "--app-role",
            help="The application's restricted role (default: [tool.hotelbot.rls-check]"
            " app-role, else app_user).",
        ),
    ] = None,
    no_probes: Annotated[
        bool, typer.Option("--no-probes", help="Catalog audit and lints only (writes nothing).")
    ] = False,
    self_test: Annotated[
        bool,
        typer.Option(
            "--self-test",
            help="Plant one leak per class in a scratch schema (rolled back) and prove each is"
            " caught.",
        ),
    ] = False,
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", help="Also write a JUnit XML report to PATH.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every check, passed ones included.")
    ] = False,
    failures_only: Annotated[
        bool, typer.Option("--failures-only", help="Show only failed and ignored checks.")
    ] = False,
    list_checks: Annotated[
        bool, typer.Option("--list-checks", help="List every check id and exit.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Prove that no tenant can read, change or point at another tenant's data.

    Runs against any database at head, production included: everything it writes
    happens in one transaction that is rolled back. Prints failures and warnings in
    full and a one-line summary (-v: every check). Exit 0 no failure, 1 a check
    failed, 2 usage error, 3 cannot connect.
    """
    if list_checks:
        from hotelbot_cli.rls.registry import CHECKS

        if as_json:
            out.emit_json({"checks": list(CHECKS)}, "rls-check --list-checks")
        else:
            for c in CHECKS:
                out.line(f"{c.id} ({c.category}): {c.proves}. Fix: {c.fix}")
        return
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
        _render(
            report, "rls-check --self-test" if self_test else "rls-check", verbose, failures_only
        )
    failed = report.failures()
    if len(failed) > 1:  # one is named in full by the error line itself
        from hotelbot_cli.settings import redact_text

        for r in failed:  # on stderr, so that --json users see them too (as out.error did)
            out.info(
                redact_text(f"{r.id} failed on {r.table or 'the database'}: {r.detail}")
                + (f" (fix: {r.fix})" if r.fix else "")
            )
    raise_if_failed(report)


def _render(report: Any, title: str, verbose: bool, failures_only: bool) -> None:
    """Failures and warnings in full (every check with -v), then one summary line."""
    out.info(f"{title} on {report.database} (role {report.app_role}, {report.server_version})")
    shown = {"fail", "ignored"} if failures_only else {"fail", "warn", "ignored"}
    for r in report.results:
        if not (verbose or r.status in shown):
            continue
        # One check per block, never cut: the id and object are what --ignore takes.
        out.line(f"{_STYLE[r.status]} {r.id}" + (f" {r.table}" if r.table else ""))
        out.line(f"    {r.detail}")
        if r.fix and r.status in {"fail", "warn"}:
            out.line(f"    fix: {r.fix}")
        if r.reason:
            out.line(f"    ignored: {r.reason}")
    objects = len({r.table for r in report.results if r.table})
    out.line(
        f"{len(report.results)} checks on {objects} objects: {report.count('pass')} passed,"
        f" {report.count('fail')} failed, {report.count('warn')} warnings,"
        f" {report.count('ignored')} ignored, {report.count('skip')} skipped"
        + ("" if verbose else " (-v lists every check)")
    )
