"""Does a deparsed policy expression bind a table to the current hotel?

Only recognised forms count: ``<tenant column> = <tenant setting>`` as a top-level
conjunct (extra ANDed conditions only narrow it; any top-level OR may widen it), where
the setting is ``current_setting('app.current_hotel_id'[, true])`` cast to uuid,
optionally through ``NULLIF(…, '')``, optionally wrapped in ``(SELECT …)``. Anything
else (COALESCE, a function, a column on the right) is treated as unbound: fail closed.
"""

from __future__ import annotations

import re
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


def _closing(text: str, start: int) -> int:
    depth, quoted = 0, False
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def split_top(text: str, word: str) -> list[str]:
    """Split ``text`` on `` AND ``/`` OR `` outside parentheses and quotes."""
    parts, depth, quoted, last = [], 0, False, 0
    token = f" {word} "
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(token, i):
            parts.append(text[last:i])
            i += len(token)
            last = i
            continue
        i += 1
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
