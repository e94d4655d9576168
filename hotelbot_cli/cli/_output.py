"""The only module that prints: rich tables and JSON on stdout, diagnostics on stderr.

rich is imported on the first print, not at import: ``hotelbot --help`` never needs it.
Tables never cut a cell: each column is at least as wide as its longest value, and a
table wider than the terminal is split into several that repeat the first (key) column.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


@cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def __getattr__(name: str) -> Any:
    """``console`` (stdout) and ``err_console`` (stderr), made on first use."""
    if name == "console":
        return _console(False)
    if name == "err_console":
        return _console(True)
    raise AttributeError(name)


def error(message: str, hint: str | None = None) -> None:
    """One readable line on stderr: ``error: message (hint)``."""
    from hotelbot_cli.settings import redact_text

    # the last line of defence: no password, ever (hints are our own words, such as the
    # placeholder postgresql://user:password@host, and stay as written)
    text = f"error: {redact_text(message)}" + (f" ({hint})" if hint else "")
    _write(sys.stderr, text)


def traceback_text() -> None:
    """The current exception's traceback on stderr (``--debug``), passwords hidden."""
    import traceback

    from hotelbot_cli.settings import redact_text

    sys.stderr.write(redact_text(traceback.format_exc()))


def info(message: str) -> None:
    """A diagnostic line on stderr (keeps stdout clean for data)."""
    _write(sys.stderr, message)


def line(message: str) -> None:
    """A data line on stdout."""
    _write(sys.stdout, message)


def _write(stream: Any, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(part) for part in text.splitlines() or [""]), default=0)


#: A value up to this long is never wrapped; longer free text may wrap between words.
_KEEP_WHOLE = 24


def _min_width(header: str, cells: Sequence[str]) -> int:
    """Wide enough for every short value, every word, and the longest word of the header."""
    words = [w for text in (header, *cells) for w in text.split()] or [""]
    whole = [_cell_len(c) for c in cells if _cell_len(c) <= _KEEP_WHOLE]
    return max([_cell_len(w) for w in words] + whole)


def _groups(mins: Sequence[int], width: int, gap: int) -> list[list[int]]:
    """Split column indexes into parts that fit ``width``, each led by column 0."""
    if not mins:
        return []
    groups: list[list[int]] = [[0]]
    used = mins[0]
    for index in range(1, len(mins)):
        if used + gap + mins[index] > width and len(groups[-1]) > 1:
            groups.append([0])  # a new part, led by the key column again
            used = mins[0]
        groups[-1].append(index)
        used += gap + mins[index]
    return groups


def fitted_tables(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    justify: dict[str, str] | None = None,
    width: int | None = None,
) -> list[Table]:
    """``rows`` as one rich table, or several when it is wider than ``width`` (the terminal).

    No name, id or number is ever truncated or folded: a table that does not fit is split
    by columns, each part repeating the first column so that every row stays identifiable
    (a single row is shown as field/value pairs instead); only long free text wraps, at
    spaces.
    """
    justify = justify or {}
    width = width or _console(False).width
    text_rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    columns = list(columns)
    gap = 2  # the box's blank divider and one space of padding
    mins = [_min_width(name, [r[i] for r in text_rows]) for i, name in enumerate(columns)]
    if len(text_rows) == 1 and sum(mins) + gap * (len(mins) - 1) > width and len(columns) > 2:
        return fitted_tables(
            title, ["field", "value"], list(zip(columns, text_rows[0], strict=True)), width=width
        )
    tables = []
    for part, indexes in enumerate(_groups(mins, width, gap)):
        widths = {i: mins[i] for i in indexes}
        spare = width - sum(widths.values()) - gap * (len(indexes) - 1)
        for i in indexes:  # give wrapped free text the room that is left, up to its length
            longest = max([_cell_len(r[i]) for r in text_rows] + [_cell_len(columns[i])])
            extra = min(max(spare, 0), longest - widths[i])
            widths[i] += extra
            spare -= extra
        tables.append(
            _table(
                title if part == 0 else (f"{title} (continued)" if title else None),
                [(columns[i], widths[i], justify.get(columns[i], "left")) for i in indexes],
                [[row[i] for i in indexes] for row in text_rows],
            )
        )
    return tables


def _table(title: str | None, columns: list[tuple[str, int, str]], rows: list[list[str]]) -> Table:
    from rich import box
    from rich.table import Table

    out = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        padding=(0, 0, 0, 1),
    )
    for name, width, side in columns:
        # A fixed width: rich's own collapsing would shrink the widest column (often the
        # key) below its values and crop them.
        out.add_column(name, justify=side, width=width, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        out.add_row(*row)
    return out


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    justify: dict[str, str] | None = None,
) -> None:
    """Render rows as rich table(s) on stdout, fitted to the terminal width."""
    console = _console(False)
    for part in fitted_tables(title, columns, rows, justify=justify, width=console.width):
        console.print(part)


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


def emit_json(value: Any, command: str | None = None, version: int = 1) -> None:
    """Write one JSON document on stdout, indented, under the one envelope.

    ``command``: wrap ``value`` (a mapping) as that command's document, shape ``version``;
    without it ``value`` is a library's own document and must carry the envelope already
    (see :mod:`hotelbot_cli.envelope`), so no ``--json`` can leave without it.
    """
    from hotelbot_cli import envelope

    doc = to_jsonable(value)
    if command is not None:
        doc = envelope.wrap(command, doc, version)
    if not envelope.is_enveloped(doc):
        raise TypeError("a --json document without the schema_version/tool envelope")
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
