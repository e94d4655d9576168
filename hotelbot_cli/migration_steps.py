"""Building blocks that keep a revision online: short transactions, batches, CONCURRENTLY.

A revision calls these from ``upgrade()`` instead of bare ``op.execute`` when it touches a
table that may be populated. Each step is idempotent, so a revision interrupted (killed,
lock timeout, crash) is simply run again from its first step:

- :func:`execute` — one statement in the current transaction; ``unless`` is a query whose
  row means "already done" (PostgreSQL has no ``ADD CONSTRAINT IF NOT EXISTS``).
- :func:`commit` — end the current transaction here: its locks are released and the
  work so far is kept; the next transaction takes the migration lock again.
- :func:`validate` — ``VALIDATE CONSTRAINT`` in a transaction of its own (SHARE UPDATE
  EXCLUSIVE: reads and writes go on) after the ``NOT VALID`` constraint was committed.
- :func:`create_index` / :func:`drop_index` — ``CONCURRENTLY``, outside any transaction;
  an invalid index left by an interrupted build is dropped first.
- :func:`backfill` — an ``UPDATE`` in key-ordered batches, one short transaction each.
- :func:`alter_policies` — the tenant policies of several tables, one transaction each.

Who runs them decides how: ``hotelbot db upgrade`` hands a runner (bounded lock waits,
the migration lock in every transaction); plain ``alembic upgrade`` falls back to
Alembic's ``autocommit_block``; offline (``db sql``, ``db lint``) emits the online form
with ``COMMIT``/``BEGIN`` around the non-transactional statements. Databases whose tables are under
:data:`SMALL_TABLE_BYTES` together (a fresh database) take the fast path: plain statements in the
current transaction, so a fresh upgrade stays one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text

from hotelbot_cli import settings

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import Connection

#: config.attributes key under which ``hotelbot_cli.migrations`` hands its runner.
RUNNER_KEY = "hotelbot_online_runner"
#: Marker the linter recognises: the UPDATE that follows runs in batches.
BATCHED_MARKER = "-- hotelbot:batched"


#: Below this size (bytes, heap only) a table is rewritten/indexed in the transaction.
SMALL_TABLE_BYTES = settings.migration_small_table_bytes()
#: Rows per backfill batch (one short transaction each).
BATCH_ROWS = settings.migration_batch_rows()


def lock_timeout_seconds() -> float:
    """HOTELBOT_MIGRATION_LOCK_TIMEOUT (seconds, default 2): the longest any lock wait may queue.

    Parsed as ``hotelbot db upgrade`` parses it (a malformed value is a ConfigError), also
    when plain Alembic runs the revisions.
    """
    return settings.migration_lock_timeout()


#: Contexts whose current transaction already has our lock_timeout (offline, plain Alembic).
_timed: set[int] = set()


class Runner(Protocol):
    """What ``hotelbot_cli.migrations`` provides to the steps (its ``online.OnlineRunner``)."""

    def boundary(self) -> None:
        """Commit the current transaction and begin the next (lock_timeout, migration lock)."""

    def outside(self) -> Any:
        """Context manager: commit, yield with the connection in autocommit, begin again."""

    def note(self, message: str) -> None:
        """Progress worth reporting (a batch count, a dropped invalid index)."""


class StepBusy(Exception):
    """Another session is doing this step right now (e.g. building the same index)."""


def _context() -> MigrationContext:
    from alembic import op

    return op.get_context()


def _runner(ctx: MigrationContext) -> Runner | None:
    config = ctx.config
    return None if config is None else config.attributes.get(RUNNER_KEY)


def _conn(ctx: MigrationContext) -> Connection:
    assert ctx.connection is not None
    return ctx.connection


def _emit(ctx: MigrationContext, sql: str) -> None:
    ctx.impl.static_output(sql.strip() + ctx.impl.command_terminator)


def _is_small(ctx: MigrationContext, table: str) -> bool:
    """True online when the database is fresh: all its tables together under the threshold.

    Decided for the whole schema, not per table: on a populated database every step keeps
    its transaction to one table, so a small table locked first never waits behind a big one
    (and the bot, holding the big one, never deadlocks on the small one). ``table`` names
    what the step touches, for the reader.
    """
    del table
    if ctx.as_sql:
        return False
    conn = _conn(ctx)
    size = conn.scalar(text(_SCHEMA_BYTES_CITUS if _on_citus(conn) else _SCHEMA_BYTES))
    return int(size or 0) < SMALL_TABLE_BYTES


_OURS = " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
_SCHEMA_BYTES = "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c" + _OURS
#: On Citus a distributed table's rows are in its shards on the workers (the coordinator's
#: own copy is empty): citus_relation_size() sums the shards' main forks.
_SCHEMA_BYTES_CITUS = (
    "SELECT coalesce(sum(CASE WHEN p.logicalrelid IS NULL THEN pg_relation_size(c.oid)"
    " ELSE citus_relation_size(c.oid) END), 0) FROM pg_class c"
    " LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid" + _OURS
)


def _on_citus(conn: Connection) -> bool:
    from hotelbot_cli import citus

    raw = conn.connection.driver_connection
    return raw is not None and citus.is_citus(raw)


def lock_timeout() -> None:
    """``SET LOCAL lock_timeout`` for this transaction (the hotelbot runner already does).

    Every step calls it; a revision that uses bare ``op.execute`` calls it first, so its
    SQL is bounded when applied by plain Alembic or from ``hotelbot db sql`` with psql.
    """
    from alembic import op

    ctx = _context()
    if _runner(ctx) is not None or id(ctx) in _timed:
        return
    _timed.add(id(ctx))
    op.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_seconds() * 1000)}ms'")


def execute(sql: str, *, unless: str | None = None) -> None:
    """Run ``sql`` in the current transaction, skipped when ``unless`` returns a row."""
    from alembic import op

    lock_timeout()
    ctx = _context()
    if unless is not None and not ctx.as_sql and _conn(ctx).execute(text(unless)).first():
        return
    op.execute(sql)


def commit(*tables: str) -> None:
    """End the current transaction here; the next statement starts a new one.

    With ``tables``, only when one of them is big (a fresh database stays one transaction):
    call it after the statements that lock one table, so a transaction never holds a lock
    on one table while it queues for the next.
    """
    ctx = _context()
    if tables and _is_small(ctx, tables[0]):
        return
    _timed.discard(id(ctx))
    if ctx.as_sql:
        ctx.impl.emit_commit()
        ctx.impl.emit_begin()
        return
    runner = _runner(ctx)
    if runner is not None:
        runner.boundary()
    else:  # plain `alembic upgrade`: Alembic commits and begins again around the block
        with ctx.autocommit_block():
            pass


@contextmanager
def _outside(ctx: MigrationContext) -> Iterator[None]:
    """Statements that must not run in a transaction block (CONCURRENTLY)."""
    _timed.discard(id(ctx))
    if ctx.as_sql:
        ctx.impl.emit_commit()
        yield
        ctx.impl.emit_begin()
        return
    runner = _runner(ctx)
    if runner is not None:
        with runner.outside():
            yield
    else:
        with ctx.autocommit_block():
            yield


def validate(table: str, constraint: str) -> None:
    """VALIDATE a NOT VALID constraint in its own transaction (big tables) or in place."""
    ctx = _context()
    statement = f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}"
    if _is_small(ctx, table):
        execute(statement)
        return
    commit()
    execute(statement)
    commit()


_INDEX = re.compile(
    r"^\s*CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?P<name>\w+)\s+ON\s+(?P<table>\w+)\s+(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)


def create_index(definition: str) -> None:
    """``CREATE [UNIQUE] INDEX name ON table …`` built CONCURRENTLY when the table is big.

    An invalid index of that name (an interrupted build) is dropped first; one that
    another session is building right now raises :class:`StepBusy` (the runner waits).
    """
    match = _INDEX.match(definition)
    if match is None:
        raise ValueError(f"not a plain CREATE [UNIQUE] INDEX name ON table …: {definition}")
    unique, name, table, rest = (
        match["unique"] or "",
        match["name"],
        match["table"],
        match["rest"].strip(),
    )
    ctx = _context()
    if _is_small(ctx, table):
        execute(f"CREATE {unique}INDEX IF NOT EXISTS {name} ON {table} {rest}")
        return
    with _outside(ctx):
        if not ctx.as_sql:
            _drop_invalid(ctx, name)
        _run_outside(
            ctx, f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {rest}"
        )


def _drop_invalid(ctx: MigrationContext, name: str) -> None:
    conn = _conn(ctx)
    row = conn.execute(
        text(
            "SELECT i.indisvalid, EXISTS (SELECT 1 FROM pg_stat_progress_create_index p"
            " WHERE p.index_relid = i.indexrelid AND p.pid <> pg_backend_pid())"
            " FROM pg_index i WHERE i.indexrelid = to_regclass(:n)"
        ),
        {"n": name},
    ).first()
    if row is None or row[0]:
        return
    if row[1]:
        raise StepBusy(f"another session is building index {name}")
    runner = _runner(ctx)
    if runner is not None:
        runner.note(f"dropping invalid index {name} left by an interrupted build")
    conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def _run_outside(ctx: MigrationContext, sql: str) -> None:
    if ctx.as_sql:
        _emit(ctx, sql)
    else:
        _conn(ctx).exec_driver_sql(sql)


def drop_index(name: str, table: str, *, unless: str | None = None) -> None:
    """``DROP INDEX`` — CONCURRENTLY (outside the transaction) when ``table`` is big."""
    ctx = _context()
    if unless is not None and not ctx.as_sql and _conn(ctx).execute(text(unless)).first():
        return
    if _is_small(ctx, table):
        execute(f"DROP INDEX IF EXISTS {name}")
        return
    with _outside(ctx):
        _run_outside(ctx, f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def alter_policies(policies: dict[str, str], expression: str) -> None:
    """``ALTER POLICY <table>_tenant_isolation`` of every ``table: column`` in ``policies``
    to ``expression`` (``{column}`` filled in) for USING and WITH CHECK, each table in its
    own transaction.

    ALTER POLICY replaces both atomically and is idempotent, so a re-run after an
    interruption redoes only what is left; one table's lock per transaction never makes
    the bot's multi-table transactions deadlock with the migration.
    """
    for table, column in policies.items():
        bound = expression.format(column=column)
        execute(
            f"ALTER POLICY {table}_tenant_isolation ON {table} USING ({bound}) WITH CHECK ({bound})"
        )
        commit(table)


def backfill(table: str, update: str, key: str = "id", batch_rows: int | None = None) -> None:
    """Run ``update`` over ``table`` in batches of ``key`` ranges, one transaction each.

    ``update`` must restrict itself with ``{key} BETWEEN :lower AND :upper`` (the runner
    binds each batch's bounds) and skip rows already done (e.g. ``AND x IS NULL``), so an
    interrupted backfill re-run only does what is left.
    """
    from alembic import op

    if ":lower" not in update or ":upper" not in update:
        raise ValueError("a backfill UPDATE must bound its rows with :lower and :upper")
    size = batch_rows or BATCH_ROWS
    lock_timeout()
    ctx = _context()
    whole = {
        "lower": f"(SELECT {key} FROM {table} ORDER BY {key} LIMIT 1)",
        "upper": f"(SELECT {key} FROM {table} ORDER BY {key} DESC LIMIT 1)",
    }
    if ctx.as_sql:
        ctx.impl.static_output(
            f"{BATCHED_MARKER} {table}: {size} rows per transaction, keyed on {key}"
        )
        _emit(ctx, update.replace(":lower", whole["lower"]).replace(":upper", whole["upper"]))
        return
    if _is_small(ctx, table):
        op.execute(update.replace(":lower", whole["lower"]).replace(":upper", whole["upper"]))
        return
    conn = _conn(ctx)
    runner = _runner(ctx)
    after: Any = None
    batches = rows = 0
    while True:
        commit()
        where = "" if after is None else f"WHERE {key} > :after"
        bounds = conn.execute(
            text(
                f"WITH batch AS (SELECT {key} FROM {table} {where} ORDER BY {key} LIMIT :n)"
                f" SELECT (SELECT {key} FROM batch ORDER BY {key} LIMIT 1),"
                f" (SELECT {key} FROM batch ORDER BY {key} DESC LIMIT 1)"
            ),
            {"after": after, "n": size},
        ).first()
        if bounds is None or bounds[0] is None:
            break
        rows += conn.execute(text(update), {"lower": bounds[0], "upper": bounds[1]}).rowcount
        after = bounds[1]
        batches += 1
        if runner is not None and batches % 50 == 0:
            runner.note(f"backfill of {table}: {batches} batches, {rows} rows updated")
    commit()
    if runner is not None:
        runner.note(f"backfill of {table}: {rows} rows updated in {batches} batches")
