"""The tenant policies in the form Citus accepts: bare calls instead of sub-selects.

Citus refuses sub-selects in the policies of distributed tables, and a query on a shard may
not read a table; the rewrite keeps each STABLE call (on a shard an index qual of every
tenant query, evaluated once per scan). Plain text in, plain text out: no database.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hotelbot_cli.db.tenant_cache import VERIFIED_TENANTS


def _closing(expression: str, start: int) -> int:
    """The index of the parenthesis that closes the one at ``start`` (or the end)."""
    depth = 0
    for j in range(start, len(expression)):
        if expression[j] == "(":
            depth += 1
        elif expression[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return len(expression)


def _rewrite_groups(expression: str, opener: str, rewrite: Callable[[str], str]) -> str:
    """Each parenthesised group that starts with ``opener`` (its parenthesis at the
    first character) replaced by ``rewrite(group)``; the rest left as it is."""
    out: list[str] = []
    i = 0
    while True:
        start = expression.find(opener, i)
        if start < 0:
            out.append(expression[i:])
            return "".join(out)
        paren = start + opener.index("(")
        end = _closing(expression, paren)
        out.append(expression[i:start] + rewrite(expression[start : end + 1]))
        i = end + 1


def _keep_the_verifier(group: str) -> str:
    first = len("COALESCE(")
    first_end = _closing(group, first)
    rest = group[first_end + 1 : -1].lstrip(", ").strip()
    return rest if VERIFIED_TENANTS in group[first:first_end] and rest else group


def without_cache_lookup(expression: str) -> str:
    """``COALESCE((<a look-up in the cache>), f())`` → ``f()``.

    Revision 013's policies try the cache of verified signatures before the verifier. A
    shard may not read a table in a policy, and the verifier alone gives the same answer
    (the cache only remembers what it said), so on Citus the call is what remains.
    """
    return _rewrite_groups(expression, "COALESCE((", _keep_the_verifier)


def _unwrap(group: str) -> str:
    inner = re.sub(r'\s+AS\s+(?:"[^"]*"|\w+)\s*$', "", group[len("( SELECT ") : -1])
    if re.search(r"\bFROM\b", inner, re.IGNORECASE):
        return group  # reads a table: not ours to rewrite
    return "(" + inner + ")"


def function_form(expression: str) -> str:
    """``(SELECT f(x) AS alias)`` → ``f(x)``, for every sub-select of a policy expression.

    The policies of 007/009 wrap STABLE calls in ``(SELECT …)`` (an InitPlan: once per
    statement on one node); Citus refuses sub-selects in policies of distributed tables.
    Only that wrapper is unwrapped, after :func:`without_cache_lookup`: a sub-select that
    reads a table is left for Citus to refuse.
    """
    return _rewrite_groups(without_cache_lookup(expression), "( SELECT ", _unwrap)
