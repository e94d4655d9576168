"""Runs one operation's plan on a psycopg connection, one round trip per batch.

Each batch goes through psycopg's pipeline mode, opening the transaction (BEGIN,
``SET LOCAL ROLE app_user``, the tenant's ``set_config``) in the same round trip as the
first batch and closing it (COMMIT) in the same round trip as the last.

The driver needs a psycopg connection in autocommit mode (the engines of
:mod:`hotelbot_cli.bench.runner` are made with ``isolation_level="AUTOCOMMIT"``)
so that the explicit BEGIN/COMMIT are the only transaction control sent.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from hotelbot_cli.bench.workload import APP_ROLE, Context, Operation, Rows, Stmt, Target
from hotelbot_cli.db.tenant import Binding, tenant_binding
from hotelbot_cli.db.tenant_cache import registered_signatures, registered_signatures_async

if TYPE_CHECKING:
    import psycopg


def binding(
    op: Operation,
    target: Target,
    tenant: bool,
    role: str | None,
    ctx: Context,
    *,
    registered: set[str] | None = None,
) -> Binding:
    """What a transaction sends right after BEGIN: (tenant mode) the tenant binding.

    The binding is :func:`hotelbot_cli.db.tenant.tenant_binding`, the one the library's
    ``tenant_session`` sends (``registered``: the connection's registered signatures), so
    the bench measures the bot's real path. Pairs of SQL and parameters, as the driver
    sends them: no statement objects on the tenant's side only (see ``_BINDINGS`` there).
    """
    if not tenant:
        return []
    if op.needs_tenant:
        return tenant_binding(
            target.hotel_id,
            role,
            key=ctx.tenant_key,
            ttl=ctx.tenant_ttl,
            propagate=ctx.propagate,
            registered=registered,
        )
    if role:
        return tenant_binding(None, role, propagate=ctx.propagate)
    return []


def prefix(
    op: Operation,
    target: Target,
    tenant: bool,
    role: str | None,
    ctx: Context | None = None,
    *,
    registered: set[str] | None = None,
) -> list[Stmt]:
    """Statements that open the transaction: BEGIN, then :func:`binding`."""
    opening = binding(op, target, tenant, role, ctx or Context(), registered=registered)
    return [Stmt("BEGIN"), *(Stmt(s, p or {}) for s, p in opening)]


def runs_bare(op: Operation, role: str | None) -> bool:
    """Whether ``op`` runs as its own transaction (no BEGIN/COMMIT): a single-statement
    operation with nothing to bind, the way the library sends the lookup. Such a run
    leaves the session as it found it (see ``db.engine.leave_untouched``). Decided by the
    role alone, so the owner's side of the isolation comparison has the tenant's shape."""
    return op.autocommit and not op.needs_tenant and role is None


def _last(plan: Any, rows: list[Rows]) -> Any:
    """What a bare operation's plan returns once it gets its one batch's ``rows``."""
    try:
        plan.send(rows)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("an autocommit operation has one batch")


def _rows(cursors: list[psycopg.Cursor[Any]]) -> list[Rows]:
    return [cur.fetchall() if cur.description is not None else [] for cur in cursors]


def run_operation(
    conn: psycopg.Connection[Any],
    op: Operation,
    target: Target,
    rng: random.Random,
    ctx: Context,
    *,
    tenant: bool = True,
    role: str | None = APP_ROLE,
) -> Any:
    """Run ``op`` on a psycopg connection in autocommit mode; one round trip per batch.

    Transaction control (BEGIN, the tenant binding, COMMIT) shares one cursor, whose
    results nobody reads: a cursor per statement cost ~1/3 of the driver's own time.
    """
    plan = op.plan(target, rng, ctx, tenant)
    if runs_bare(op, role):
        (stmt,) = next(plan).statements
        return _last(plan, [conn.execute(stmt.sql, stmt.params or None).fetchall()])
    registered = registered_signatures(conn) if tenant and not ctx.propagate else None
    in_tx = False
    control = conn.cursor()
    try:
        batch = next(plan)
        while True:
            with conn.pipeline():
                if not in_tx:
                    control.execute("BEGIN")
                    for sql, params in binding(
                        op, target, tenant, role, ctx, registered=registered
                    ):
                        control.execute(sql, params)
                cursors = [conn.execute(s.sql, s.params or None) for s in batch.statements]
                if batch.final:
                    control.execute("COMMIT")
            in_tx = not batch.final
            batch = plan.send(_rows(cursors))
    except StopIteration as stop:
        if in_tx:
            conn.execute("COMMIT")
        return stop.value
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: psycopg.Connection[Any]) -> None:
    from psycopg.pq import TransactionStatus

    if conn.closed:
        return
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        conn.execute("ROLLBACK")


async def run_operation_async(
    conn: psycopg.AsyncConnection[Any],
    op: Operation,
    target: Target,
    rng: random.Random,
    ctx: Context,
    *,
    tenant: bool = True,
    role: str | None = APP_ROLE,
) -> Any:
    """Async twin of :func:`run_operation` (psycopg AsyncConnection in autocommit mode)."""
    plan = op.plan(target, rng, ctx, tenant)
    if runs_bare(op, role):
        (stmt,) = next(plan).statements
        cur = await conn.execute(stmt.sql, stmt.params or None)
        return _last(plan, [await cur.fetchall()])
    registered = None
    if tenant and not ctx.propagate:
        registered = await registered_signatures_async(conn)
    in_tx = False
    control = conn.cursor()
    try:
        batch = next(plan)
        while True:
            async with conn.pipeline():
                if not in_tx:
                    await control.execute("BEGIN")
                    for sql, params in binding(
                        op, target, tenant, role, ctx, registered=registered
                    ):
                        await control.execute(sql, params)
                cursors = [await conn.execute(s.sql, s.params or None) for s in batch.statements]
                if batch.final:
                    await control.execute("COMMIT")
            in_tx = not batch.final
            batch = plan.send([await cur.fetchall() if cur.description else [] for cur in cursors])
    except StopIteration as stop:
        if in_tx:
            await conn.execute("COMMIT")
        return stop.value
    except BaseException:
        from psycopg.pq import TransactionStatus

        if not conn.closed and conn.info.transaction_status in (
            TransactionStatus.INTRANS,
            TransactionStatus.INERROR,
        ):
            await conn.execute("ROLLBACK")
        raise
