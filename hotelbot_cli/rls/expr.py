"""Does a deparsed policy expression bind a table to the current hotel?

Only recognised forms count: ``<tenant column> = <tenant setting>`` as a top-level
conjunct (extra ANDed conditions only narrow it; any top-level OR may widen it), where
the setting is ``current_setting('app.current_hotel_id'[, true])`` cast to uuid,
optionally through ``NULLIF(…, '')``, optionally wrapped in ``(SELECT …)``. Anything
else (COALESCE, a function, a column on the right) is treated as unbound: fail closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

Binding = Literal["statement", "row"] | None

_SETTING = r"current_setting\('app\.current_hotel_id'::text(?:, true)?\)"
_VALUE = rf"(?:\(NULLIF\({_SETTING}, ''::text\)\)::uuid|\({_SETTING}\)::uuid)"
_ONCE = re.compile(rf"\( ?SELECT {_VALUE}(?: AS \"?\w+\"?)?\)")
_PER_ROW = re.compile(_VALUE)


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """``(index, character, depth)`` for each character outside '…' quotes.

    ``depth`` is the number of parentheses open after the character: a "(" counts
    itself, a ")" no longer counts.
    """
    depth, quoted = 0, False
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted:
            depth += (ch == "(") - (ch == ")")
            yield i, ch, depth


def _closing(text: str, start: int) -> int:
    """Index of the ")" that closes the "(" at ``start``, or -1."""
    return next((i for i, ch, depth in _unquoted(text, start) if ch == ")" and depth == 0), -1)


def split_top(text: str, word: str) -> list[str]:
    """Split ``text`` on `` AND ``/`` OR `` outside parentheses and quotes."""
    token = f" {word} "
    parts, last = [], 0
    for i, _ch, depth in _unquoted(text):
        if depth == 0 and i >= last and text.startswith(token, i):
            parts.append(text[last:i])
            last = i + len(token)
    parts.append(text[last:])
    return [p.strip() for p in parts]


def binding(expression: str | None, column: str) -> Binding:
    """``statement`` (bound, evaluated once), ``row`` (bound, per row) or None (unbound)."""
    if not expression:
        return None
    text = _strip_parens(" ".join(expression.split()))
    if len(split_top(text, "OR")) > 1:
        return None
    best: Binding = None
    for conjunct in split_top(text, "AND"):
        found = _conjunct_binding(_strip_parens(conjunct), column)
        if found == "statement":
            return "statement"
        best = best or found
    return best


def _conjunct_binding(text: str, column: str) -> Binding:
    sides = split_top(text, "=")
    if len(sides) != 2:
        return None
    left, right = (_strip_parens(s) for s in sides)
    if right == column:
        left, right = right, left
    if left != column:
        return None
    if _ONCE.fullmatch(f"({right})") or _ONCE.fullmatch(right):
        return "statement"
    if _PER_ROW.fullmatch(right) or _PER_ROW.fullmatch(f"({right})"):
        return "row"
    return None
