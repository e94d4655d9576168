"""Pooled connections come back clean, without costing the next request a round trip.

Whatever a request did to its session (role, settings — the tenant among them —, cursors,
LISTEN, advisory locks, temp objects, statements PREPAREd in SQL) must never reach the next
user of the connection. ``DISCARD ALL`` does that but also drops psycopg's own prepared
statements, so every checkout parsed and planned every statement again; :data:`SESSION_RESET`
is ``DISCARD ALL`` without its ``DEALLOCATE ALL`` and ``DISCARD PLANS``, after a census of
the prepared statements that decides whether those must go too (a statement PREPAREd in SQL,
or one of psycopg's dropped or replaced: hotel A's request could otherwise replace the
prepared tenant binding with one that binds A for the next hotel).

On a sync psycopg connection the reset is *sent* at check-in and its results are read at the
next checkout, so the server runs it while the connection waits in the pool and the client
gets on with its work. Its answer also proves the connection alive: it stands in for the
pool's pre-ping, which then pings only a connection idle for more than
:data:`PING_AFTER_IDLE_S`. Async connections (and a sync one in an unexpected state) are
reset in place at check-in.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, event, exc
from sqlalchemy.pool import NullPool

#: One simple-protocol query (several statements, one round trip). The census comes first:
#: (statements PREPAREd in SQL, names of the protocol-level ones, i.e. psycopg's).
SESSION_RESET = (
    "SELECT count(*) FILTER (WHERE from_sql),"
    " coalesce(array_agg(name::text) FILTER (WHERE NOT from_sql), '{}')"
    " FROM pg_catalog.pg_prepared_statements;"
    " SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *;"
    " SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)
_SESSION_RESET_BYTES = SESSION_RESET.encode()

#: A connection whose reset answered this long ago is pinged again on checkout (when the
#: engine asked for pre-ping): the answer proves it was alive then, not now.
PING_AFTER_IDLE_S = 1.0

#: ``record.info`` key: (the DBAPI connection, monotonic time of check-in, reset in flight).
_CHECKED_IN = "hotelbot_checked_in"


def install(engine: Engine, *, pre_ping: bool) -> None:
    """Reset every connection ``engine``'s pool gets back (made with ``pool_pre_ping=False``:
    the reset's answer is the ping)."""
    if isinstance(engine.pool, NullPool):  # NullPool closes the connection anyway
        return

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        _finish(dbapi_connection, record, pre_ping)

    event.listen(engine.pool, "checkin", _on_checkin)
    event.listen(engine.pool, "checkout", on_checkout)


def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    if dbapi_connection is None:  # the pool invalidated it
        return
    try:
        deferred = _send(dbapi_connection)
        if not deferred:
            reset_now(dbapi_connection)
    except Exception as error:  # a connection we cannot clean must not be reused
        record.invalidate(error)
        return
    record.info[_CHECKED_IN] = (dbapi_connection, time.monotonic(), deferred)


def _send(dbapi_connection: Any) -> bool:
    """Send the reset without waiting, when this is an idle sync psycopg connection."""
    import psycopg
    from psycopg import pq

    if not isinstance(dbapi_connection, psycopg.Connection):
        return False
    pgconn = dbapi_connection.pgconn
    if (
        pgconn.transaction_status != pq.TransactionStatus.IDLE
        or pgconn.pipeline_status != pq.PipelineStatus.OFF
    ):
        return False
    pgconn.send_query(_SESSION_RESET_BYTES)
    while pgconn.flush():  # non-blocking connection: wait (GIL released) until it is all out
        _wait(pgconn.socket, select.POLLOUT)
    return True


def _finish(dbapi_connection: Any, record: Any, pre_ping: bool) -> None:
    """At checkout: read the reset's answer (deallocating when the census says so) and, if
    asked, make sure a connection that waited long is still there."""
    checked_in = record.info.pop(_CHECKED_IN, None)
    if checked_in is None or checked_in[0] is not dbapi_connection:
        return  # a new connection
    _, since, deferred = checked_in
    try:
        if deferred:
            from_sql, by_protocol = _collect(dbapi_connection)
            if from_sql or not _psycopg_owns(dbapi_connection, by_protocol):
                _deallocate_all(dbapi_connection)
        if pre_ping and time.monotonic() - since > PING_AFTER_IDLE_S:
            _execute_alone(dbapi_connection, ";")
    except Exception as error:
        # The pool discards this connection and checks out another (SQLAlchemy's recipe).
        raise exc.DisconnectionError(f"a pooled connection failed its reset: {error}") from error


def _wait(fd: int, events: int) -> None:
    """Block until ``fd`` is ready, releasing the GIL (poll: no limit on the fd's number)."""
    poller = select.poll()
    poller.register(fd, events)
    poller.poll()


def _collect(conn: Any) -> tuple[int, list[str]]:
    """The reset's results; the census of the first one."""
    from psycopg import pq
    from psycopg.adapt import Transformer

    pgconn = conn.pgconn
    census: tuple[int, list[str]] | None = None
    failure: str | None = None
    while True:
        while pgconn.is_busy():  # wait for the answer with the GIL released, then read it
            _wait(pgconn.socket, select.POLLIN)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status == pq.ExecStatus.TUPLES_OK and census is None:
            loader = Transformer(conn)
            loader.set_pgresult(result)
            row = loader.load_row(0, tuple)
            census = (int(row[0]), list(row[1])) if row else None
        elif result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            failure = failure or (result.error_message.decode(errors="replace").strip())
    if failure or census is None or pgconn.status != pq.ConnStatus.OK:
        raise RuntimeError(failure or "the reset returned no census")
    return census


def reset_now(dbapi_connection: Any) -> None:
    """The reset in place, waiting for it (async connections, or a sync one mid-pipeline)."""
    before = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()  # sync, or SQLAlchemy's adapter of an async one
    cursor.execute(SESSION_RESET)  # several statements: psycopg never prepares it
    from_sql, by_protocol = cursor.fetchone()
    cursor.close()
    raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if from_sql or not _psycopg_owns(raw, by_protocol):
        _deallocate_all(dbapi_connection)
    dbapi_connection.autocommit = before


def _execute_alone(dbapi_connection: Any, sql: str) -> None:
    """Run ``sql`` outside any transaction (autocommit for that moment: a client-side flag)."""
    before = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    cursor.execute(sql)
    cursor.close()
    dbapi_connection.autocommit = before


def _deallocate_all(dbapi_connection: Any) -> None:
    _execute_alone(dbapi_connection, "DEALLOCATE ALL")
    forget_prepared(getattr(dbapi_connection, "driver_connection", dbapi_connection))


def _psycopg_owns(raw: Any, on_server: list[str]) -> bool:
    """Are the server's protocol-level statements exactly the ones psycopg prepared?

    Statements psycopg has evicted but not yet deallocated (it does so before its next
    query) may still be on the server.
    """
    manager = getattr(raw, "_prepared", None)
    if manager is None:
        return not on_server
    ours = {name.decode() for name in manager._names.values()}
    pending = {name.decode() for name in manager._to_flush if name is not None}
    server = set(on_server)
    return ours <= server <= ours | pending and None not in manager._to_flush


def forget_prepared(raw: Any) -> None:
    """Tell psycopg its prepared statements are gone (the server side is empty already, so
    the ``DEALLOCATE ALL`` that ``clear()`` schedules is dropped too)."""
    manager = getattr(raw, "_prepared", None)
    if manager is not None:
        manager.clear()
        manager._to_flush.clear()
