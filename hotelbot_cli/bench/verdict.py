"""Whether a bench run passed: its ``--fail-if`` thresholds and ``--compare`` regressions.

The verdict and the JSON document that carries it live here, not in the CLI: a library
caller gets the same pass/fail and the same document as ``hotelbot bench --json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hotelbot_cli.bench.comparison import Change, compare
from hotelbot_cli.bench.report import BenchReport
from hotelbot_cli.bench.report_json import jsonable, to_dict
from hotelbot_cli.bench.thresholds import Threshold, ThresholdResult, evaluate
from hotelbot_cli.errors import CheckFailed


@dataclass(frozen=True)
class BenchVerdict:
    """One run judged against its thresholds and, optionally, a baseline."""

    report: BenchReport
    changes: tuple[Change, ...] = ()
    thresholds: tuple[ThresholdResult, ...] = ()
    #: With ``--fail-on-regression`` a regression fails the run; else it is only shown.
    fail_on_regression: bool = False

    @property
    def failed_thresholds(self) -> list[ThresholdResult]:
        return [r for r in self.thresholds if r.failed]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def passed(self) -> bool:
        return not self.failed_thresholds and not (self.fail_on_regression and self.regressions)

    def failure(self) -> CheckFailed | None:
        """One line naming each failed threshold and each regression that fails the run."""
        if self.passed:
            return None
        parts = []
        failed = self.failed_thresholds
        if failed:
            parts.append(
                f"{len(failed)} threshold(s) failed: "
                + "; ".join(f"{r.text} ({r.subject})" for r in failed)
            )
        if self.fail_on_regression and self.regressions:
            parts.append("regression in " + ", ".join(c.name for c in self.regressions))
        return CheckFailed("; ".join(parts))

    def to_dict(self) -> dict[str, Any]:
        """The report's document plus the comparison and threshold results, when there are any."""
        doc = to_dict(self.report)
        if self.changes:
            doc["comparison"] = jsonable(list(self.changes))
        if self.thresholds:
            doc["thresholds"] = jsonable(list(self.thresholds))
        return doc


def judge(
    report: BenchReport,
    *,
    thresholds: Sequence[Threshold] = (),
    baseline: BenchReport | None = None,
    tolerance: float = 0.25,
    fail_on_regression: bool = False,
) -> BenchVerdict:
    """Compare ``report`` with ``baseline`` and evaluate ``thresholds``."""
    changes = compare(report, baseline, tolerance) if baseline is not None else []
    results = evaluate(report, thresholds) if thresholds else []
    return BenchVerdict(report, tuple(changes), tuple(results), fail_on_regression)
