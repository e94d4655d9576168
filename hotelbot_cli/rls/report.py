"""What ``rls-check`` found: one result per (check, table), ignores, JSON and JUnit renderings.

The JSON shape carries hotelbot's one envelope (``schema_version``, ``tool``; see
:mod:`hotelbot_cli.envelope`) and is described by ``schema.json`` next to this module; a
change that breaks a reader bumps the version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET

from hotelbot_cli import envelope
from hotelbot_cli.errors import CheckFailed, UsageError

SCHEMA_VERSION = 2
Status = Literal["pass", "fail", "warn", "ignored", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "warn", "ignored", "skip")
SCHEMA_PATH = Path(__file__).with_name("schema.json")


@dataclass(frozen=True)
class CheckResult:
    """One check on one object: ``id`` is stable, ``table`` is None for database-wide checks."""

    id: str
    category: str  # audit | probe | lint | self-test
    table: str | None
    status: Status
    detail: str
    fix: str | None = None
    reason: str | None = None  # why a failure was ignored
    seconds: float = 0.0  # time spent on this check (its phase's time shared by its results)

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def audit_result(  # noqa: PLR0917 - the shape every check shares
    check_id: str, table: str | None, ok: bool, detail: str, fix: str, warn: bool = False
) -> CheckResult:
    """An audit check's pass, or its failure (a warning with ``warn``) naming the fix."""
    status: Status = "pass" if ok else ("warn" if warn else "fail")
    return CheckResult(check_id, "audit", table, status, detail, None if ok else fix)


def probe_result(check_id: str, display: str, ok: bool, detail: str, fix: str) -> CheckResult:
    """A probe's pass, or its failure with the fix."""
    return CheckResult(
        check_id, "probe", display, "pass" if ok else "fail", detail, None if ok else fix
    )


@dataclass(frozen=True)
class Ignore:
    """Accept a known finding: ``id`` (and optionally one ``table``) with a reason."""

    id: str
    table: str | None = None
    reason: str = "ignored on the command line"

    def matches(self, result: CheckResult) -> bool:
        return result.id == self.id and (self.table is None or self.table == result.table)

    @classmethod
    def parse(cls, text: str) -> Ignore:
        """``ID``, ``ID:table`` or either followed by ``=reason``."""
        spec, _, reason = text.partition("=")
        check_id, _, table = spec.strip().partition(":")
        if not check_id:
            raise UsageError(f"--ignore {text!r} names no check", "use ID, ID:table or ID=reason")
        _known_check(check_id, f"--ignore {text!r}")
        return cls(check_id, table or None, reason.strip() or "ignored on the command line")


def _known_check(check_id: str, where: str) -> None:
    """An ignore must name a check that exists: a misspelt id would ignore nothing, and a
    failure the user meant to accept would still fail with no word on why."""
    import difflib

    from hotelbot_cli.rls.registry import BY_ID

    if check_id not in BY_ID:
        close = difflib.get_close_matches(check_id, list(BY_ID), n=1)
        raise UsageError(
            f"{where} names no check {check_id!r}",
            f"did you mean {close[0]}?" if close else "the README's Check ids list them all",
        )


@dataclass(frozen=True)
class RlsReport:
    """Every result of one run, plus what it ran against (the URL without its password)."""

    database: str
    app_role: str
    server_version: str
    results: tuple[CheckResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    def failure(self) -> CheckFailed | None:
        """The verdict: one line naming the failed check(s); one failure carries its fix."""
        failed = self.failures()
        if not failed:
            return None
        if len(failed) == 1:
            (r,) = failed
            return CheckFailed(f"{r.id} failed on {r.table or 'the database'}: {r.detail}", r.fix)
        named = ", ".join(f"{r.id} on {r.table or 'the database'}" for r in failed)
        return CheckFailed(f"{len(failed)} checks failed: {named}", "each fix is listed above")

    def to_dict(self) -> dict[str, Any]:
        return envelope.wrap("rls-check", self._payload(), SCHEMA_VERSION)

    def _payload(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "app_role": self.app_role,
            "server_version": self.server_version,
            "ok": self.ok,
            "summary": {s: self.count(s) for s in STATUSES},
            "checks": [
                {
                    "id": r.id,
                    "category": r.category,
                    "table": r.table,
                    "status": r.status,
                    "detail": r.detail,
                    "fix": r.fix,
                    "reason": r.reason,
                    "seconds": round(r.seconds, 6),
                }
                for r in self.results
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_junit_xml(self) -> str:
        """One testcase per result, classname = category, unique names, times; failures carry
        the fix, warnings are reported as passing cases with their detail in system-out."""
        suite = ET.Element(
            "testsuite",
            name="hotelbot.rls-check",
            tests=str(len(self.results)),
            failures=str(self.count("fail")),
            skipped=str(self.count("skip") + self.count("ignored")),
            errors="0",
            time=f"{sum(r.seconds for r in self.results):.3f}",
        )
        seen: dict[str, int] = {}
        for r in self.results:
            name = f"{r.id}[{r.table}]" if r.table else r.id
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}#{seen[name]}"
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"rls-check.{r.category}",
                name=name,
                time=f"{r.seconds:.3f}",
            )
            if r.status == "fail":
                failure = ET.SubElement(case, "failure", message=r.detail)
                failure.text = f"{r.detail}\nfix: {r.fix or '-'}"
            elif r.status in {"skip", "ignored"}:
                ET.SubElement(case, "skipped", message=r.reason or r.detail)
            elif r.status == "warn":
                ET.SubElement(case, "system-out").text = f"warning: {r.detail}"
        root = ET.Element("testsuites")
        root.append(suite)
        return ET.tostring(root, encoding="unicode", xml_declaration=True)


def apply_ignores(results: list[CheckResult], ignores: list[Ignore]) -> list[CheckResult]:
    """Failures matched by an ignore become ``ignored`` (with the reason); others unchanged."""
    out = []
    for result in results:
        match = next((i for i in ignores if i.matches(result)), None) if result.failed else None
        out.append(replace(result, status="ignored", reason=match.reason) if match else result)
    return out


def load_ignores(pyproject: Path | None = None) -> list[Ignore]:
    """``[tool.hotelbot.rls-check] ignore = [{id = "...", table = "...", reason = "..."}]``."""
    from hotelbot_cli.rls.config import section

    path, found = section(pyproject)
    ignores = []
    for item in found.get("ignore", []):
        if not isinstance(item, dict) or not item.get("id") or not item.get("reason"):
            raise UsageError(
                f"{path}: every [tool.hotelbot.rls-check] ignore needs an id and a reason",
                'e.g. ignore = [{id = "tenant-index", table = "audit_log", reason = "tiny"}]',
            )
        _known_check(str(item["id"]), f"{path}: [tool.hotelbot.rls-check] ignore")
        ignores.append(Ignore(str(item["id"]), item.get("table"), str(item["reason"])))
    return ignores
