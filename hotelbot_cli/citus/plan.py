"""``db distribute``'s plan: the statements still to run for a :class:`ClusterState`.

Pure: built from the state alone (no database), in the order they must run, so a re-run
plans only what is left; what the workers need from their operator is listed apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotelbot_cli.citus import DISTRIBUTION_COLUMN
from hotelbot_cli.citus.cluster_state import (
    APP_ROLE,
    KEY_TABLE,
    REFERENCE,
    ClusterState,
    NotDistributable,
    refusal,
)
from hotelbot_cli.citus.policy_form import function_form
from hotelbot_cli.citus.worker_key import KEY_TABLE_DDL
from hotelbot_cli.db import sentiment
from hotelbot_cli.models import TENANT_TABLES


@dataclass(frozen=True)
class Step:
    """One statement of the plan; ``sql`` is what runs (a secret is never part of it)."""

    action: str
    target: str
    sql: str


@dataclass(frozen=True)
class DistributePlan:
    database: str
    citus_version: str
    workers: tuple[str, ...]
    steps: tuple[Step, ...]
    #: What an operator must do on the workers (one instruction each).
    operator: tuple[str, ...]

    @property
    def distributes(self) -> bool:
        return any(step.action == "distribute" for step in self.steps)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_plan(state: ClusterState) -> DistributePlan:
    """The steps still to do for ``state`` (none when everything is in place but the key)."""
    problem = refusal(state)
    if problem:
        raise NotDistributable(problem)
    assert state.citus_version is not None
    steps: list[Step] = []
    if state.propagate_set_commands != "local":
        steps.append(
            Step(
                "setting",
                state.database,
                f"ALTER DATABASE {_quote_ident(state.database)}"
                " SET citus.propagate_set_commands = 'local'",
            )
        )
    for table, policy, using, check in state.policies:
        new_using = function_form(using) if using else None
        new_check = function_form(check) if check else None
        if (new_using, new_check) == (using, check):
            continue
        sql = f"ALTER POLICY {policy} ON {table}"
        sql += f" USING ({new_using})" if new_using else ""
        sql += f" WITH CHECK ({new_check})" if new_check else ""
        steps.append(Step("policy", f"{table}.{policy}", sql))
    todo = [t for t in (REFERENCE, *TENANT_TABLES) if t not in state.citus_tables]
    if todo:
        for table, name, _definition in state.foreign_keys:
            steps.append(
                Step("drop-foreign-key", name, f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            )
        if "messages" in todo:  # a trigger on a shard cannot write another distributed table
            steps.extend(
                Step("drop-trigger", name, f"DROP TRIGGER IF EXISTS {name} ON messages")
                for name in sentiment.TRIGGERS
            )
            steps.append(Step("empty-counts", sentiment.HOURLY, f"TRUNCATE {sentiment.HOURLY}"))
        if REFERENCE in todo:
            steps.append(
                Step("reference", REFERENCE, f"SELECT create_reference_table('{REFERENCE}')")
            )
        anchor = TENANT_TABLES[0]
        for table in TENANT_TABLES:
            if table not in todo:
                continue
            colocate = "none" if table == anchor else anchor
            steps.append(
                Step(
                    "distribute",
                    table,
                    f"SELECT create_distributed_table('{table}', '{DISTRIBUTION_COLUMN}',"
                    f" colocate_with => '{colocate}')",
                )
            )
        for table in todo:  # the rows now live in the shards; the coordinator's copy goes
            steps.append(
                Step(
                    "truncate-local",
                    table,
                    f"SELECT truncate_local_data_after_distributing_table('{table}')",
                )
            )
        for table, name, definition in state.foreign_keys:
            steps.append(
                Step(
                    "add-foreign-key",
                    name,
                    f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}",
                )
            )
    steps.append(
        Step(
            "worker-key",
            KEY_TABLE,
            f"run_command_on_workers: {KEY_TABLE_DDL}; the coordinator's key row, upserted",
        )
    )
    return DistributePlan(
        database=state.database,
        citus_version=state.citus_version,
        workers=state.workers,
        steps=tuple(steps),
        operator=operator_notes(state),
    )


def operator_notes(state: ClusterState) -> tuple[str, ...]:
    """What the workers still need from their operator."""
    notes: list[str] = []
    locked = [w for w in state.workers if not state.app_login.get(w, False)]
    if locked:
        notes.append(
            f"on {', '.join(locked)}: SET citus.enable_ddl_propagation = off;"
            f" ALTER ROLE {APP_ROLE} LOGIN; (Citus connects to workers as the current user,"
            f" {APP_ROLE} after SET ROLE; the coordinator's {APP_ROLE} stays NOLOGIN)"
        )
    notes.append(
        "every worker's pg_hba.conf must let the coordinator (and each worker) connect as"
        f" {APP_ROLE} and as the bot's login, e.g. with .pgpass or pg_dist_authinfo"
    )
    notes.append(
        "after rotating the tenant key, run `hotelbot db distribute` again: workers keep a copy"
    )
    return tuple(notes)
