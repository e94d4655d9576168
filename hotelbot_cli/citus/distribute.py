"""``hotelbot db distribute``: the single-node schema (at head) spread over a Citus cluster.

What Citus needs that one node does not, done once on the coordinator, in ONE transaction
under the migration lock (so a failure leaves the schema as it was, and a re-run plans
only what is left):

- ``citus.propagate_set_commands = 'local'`` for the database: the tenant is bound with
  ``SET LOCAL``, which Citus then sends to every worker the transaction touches;
- policies in a form Citus accepts (:mod:`~hotelbot_cli.citus.policy_form`): ``(SELECT f())``
  InitPlans become bare calls of the same STABLE functions;
- ``hotels`` a reference table, the tenant tables distributed by ``hotel_id`` and colocated,
  their rows moved into the shards; the foreign keys among them are dropped and re-added
  around it (Citus cannot distribute a table a local table references);
- the tenant key on every worker (:mod:`~hotelbot_cli.citus.worker_key`).

This module runs it: the state is read (:mod:`~hotelbot_cli.citus.cluster_state`), planned
(:mod:`~hotelbot_cli.citus.plan`), and re-planned and applied under the lock. What the
workers need from their operator (Citus connects to workers as the current user, which is
``app_user`` after ``SET ROLE``) is reported, not done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from hotelbot_cli.citus.cluster_state import read_state
from hotelbot_cli.citus.plan import DistributePlan, build_plan
from hotelbot_cli.citus.worker_key import copy_key

if TYPE_CHECKING:
    from sqlalchemy import Engine


class CitusTable(NamedTuple):
    """One of Citus' tables after the run, as ``citus_tables`` lists it."""

    table: str
    kind: str  # Citus' table type: 'reference' | 'distributed'
    shards: int


@dataclass(frozen=True)
class DistributeReport:
    plan: DistributePlan
    dry_run: bool
    applied: int
    #: Citus' tables after the run (empty on a dry run)
    tables: tuple[CitusTable, ...] = ()
    seconds: float = 0.0


def _citus_tables(engine: Engine) -> tuple[CitusTable, ...]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return tuple(
            CitusTable(str(n), str(k), int(s))
            for n, k, s in conn.execute(
                text(
                    "SELECT table_name::text, citus_table_type, shard_count FROM citus_tables"
                    " ORDER BY citus_table_type DESC, table_name::text"
                ),
                {},
            )
        )


def distribute(
    engine: Engine, *, dry_run: bool = False, lock_wait: float = 60.0
) -> DistributeReport:
    """Plan (and unless ``dry_run``, apply) the distribution of the schema at head."""
    from hotelbot_cli import migrations
    from hotelbot_cli.migrations.lock import take_migration_lock

    started = time.perf_counter()
    with engine.connect() as conn:
        state = read_state(conn)
        conn.rollback()
    plan = build_plan(state)  # refuses a plain server before asking about the revision
    migrations.require_head(engine)
    if dry_run:
        return DistributeReport(plan=plan, dry_run=True, applied=0)
    applied = 0
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        take_migration_lock(conn, time.monotonic() + lock_wait, lock_wait)  # as db upgrade
        conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        plan = build_plan(read_state(conn))  # re-planned under the lock
        for step in plan.steps:
            if step.action == "worker-key":
                copy_key(conn)
            else:
                conn.exec_driver_sql(step.sql)
            applied += 1
    return DistributeReport(
        plan=plan,
        dry_run=False,
        applied=applied,
        tables=_citus_tables(engine),
        seconds=time.perf_counter() - started,
    )
