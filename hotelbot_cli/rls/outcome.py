"""What one probe statement did, and how a check reads it: refused, or rows touched.

An error is a refusal unless it is an integrity error (class 23): those come after rows
were reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Outcome:
    """What one probe statement did: refused with ``error``, or touched ``rowcount`` rows
    with ``row`` first. ``after`` is what the checker read afterwards; ``checked`` is False
    when that read itself failed (``error`` is then the checker's)."""

    error: psycopg.Error | None = None
    rowcount: int = 0
    row: tuple[Any, ...] | None = None
    after: Any = None
    checked: bool = True

    @property
    def value(self) -> Any:
        """The first column of the first row (a count, say); None without a row."""
        return None if self.row is None else self.row[0]

    @property
    def count(self) -> int:
        """A ``SELECT count(*)`` probe's count; 0 when the statement was refused."""
        return 0 if self.error is not None else int(self.value or 0)


def refused(outcome: Outcome, *sqlstates: str) -> bool:
    """A write was refused: no row touched, or any error but an integrity one (class 23), which
    comes after rows were reached (unless listed in ``sqlstates``)."""
    if outcome.error is not None:
        state = outcome.error.sqlstate or ""
        return not state.startswith("23") or state in sqlstates
    return outcome.rowcount == 0


def describe_outcome(outcome: Outcome) -> str:
    """How an outcome reads in a check's detail: refused or an error (with its first line), or
    the rows it touched."""
    error = outcome.error
    if error is not None:
        word = "refused" if error.sqlstate == "42501" else "error"
        return f"{word} ({error.sqlstate}: {first_line(error)})"
    return f"{outcome.rowcount} row(s)"
