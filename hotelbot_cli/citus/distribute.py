"""``hotelbot db distribute``: the single-node schema (at head) spread over a Citus cluster.

What Citus needs that one node does not, done once on the coordinator, in ONE transaction
under the migration lock (so a failure leaves the schema as it was, and a re-run plans
only what is left):

- ``citus.propagate_set_commands = 'local'`` for the database: the tenant is bound with
  ``SET LOCAL``, which Citus then sends to every worker the transaction touches;
- policies in a form Citus accepts: ``(SELECT f())`` InitPlans become bare calls of the same
  STABLE functions (Citus refuses sub-selects in policies on distributed tables; on a
  shard the call is an index qual of every tenant query, evaluated once per scan);
- ``hotels`` a reference table, the tenant tables distributed by ``hotel_id`` and colocated,
  their rows moved into the shards; the foreign keys among them are dropped and re-added
  around it (Citus cannot distribute a table a local table references);
- the tenant key on every worker: the policies' verifier runs wherever a shard is
  scanned, and a query on a shard may not read a Citus table, so each worker keeps a plain
  local copy of ``hotelbot_private.tenant_key`` (refreshed on every run: run it again
  after rotating the key).

What the workers need from their operator (Citus connects to workers as the current
user, which is ``app_user`` after ``SET ROLE``) is reported, not done.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hotelbot_cli.citus import DISTRIBUTION_COLUMN, citus_version
from hotelbot_cli.db.tenant_cache import VERIFIED_TENANTS
from hotelbot_cli.errors import DatabaseError, HotelbotError, LockTimeout
from hotelbot_cli.models import TENANT_TABLES

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

#: The reference table and the tenant tables, in the order they are distributed
#: (the first tenant table is the colocation group's anchor).
REFERENCE = "hotels"
APP_ROLE = "app_user"
KEY_TABLE = "hotelbot_private.tenant_key"
#: The key table as revision 009 creates it; workers get the same table, local to them.
KEY_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} ("
    " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    " key bytea NOT NULL CHECK (length(key) = 32),"
    " ipad bytea NOT NULL, opad bytea NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())"
)


class NotDistributable(HotelbotError):
    """The database is not a Citus coordinator with workers (exit 1: nothing was changed)."""


@dataclass(frozen=True)
class ClusterState:
    """What the plan depends on, read from the coordinator (see :func:`read_state`)."""

    database: str
    citus_version: str | None
    is_coordinator: bool = False
    workers: tuple[str, ...] = ()
    propagate_set_commands: str | None = None
    #: table -> 'reference' | 'distributed' (Citus tables among ours)
    citus_tables: dict[str, str] = field(default_factory=dict)
    #: (table, constraint, definition) of the foreign keys among our tables
    foreign_keys: tuple[tuple[str, str, str], ...] = ()
    #: (table, policy, USING, WITH CHECK) of the policies on our tables
    policies: tuple[tuple[str, str, str | None, str | None], ...] = ()
    #: worker -> may app_user log in there
    app_login: dict[str, bool] = field(default_factory=dict)
    has_key: bool = True


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


@dataclass(frozen=True)
class DistributeReport:
    plan: DistributePlan
    dry_run: bool
    applied: int
    #: (table, Citus table type, shard count) after the run (empty on a dry run)
    tables: tuple[tuple[str, str, int], ...] = ()
    seconds: float = 0.0


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


def refusal(state: ClusterState) -> str | None:
    """Why ``db distribute`` cannot run here (None: it can)."""
    if state.citus_version is None:
        return (
            "this database is not a Citus database: the citus extension is not installed"
            " (CREATE EXTENSION citus on the coordinator and every worker, then add the workers)"
        )
    if not state.is_coordinator:
        return "this is not the Citus coordinator (point DATABASE_URL at the coordinator)"
    if not state.workers:
        return (
            "the coordinator has no active worker"
            " (add one: SELECT citus_add_node('worker-host', 5432))"
        )
    if not state.has_key:
        return "the tenant key is missing (run `hotelbot db upgrade`: revision 009 creates it)"
    return None


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


# --- reading and applying (needs a Citus coordinator) ------------------------------------


def _scalar(conn: Connection, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    return conn.execute(text(sql), params).scalar()


def _rows(conn: Connection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    return [tuple(row) for row in conn.execute(text(sql), params)]


def read_state(conn: Connection) -> ClusterState:
    """The coordinator's state as :func:`build_plan` needs it."""
    database = str(_scalar(conn, "SELECT current_database()"))
    version = citus_version(conn.connection.driver_connection)
    has_key = bool(_scalar(conn, f"SELECT to_regclass('{KEY_TABLE}') IS NOT NULL"))
    if version is None:
        return ClusterState(database=database, citus_version=None, has_key=has_key)
    ours = [REFERENCE, *TENANT_TABLES]
    workers = tuple(
        f"{host}:{port}"
        for host, port in _rows(
            conn,
            "SELECT nodename, nodeport FROM pg_dist_node WHERE isactive"
            " AND noderole = 'primary' AND groupid <> 0 ORDER BY nodeid",
        )
    )
    setting = _scalar(
        conn,
        "SELECT s.opt FROM pg_db_role_setting r CROSS JOIN unnest(r.setconfig) AS s(opt)"
        " WHERE r.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND r.setrole = 0 AND s.opt LIKE 'citus.propagate_set_commands=%'",
    )
    citus_tables = {
        str(name): str(kind)
        for name, kind in _rows(
            conn,
            "SELECT logicalrelid::regclass::text,"
            " CASE WHEN partmethod = 'n' THEN 'reference' ELSE 'distributed' END"
            " FROM pg_dist_partition WHERE logicalrelid::regclass::text = ANY(:t)",
            t=ours,
        )
    }
    fks = tuple(
        (str(t), str(n), str(d))
        for t, n, d in _rows(
            conn,
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid::regclass::text = ANY(:t) AND confrelid::regclass::text = ANY(:t)"
            " ORDER BY conrelid::regclass::text <> 'hotels', conname",
            t=ours,
        )
    )
    policies = tuple(
        (str(t), str(p), q, w)
        for t, p, q, w in _rows(
            conn,
            "SELECT tablename, policyname, qual, with_check FROM pg_policies"
            " WHERE schemaname = current_schema() AND tablename = ANY(:t)"
            " ORDER BY tablename, policyname",
            t=ours,
        )
    )
    logins = {
        f"{host}:{port}": result == "t"
        for host, port, ok, result in _rows(
            conn,
            "SELECT nodename, nodeport, success, result FROM run_command_on_workers("
            f"$$SELECT rolcanlogin FROM pg_roles WHERE rolname = '{APP_ROLE}'$$)",
        )
        if ok
    }
    return ClusterState(
        database=database,
        citus_version=str(version),
        is_coordinator=bool(_scalar(conn, "SELECT citus_is_coordinator()")),
        workers=workers,
        propagate_set_commands=setting.split("=", 1)[1] if setting else None,
        citus_tables=citus_tables,
        foreign_keys=fks,
        policies=policies,
        app_login=logins,
        has_key=has_key,
    )


