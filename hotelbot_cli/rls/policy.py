"""Policy expressions judged on PostgreSQL's own parse tree (pglast is libpg_query).

A policy expression is *bound* when every row it admits has the tenant column equal to
the current tenant: a top-level conjunct ``<column> = <current tenant>`` (other ANDed
conditions only narrow it), or an OR whose every branch is bound. The current tenant is
``current_setting('<tenant setting>'[, missing_ok])``, optionally through casts,
``NULLIF(…, <constant>)``, ``COALESCE`` of such values and a scalar sub-select without
FROM (its WHERE only chooses between the value and NULL), or a call of a *tenant function*: a
function (found in the catalog) that takes no argument and reads the tenant setting.
A comparison with anything that mentions a column (``COALESCE(…, hotel_id)``), a
constant or a negation is *unbound*. Shapes this module cannot decide (``IN (SELECT …)``,
EXISTS, an unknown function) are *unsure*: the live probes decide, and the report says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, BoolExprType, SubLinkType
from pglast.parser import ParseError

Verdict = Literal["bound", "unbound", "unsure"]
Cost = Literal["statement", "row", "function"]


@dataclass(frozen=True)
class Judgement:
    """Whether an expression binds the tenant; ``cost`` says how often the tenant is read."""

    verdict: Verdict
    cost: Cost | None = None  # for bound: once per statement, per row, or via a function
    why: str = ""


UNBOUND_EMPTY = Judgement("unbound", why="no expression")


@dataclass(frozen=True)
class Context:
    """What "the current tenant" is in this database."""

    setting: str
    tenant_functions: frozenset[str]  # lower-case function names that read the setting


def parse(expression: str) -> Any:
    """The parse tree of one SQL expression (raises pglast's ParseError)."""
    stmt: Any = parse_sql(f"SELECT ({expression})")[0].stmt
    return stmt.targetList[0].val


@functools.lru_cache(maxsize=512)
def judge(expression: str | None, column: str | None, ctx: Context) -> Judgement:
    """Bound, unbound or unsure; ``column`` None accepts any column compared with the tenant."""
    if not expression:
        return UNBOUND_EMPTY
    try:
        node = parse(expression)
    except ParseError as exc:
        return Judgement("unsure", why=f"cannot parse: {exc}")
    return _judge(node, column, ctx)


def _judge(node: Any, column: str | None, ctx: Context) -> Judgement:
    if isinstance(node, ast.BoolExpr):
        parts = [_judge(a, column, ctx) for a in node.args or ()]
        if node.boolop == BoolExprType.AND_EXPR:
            bound = [p for p in parts if p.verdict == "bound"]
            if bound:
                return min(bound, key=lambda p: _RANK[p.cost])
            if any(p.verdict == "unsure" for p in parts):
                return Judgement("unsure", why="no conjunct binds the tenant for certain")
            return Judgement("unbound", why="no conjunct compares the tenant column")
        if node.boolop == BoolExprType.OR_EXPR:
            if all(p.verdict == "bound" for p in parts):
                return max(parts, key=lambda p: _RANK[p.cost])
            if any(p.verdict == "unbound" for p in parts):
                return Judgement("unbound", why="an OR branch admits rows of any tenant")
            return Judgement("unsure", why="an OR branch may admit other tenants")
        return Judgement("unbound", why="a negation cannot bind the tenant")
    if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP:
        if _opname(node) == "=":
            return _comparison(node.lexpr, node.rexpr, column, ctx)
        return Judgement("unbound", why=f"operator {_opname(node)} does not bind the tenant")
    if isinstance(node, ast.SubLink | ast.FuncCall):
        return Judgement("unsure", why="a sub-query or function decides: the probes judge it")
    if isinstance(node, ast.A_Const | ast.ColumnRef | ast.TypeCast):
        return Judgement("unbound", why="a constant or a column alone admits every tenant")
    return Judgement("unsure", why=f"{type(node).__name__} is not judged statically")


_RANK: dict[Cost | None, int] = {"statement": 0, "function": 1, "row": 2, None: 3}


def _opname(node: Any) -> str:
    return ".".join(s.sval for s in node.name)


def _strip_casts(node: Any) -> Any:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _column_name(node: Any) -> str | None:
    node = _strip_casts(node)
    fields: Any = getattr(node, "fields", None)
    if isinstance(node, ast.ColumnRef) and fields and isinstance(fields[-1], ast.String):
        return str(fields[-1].sval)
    return None


def _comparison(left: Any, right: Any, column: str | None, ctx: Context) -> Judgement:
    for col_side, value_side in ((left, right), (right, left)):
        name = _column_name(col_side)
        if name is None or (column is not None and name != column):
            continue
        cost = tenant_value(value_side, ctx)
        if cost is not None:
            return Judgement("bound", cost)
        if _mentions(value_side, lambda n: isinstance(n, ast.ColumnRef)):
            return Judgement("unbound", why=f"{name} is compared with another column")
        if _mentions(value_side, lambda n: isinstance(n, ast.FuncCall | ast.SubLink)):
            return Judgement("unsure", why=f"{name} is compared with a value the probes judge")
        return Judgement("unbound", why=f"{name} is compared with a constant")
    return Judgement("unbound", why="the comparison does not involve the tenant column")


def tenant_value(node: Any, ctx: Context, in_select: bool = False) -> Cost | None:
    """How the current tenant is read by ``node``, or None if it is not the current tenant."""
    node = _strip_casts(node)
    if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_NULLIF:
        if isinstance(_strip_casts(node.rexpr), ast.A_Const):
            return tenant_value(node.lexpr, ctx, in_select)
        return None
    if isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.EXPR_SUBLINK:
        sel = node.subselect
        if (  # a WHERE without FROM only chooses between the value and NULL (no rows)
            isinstance(sel, ast.SelectStmt)
            and not sel.fromClause
            and sel.targetList
            and len(sel.targetList) == 1
        ):
            return tenant_value(sel.targetList[0].val, ctx, True)
        return None
    if isinstance(node, ast.CoalesceExpr):  # the first non-NULL of tenant values is one
        costs = [tenant_value(arg, ctx, in_select) for arg in node.args or ()]
        if costs and all(cost is not None for cost in costs):
            return max(costs, key=lambda cost: _RANK[cost])
        return None
    if isinstance(node, ast.FuncCall):
        funcname: Any = node.funcname
        name = str(funcname[-1].sval).lower()
        args = list(node.args or ())
        if name == "current_setting" and 1 <= len(args) <= 2:
            first = _strip_casts(args[0])
            if isinstance(first, ast.A_Const) and getattr(first.val, "sval", None) == ctx.setting:
                return "statement" if in_select else "row"
        if name in ctx.tenant_functions and not args:
            return "statement" if in_select else "function"
    return None


def _mentions(node: Any, test: Callable[[Any], bool]) -> bool:
    found = False

    def visit(value: Any) -> None:
        nonlocal found
        if found:
            return
        if isinstance(value, ast.Node):
            if test(value):
                found = True
                return
            for attr in value:
                visit(getattr(value, attr))
        elif isinstance(value, tuple | list):
            for item in value:
                visit(item)

    visit(node)
    return found
