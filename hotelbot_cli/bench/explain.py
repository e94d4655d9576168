"""Index check: EXPLAIN every statement of every operation as the bot runs it.

An operation passes when each index it is meant to use appears in its plans and
no plan scans a large table sequentially. Plans are taken inside a transaction
that is rolled back, under the same role and tenant as the workload.

On Citus the plan is the coordinator's ``Custom Scan (Citus Adaptive)``: the shard's own
plan is read from its ``Remote Plan`` (shard suffixes stripped from index and table
names), and an operation passes only when every statement is one task (single-shard).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from hotelbot_cli.bench.driver import prefix
from hotelbot_cli.bench.workload import APP_ROLE, Context, Operation, Target

if TYPE_CHECKING:
    import psycopg

#: Tables that grow with the number of guests: a sequential scan of these is a bug.
LARGE_TABLES = ("guests", "conversations", "messages")


@dataclass(frozen=True)
class IndexCheck:
    """What the plans of one operation use."""

    operation: str
    intended: tuple[str, ...]
    used: tuple[str, ...]
    seq_scans: tuple[str, ...]
    missing: tuple[str, ...]
    ok: bool
    note: str = ""


_SHARD = re.compile(r"_\d+$")


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan tree, Citus' remote plans included."""
    yield node
    for child in node.get("Plans", ()):
        yield from walk(child)
    for task in node.get("Distributed Query", {}).get("Job", {}).get("Tasks", ()):
        for remote in task.get("Remote Plan", ()):
            for doc in remote if isinstance(remote, list) else [remote]:
                yield from walk(doc.get("Plan", doc))


def citus_tasks(plan: dict[str, Any]) -> int | None:
    """The task count of a Citus plan (1: single-shard), None for a plain PostgreSQL plan."""
    counts = [
        int(node["Distributed Query"]["Job"].get("Task Count", 0))
        for node in walk(plan.get("Plan", plan))
        if "Distributed Query" in node
    ]
    return max(counts) if counts else None


class PlanUsage(NamedTuple):
    """What one plan touches, shard suffixes stripped."""

    used: set[str]  # index names
    seq_scans: set[str]  # relations scanned sequentially


def plan_usage(plan: dict[str, Any]) -> PlanUsage:
    """The indexes used and the relations scanned sequentially in one plan."""
    used: set[str] = set()
    seq: set[str] = set()
    root = plan.get("Plan", plan)
    for node in walk(root):
        if "Index Name" in node:
            used.add(_SHARD.sub("", node["Index Name"]))
        used.update(_SHARD.sub("", name) for name in node.get("Conflict Arbiter Indexes", ()))
        if node.get("Node Type") == "Seq Scan" and "Relation Name" in node:
            seq.add(_SHARD.sub("", node["Relation Name"]))
    return PlanUsage(used, seq)


def judge(op_name: str, intended: Sequence[str], used: set[str], seq: set[str]) -> IndexCheck:
    """Pass when every intended index (any of its ``a|b`` alternatives) is used, no large seq scan.

    A small table (hotels, triggers) read sequentially instead of through its index is
    fine: the planner picks the scan because it is cheaper there.
    """
    missing = tuple(want for want in intended if not set(want.split("|")) & used)
    bad_seq = tuple(sorted(t for t in seq if t in LARGE_TABLES))
    small_seq = sorted(t for t in seq if t not in LARGE_TABLES)
    note = ""
    if bad_seq:
        note = "sequential scan of " + ", ".join(bad_seq)
    elif missing and small_seq:
        note = "small table " + ", ".join(small_seq) + " read by a scan (cheaper than the index)"
    elif missing:
        note = "index not used: " + ", ".join(missing)
    return IndexCheck(
        operation=op_name,
        intended=tuple(intended),
        used=tuple(sorted(used)),
        seq_scans=tuple(sorted(seq)),
        missing=missing,
        ok=not bad_seq and (not missing or bool(small_seq)),
        note=note,
    )


def explain_operation(
    conn: psycopg.Connection[Any],
    op: Operation,
    target: Target,
    ctx: Context,
    *,
    tenant: bool = True,
    role: str | None = APP_ROLE,
    seed: int = 0,
) -> IndexCheck:
    """EXPLAIN the statements of ``op``'s first batch on a psycopg autocommit connection.

    Each statement in a transaction of its own, rolled back (on Citus a shard's EXPLAIN
    of a write may abort the remote transaction for the statements after it).
    """
    plan = op.plan(target, random.Random(seed), ctx, tenant)
    batch = next(plan)
    plan.close()
    used: set[str] = set()
    seq: set[str] = set()
    tasks: list[int] = []
    for stmt in batch.statements:
        try:
            for head in prefix(op, target, tenant, role, ctx):
                conn.execute(head.sql, head.params or None)
            row = conn.execute("EXPLAIN (FORMAT JSON) " + stmt.sql, stmt.params or None).fetchone()
            assert row is not None
            doc = row[0]
            doc = doc[0] if isinstance(doc, list) else doc
            u, s = plan_usage(doc)
            used |= u
            seq |= s
            count = citus_tasks(doc)
            if count is not None:
                tasks.append(count)
        finally:
            conn.execute("ROLLBACK")
    check = judge(op.name, op.indexes, used, seq)
    if not tasks:
        return check
    multi = max(tasks) > 1
    shards = f"{max(tasks)} tasks (not single-shard)" if multi else "single-shard"
    note = f"{shards}; {check.note}" if check.note else shards
    return dataclasses.replace(check, ok=check.ok and not multi, note=note)


def check_indexes(
    conn: psycopg.Connection[Any],
    ops: Sequence[Operation],
    target: Target,
    ctx: Context,
    *,
    tenant: bool = True,
    role: str | None = APP_ROLE,
) -> list[IndexCheck]:
    """The index check of every operation in ``ops``."""
    # An operation run before the tenant is known (the WhatsApp-number lookup) hides its
    # query in a SECURITY DEFINER function: check the query it runs, as the owner.
    return [
        explain_operation(conn, op, target, ctx, tenant=tenant and op.needs_tenant, role=role)
        for op in ops
    ]