def _lock(conn: Connection, wait: float) -> None:
    """The migration lock (transaction-level, as ``db upgrade`` takes it)."""
    from hotelbot_cli.migrations import MIGRATION_LOCK_KEY

    deadline = time.monotonic() + wait
    while not _scalar(conn, f"SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"):
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"another migration holds the lock (waited {wait:g} s)",
                "wait for it to finish, or raise HOTELBOT_LOCK_TIMEOUT",
            )
        time.sleep(0.1)


def _copy_key(conn: Connection) -> None:
    """Upsert the coordinator's key row into a local table on every worker."""
    row = _scalar(
        conn,
        "SELECT format('(%L::bytea, %L::bytea, %L::bytea, %L::timestamptz)',"
        f" key, ipad, opad, created_at) FROM {KEY_TABLE}",
    )
    if row is None:
        raise NotDistributable("the tenant key table is empty (run `hotelbot db upgrade`)")
    command = (
        "BEGIN; SET LOCAL citus.enable_ddl_propagation = off; "
        f"{KEY_TABLE_DDL}; REVOKE ALL ON {KEY_TABLE} FROM PUBLIC; "
        f"GRANT SELECT (ipad, opad) ON {KEY_TABLE} TO hotelbot_tenant_verifier; "
        f"INSERT INTO {KEY_TABLE} (key, ipad, opad, created_at) VALUES {row}"
        " ON CONFLICT (singleton) DO UPDATE SET key = EXCLUDED.key, ipad = EXCLUDED.ipad,"
        " opad = EXCLUDED.opad, created_at = EXCLUDED.created_at; COMMIT"
    )
    from sqlalchemy import text

    failed = [
        f"{host}:{port}: {result}"
        for host, port, ok, result in conn.execute(
            text("SELECT * FROM run_command_on_workers(:c)"), {"c": command}
        )
        if not ok
    ]
    if failed:
        raise DatabaseError("could not copy the tenant key to " + "; ".join(failed))


def distribute(
    engine: Engine, *, dry_run: bool = False, lock_wait: float = 60.0
) -> DistributeReport:
    """Plan (and unless ``dry_run``, apply) the distribution of the schema at head."""
    from hotelbot_cli import migrations

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
        _lock(conn, lock_wait)
        conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        plan = build_plan(read_state(conn))  # re-planned under the lock
        for step in plan.steps:
            if step.action == "worker-key":
                _copy_key(conn)
            else:
                conn.exec_driver_sql(step.sql)
            applied += 1
    with engine.connect() as conn:
        tables = tuple(
            (str(n), str(k), int(s))
            for n, k, s in _rows(
                conn,
                "SELECT table_name::text, citus_table_type, shard_count FROM citus_tables"
                " ORDER BY citus_table_type DESC, table_name::text",
            )
        )
    return DistributeReport(
        plan=plan,
        dry_run=False,
        applied=applied,
        tables=tables,
        seconds=time.perf_counter() - started,
    )
