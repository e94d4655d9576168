"""The only module that prints: rich tables and JSON on stdout, diagnostics on stderr."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def error(message: str, hint: str | None = None) -> None:
    """One readable line on stderr: ``error: message (hint)``."""
    text = f"error: {message}" + (f" ({hint})" if hint else "")
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    """A diagnostic line on stderr (keeps stdout clean for data)."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def line(message: str) -> None:
    """A data line on stdout."""
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    justify: dict[str, str] | None = None,
) -> None:
    """Render rows as a rich table on stdout."""
    justify = justify or {}
    out = Table(title=title, title_justify="left")
    for name in columns:
        out.add_column(name, justify=justify.get(name, "left"))  # type: ignore[arg-type]
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(out)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples, UUIDs, datetimes and decimals as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def emit_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout (no rich markup, no wrapping)."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
