"""The effective policy of each command: permissive policies OR-ed, restrictive ones AND-ed.

PostgreSQL admits a row when any permissive policy that applies to the command admits it
and every restrictive one does; each side of a command (USING for the rows it sees, WITH
CHECK for the rows it writes) is judged by :func:`hotelbot_cli.rls.policy.judge` and the
judgements are combined here, as PostgreSQL combines the expressions.
"""

from __future__ import annotations

from typing import Literal

from hotelbot_cli.rls.catalog import COMMANDS, Policy, TenantTable
from hotelbot_cli.rls.policy import Context, Judgement, judge

#: The side of a command a policy expression guards: the rows it sees, or the rows it writes.
Side = Literal["using", "check"]

#: The commands a policy applies to, by ``pg_policy.polcmd``.
POLICY_COMMANDS: dict[str, tuple[str, ...]] = {
    "r": ("SELECT",),
    "a": ("INSERT",),
    "w": ("UPDATE",),
    "d": ("DELETE",),
    "*": COMMANDS,
}


def effective_check(policy: Policy) -> str | None:
    """WITH CHECK, or USING where PostgreSQL falls back to it (ALL and UPDATE policies)."""
    if policy.check is None and policy.command in {"*", "w"}:
        return policy.using
    return policy.check


def _combine(rel: TenantTable, command: str, side: Side, ctx: Context) -> Judgement:
    """OR of the permissive policies, AND of the restrictive ones, for one side of a command."""

    def expr(p: Policy) -> str | None:
        return p.using if side == "using" else effective_check(p)

    applying = [p for p in rel.policies if p.applies and command in POLICY_COMMANDS[p.command]]
    permissive = [judge(expr(p), rel.column, ctx) for p in applying if p.permissive and expr(p)]
    restrictive = [judge(expr(p), rel.column, ctx) for p in applying if not p.permissive]
    if not [p for p in applying if p.permissive]:
        return Judgement("bound", "statement", "no permissive policy: nothing is admitted")
    if side == "check" and not permissive:
        return Judgement("unbound", why="a permissive policy has no WITH CHECK")
    narrowed = next((r for r in restrictive if r.verdict == "bound"), None)
    if permissive and all(p.verdict == "bound" for p in permissive):
        return max(permissive, key=lambda p: p.cost == "row")
    if narrowed is not None:
        return narrowed
    if not permissive:
        return Judgement("bound", "statement", "no permissive policy admits a row")
    why = next((p.why for p in permissive if p.verdict != "bound"), "")
    if any(p.verdict == "unbound" for p in permissive) and not any(
        r.verdict == "unsure" for r in restrictive
    ):
        return Judgement("unbound", why=why)
    return Judgement("unsure", why=why)


#: The sides each command has (UPDATE, the default, has both).
_SIDES: dict[str, tuple[Side, ...]] = {
    "SELECT": ("using",),
    "DELETE": ("using",),
    "INSERT": ("check",),
}


def command_judgements(rel: TenantTable, ctx: Context) -> dict[str, Judgement]:
    """The effective judgement of every command ``rel``'s subject may run (both sides)."""
    out: dict[str, Judgement] = {}
    for command in COMMANDS:
        if command not in rel.privileges:
            continue
        sides = _SIDES.get(command, ("using", "check"))
        parts = [_combine(rel, command, s, ctx) for s in sides]
        out[command] = next(
            (p for p in parts if p.verdict == "unbound"),
            next((p for p in parts if p.verdict == "unsure"), max(parts, key=_row_first)),
        )
    return out


def _row_first(j: Judgement) -> bool:
    return j.cost == "row"
