"""The isolation comparison's pairing: same target for both sides, unless the operation's
path depends on what the first run left (find-or-open)."""

from __future__ import annotations

from typing import Any

import pytest

from hotelbot_cli.bench import driver, workload
from hotelbot_cli.bench.isolation import measure_isolation
from hotelbot_cli.bench.options import BenchOptions
from hotelbot_cli.bench.workers import Plan


@pytest.mark.parametrize("name", ["recent_messages", "open_conversation"])
def test_a_state_dependent_operation_gets_a_target_per_side(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    op = workload.OPERATIONS[name]
    runs: list[tuple[bool, Any]] = []

    def record(_conn: Any, _op: Any, target: Any, *_args: Any, tenant: bool, **_kw: Any) -> None:
        runs.append((tenant, target))

    monkeypatch.setattr(driver, "run_operation", record)
    targets = [
        workload.Target(f"h{i}", f"+1555000{i:04d}", f"g{i}", f"+7916{i:07d}", f"c{i}")
        for i in range(500)
    ]
    plan = Plan([op], targets, workload.Context(), None, BenchOptions(warmup=0))
    rows = measure_isolation(object(), plan, 40, None)
    assert rows[0].name == name and len(runs) == 500 + 80
    registering, runs = runs[:500], runs[500:]  # first, one tenant run per hotel
    assert {tenant for tenant, _ in registering} == {True}
    assert sorted(t.hotel_id for _, t in registering) == sorted(t.hotel_id for t in targets)
    pairs = [(runs[i][1], runs[i + 1][1]) for i in range(0, len(runs), 2)]
    assert {runs[i][0] for i in range(0, len(runs), 2)} == {True, False}  # alternating order
    shared = sum(a == b for a, b in pairs)
    if op.state_dependent:
        assert shared <= 2  # independent draws from 500 targets
    else:
        assert shared == len(pairs)


def test_every_hotel_is_registered_first_with_a_read_where_there_is_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tenant's connection registers each hotel's signature before the measured pairs
    (a long-lived pooled connection has), by a read when the plan has one; the lookup,
    which binds no tenant, needs none."""
    seen: list[tuple[str, bool, str]] = []

    def record(_conn: Any, op: Any, target: Any, *_args: Any, tenant: bool, **_kw: Any) -> None:
        seen.append((op.name, tenant, target.hotel_id))

    monkeypatch.setattr(driver, "run_operation", record)
    targets = [
        workload.Target(f"h{i % 3}", "+15550000000", f"g{i}", f"+7916{i:07d}", f"c{i}")
        for i in range(9)
    ]
    ops = [workload.OPERATIONS[n] for n in ("resolve_hotel", "upsert_guest", "due_guests")]
    measure_isolation(
        object(), Plan(ops, targets, workload.Context(), None, BenchOptions(warmup=0)), 2, None
    )
    assert seen[:3] == [("due_guests", True, h) for h in ("h0", "h1", "h2")]
    seen.clear()
    measure_isolation(
        object(), Plan(ops[:1], targets, workload.Context(), None, BenchOptions(warmup=0)), 2, None
    )
    assert [name for name, _, _ in seen] == ["resolve_hotel"] * 4  # only the measured pairs
