"""Sync and async engines over psycopg 3, with a real (configurable) connection pool.

Sub-task 2.1 of the spec, with psycopg 3 instead of asyncpg: one driver for
sync code, async code, COPY and pipelining.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from hotelbot_cli.errors import ConfigError, UsageError
from hotelbot_cli.settings import Settings, async_url, normalize_url

APPLICATION_NAME = "hotelbot"

#: Called with every engine this module makes (sync engines, and async engines' sync_engine),
#: so instrumentation such as SQL logging covers every engine of the process.
ENGINE_HOOKS: list[Callable[[Engine], None]] = []


def resolve_url(url: str | URL | None = None, settings: Settings | None = None) -> URL:
    """The URL to use: explicit > DATABASE_URL > the embedded server (started if needed)."""
    if isinstance(url, URL):
        return normalize_url(url.render_as_string(hide_password=False))
    if url:
        return normalize_url(url)
    settings = settings or Settings.from_env()
    if settings.database_url:
        return normalize_url(settings.database_url)
    from hotelbot_cli import embedded

    return normalize_url(embedded.start(settings.data_dir))


def _engine_kwargs(settings: Settings, overrides: dict[str, Any]) -> dict[str, Any]:
    """create_engine's arguments; ``pool_pre_ping`` becomes :func:`_install_liveness`'s
    check (the caller reads :func:`_wants_ping` first), SQLAlchemy's own ping never runs."""
    pool = settings.pool
    kwargs: dict[str, Any] = {
        "echo": settings.echo,
        "connect_args": {
            "connect_timeout": settings.connect_timeout,
            "application_name": APPLICATION_NAME,
            "prepare_threshold": settings.prepare_threshold,
        },
    }
    if pool.kind == "null" or overrides.get("poolclass") is NullPool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            pool_recycle=pool.recycle,
            pool_use_lifo=True,
        )
    connect_args = {**kwargs["connect_args"], **overrides.pop("connect_args", {})}
    kwargs.update(overrides)
    kwargs["connect_args"] = connect_args
    kwargs["pool_pre_ping"] = False
    return kwargs


def _wants_ping(settings: Settings, overrides: dict[str, Any]) -> bool:
    return bool(overrides.get("pool_pre_ping", settings.pool.pre_ping))


#: What a check-in runs: the census of prepared statements that decides ``DEALLOCATE ALL``,
#: then all of ``DISCARD ALL`` but ``DISCARD PLANS`` and that, in one simple query.
#: Cached plans are not session state a request can shape (the server re-plans when the
#: role, search_path or a table changes); the WhatsApp lookup after ``DISCARD ALL`` took
#: +55-65 µs. psycopg's own prepared statements (protocol-level: SQL cannot make one) are
#: what saves a tenant operation its planning, and the policies make that dear: with them
#: dropped at every check-in, psycopg never reached its threshold, and ``due_guests`` took
#: ~200 µs more per checkout than on a connection never reset.
RESET_SESSION = (
    "SELECT name, from_sql FROM pg_catalog.pg_prepared_statements;"  # first: its rows are read
    " CLOSE ALL; RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; UNLISTEN *;"
    " SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)

#: Key of a pool record's ``info`` for a checkout left as the pool handed it out.
UNTOUCHED = "hotelbot.untouched"


def leave_untouched(pooled: Any) -> None:
    """Declare that a checked-out connection ran only the library's own fixed statements,
    outside any transaction: its session is as clean as the pool handed it out, so its
    check-in skips the reset (a round trip, ~40 % of the WhatsApp lookup's checkout).

    Call it last, right before ``pooled.close()``; anything run after it is not covered.
    """
    pooled.info[UNTOUCHED] = True


def _discard_on_checkin(dbapi_connection: Any, record: Any) -> None:
    """Whatever a request did to its session never reaches the next user of the connection.

    :data:`RESET_SESSION` after the pool's rollback drops settings (tenant, role,
    search_path), temp tables, cursors, LISTEN and advisory locks. Prepared statements go
    too unless every one of them is psycopg's, as psycopg made it (see
    :func:`_only_psycopgs`). It runs in autocommit mode (a client-side flag): no transaction
    is left open. A checkout marked by :func:`leave_untouched` needs none of it.
    """
    record.info[CHECKED_IN_AT] = time.monotonic()
    if dbapi_connection is None or record.info.pop(UNTOUCHED, False):
        return
    before = dbapi_connection.autocommit
    try:
        dbapi_connection.autocommit = True
        run_async = getattr(dbapi_connection, "run_async", None)
        if run_async is not None:  # SQLAlchemy's adapter of psycopg's AsyncConnection
            run_async(_reset_async)
        else:
            _reset(dbapi_connection)
        dbapi_connection.autocommit = before
    except Exception as exc:  # a connection we cannot clean must not be reused
        record.invalidate(exc)


def _reset(conn: Any) -> None:
    cursor = conn.cursor()
    cursor.execute(RESET_SESSION, prepare=False)  # never worth preparing (nor possible)
    if not _only_psycopgs(conn, cursor.fetchall()):  # the first result: the census
        cursor.execute("DEALLOCATE ALL", prepare=False)
        _forget_prepared(conn)
    cursor.close()


async def _reset_async(conn: Any) -> None:
    """:func:`_reset` on the driver's own AsyncConnection: the adapter's cursor takes no
    ``prepare=``, and without it psycopg would try to prepare the reset, fail, and the
    connection be replaced at every check-in."""
    cursor = conn.cursor()
    await cursor.execute(RESET_SESSION, prepare=False)
    if not _only_psycopgs(conn, await cursor.fetchall()):
        await cursor.execute("DEALLOCATE ALL", prepare=False)
        _forget_prepared(conn)
    await cursor.close()


def _only_psycopgs(raw: Any, statements: list[tuple[str, bool]]) -> bool:
    """Whether the session's prepared statements (``(name, from_sql)``) may stay.

    SQL can only make ``from_sql`` statements (PREPARE); only the client's protocol
    messages make the others, and on this connection that is psycopg. A request that
    PREPAREd anything, or dropped or replaced one of psycopg's (DEALLOCATE, then PREPARE of
    the same name), leaves a ``from_sql`` one or a name psycopg knows missing: then all go.
    """
    if any(from_sql for _name, from_sql in statements):
        return False
    manager = getattr(raw, "_prepared", None)
    known = getattr(manager, "_names", None)
    if known is None:  # not the psycopg this was written for: keep nothing
        return not statements
    protocol = {name for name, _from_sql in statements}
    return all(name.decode() in protocol for name in known.values())


def _forget_prepared(raw: Any) -> None:
    """Tell psycopg its prepared statements are gone.

    Otherwise it would run a statement it believes prepared and get ``prepared statement
    "_pg3_0" does not exist``. The server side is empty already, so the DEALLOCATE ALL
    that ``clear()`` schedules is dropped too.
    """
    manager = getattr(raw, "_prepared", None)
    if manager is not None and manager.clear():
        manager._to_flush.clear()


def _install_reset(engine: Engine) -> None:
    if not isinstance(engine.pool, NullPool):  # NullPool closes the connection anyway
        event.listen(engine.pool, "checkin", _discard_on_checkin)


#: Key of a pool record's ``info``: when the connection was last checked in (monotonic s).
CHECKED_IN_AT = "hotelbot.checked_in_at"
#: A checkout of a connection idle longer than this pings the server (one round trip).
PING_IDLE_AFTER = 30.0


def _install_liveness(engine: Engine, dialect: Any) -> None:
    """Pre-ping that costs a round trip only where one can tell something.

    SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` at every checkout: the WhatsApp
    lookup (``find_hotel`` on the bot's engine) took 252-270 µs with it and 157-169 µs
    without. A server that ends a session (a restart, ``pg_terminate_backend``,
    ``idle_session_timeout``, PgBouncer closing a client) says so on the socket, so a
    connection used in the last :data:`PING_IDLE_AFTER` seconds is only polled (no round
    trip); one idle longer, which a firewall or NAT may have dropped without a word, is
    pinged as before. A connection found dead is replaced (``DisconnectionError``: the pool
    retries with a new one).
    """
    if not isinstance(engine.pool, NullPool):  # every NullPool checkout is a new connection
        event.listen(engine.pool, "checkout", functools.partial(_check_alive, dialect))


def _check_alive(dialect: Any, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    from sqlalchemy.exc import DisconnectionError

    checked_in = record.info.get(CHECKED_IN_AT)
    if checked_in is None:  # never handed out before: it was just opened
        return
    if time.monotonic() - checked_in > PING_IDLE_AFTER:
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the ping met, the connection is not usable
            raise DisconnectionError(f"the pooled connection failed its ping: {exc}") from exc
        return
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)  # async adapter
    if not socket_alive(driver.pgconn):
        raise DisconnectionError("the server closed this pooled connection")


def socket_alive(pgconn: Any, reads: int = 4) -> bool:
    """Whether an idle libpq connection still stands, without a round trip.

    A server ends a session with a FATAL message, then the end of the stream: the first
    read takes the message, the next one meets the end (libpq then fails the read and marks
    the connection bad). So whatever arrived is read until nothing more is waiting (a
    notification or a parameter change leaves it standing), at most ``reads`` times.
    """
    import select

    import psycopg
    from psycopg.pq import ConnStatus

    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        for _ in range(reads):
            if not poller.poll(0):
                break
            pgconn.consume_input()
    except (OSError, psycopg.OperationalError):  # the stream ended, or was closed here
        return False
    return bool(pgconn.status == ConnStatus.OK)


#: One query, run once per new connection of the bot's engine: can this login (or a role
#: it may become) bypass row level security?
_PRIVILEGED_LOGIN = """
SELECT string_agg(o.rolname || CASE WHEN o.rolsuper THEN ' (superuser)'
                                    WHEN o.rolbypassrls THEN ' (BYPASSRLS)'
                                    ELSE ' (owns tables with row level security)' END, ', ')
  FROM pg_catalog.pg_roles o
 WHERE pg_catalog.pg_has_role(session_user, o.oid, 'MEMBER')
   AND (o.rolsuper OR o.rolbypassrls OR EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c WHERE c.relowner = o.oid AND c.relrowsecurity))
"""


class UnsafeLogin(UsageError):
    """The bot's URL logs in as a role that could bypass row level security."""


def _refuse_privileged_login(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(_PRIVILEGED_LOGIN)
    (powers,) = cursor.fetchone()
    cursor.close()
    if not dbapi_connection.autocommit:
        dbapi_connection.rollback()
    if powers:
        raise UnsafeLogin(
            f"the bot's login may bypass row level security: {powers}",
            "point HOTELBOT_APP_DATABASE_URL at a login made by `hotelbot db create-login`",
        )


def make_engine(
    url: str | URL | None = None, settings: Settings | None = None, **overrides: Any
) -> Engine:
    """A sync engine for ``url`` (or the configured database) with the configured pool."""
    settings = settings or Settings.from_env()
    ping = _wants_ping(settings, overrides)
    engine = create_engine(resolve_url(url, settings), **_engine_kwargs(settings, overrides))
    _install_reset(engine)
    if ping:
        _install_liveness(engine, engine.dialect)
    from hotelbot_cli.observability import instrument  # SQL logging + pool metrics, always

    instrument(engine)
    for hook in ENGINE_HOOKS:
        hook(engine)
    return engine


def make_async_engine(
    url: str | URL | None = None, settings: Settings | None = None, **overrides: Any
) -> AsyncEngine:
    """An async engine (psycopg 3 async) with the same pool settings."""
    settings = settings or Settings.from_env()
    ping = _wants_ping(settings, overrides)
    engine = _create_async_engine(
        async_url(resolve_url(url, settings)), **_engine_kwargs(settings, overrides)
    )
    _install_reset(engine.sync_engine)
    if ping:
        _install_liveness(engine.sync_engine, engine.sync_engine.dialect)
    from hotelbot_cli.observability import instrument  # SQL logging + pool metrics, always

    instrument(engine)
    for hook in ENGINE_HOOKS:
        hook(engine.sync_engine)
    return engine


def app_url(settings: Settings | None = None) -> URL:
    """The bot's own login (HOTELBOT_APP_DATABASE_URL); a ConfigError when it is not set."""
    settings = settings or Settings.from_env()
    if not settings.app_database_url:
        raise ConfigError(
            "HOTELBOT_APP_DATABASE_URL is not set",
            "create the bot's login with `hotelbot db create-login` and export its URL",
        )
    return normalize_url(settings.app_database_url, "HOTELBOT_APP_DATABASE_URL")


def make_app_engine(
    url: str | URL | None = None, settings: Settings | None = None, **overrides: Any
) -> Engine:
    """The bot's engine: its own login, refused at connect when it could bypass RLS."""
    settings = settings or Settings.from_env()
    engine = make_engine(url or app_url(settings), settings, **overrides)
    event.listen(engine, "connect", _refuse_privileged_login)
    return engine


_default_engine: Engine | None = None
_default_app_engine: Engine | None = None
_default_async_engine: AsyncEngine | None = None


def get_engine() -> Engine:
    """The process-wide engine for the configured database, made on first use."""
    global _default_engine  # noqa: PLW0603 - one lazily built engine per process
    if _default_engine is None:
        _default_engine = make_engine()
    return _default_engine


def get_app_engine() -> Engine:
    """The engine tenant sessions use by default: the bot's login when configured, else
    the owner's engine (tenant code then runs as ``app_user`` all the same)."""
    global _default_app_engine  # noqa: PLW0603 - one lazily built engine per process
    if _default_app_engine is None:
        if not Settings.from_env().app_database_url:
            return get_engine()
        _default_app_engine = make_app_engine()
    return _default_app_engine


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """Session factory bound to ``engine`` (default: the process-wide engine)."""
    return sessionmaker(engine or get_engine(), expire_on_commit=False)


def async_session_factory(engine: AsyncEngine | None = None) -> async_sessionmaker[AsyncSession]:
    """Async session factory, as ``AsyncSessionLocal`` in the spec."""
    global _default_async_engine  # noqa: PLW0603 - one lazily built engine per process
    if engine is None:
        if _default_async_engine is None:
            _default_async_engine = make_async_engine()
        engine = _default_async_engine
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_db() -> AsyncIterator[AsyncSession]:
    """The spec's FastAPI-style dependency: one AsyncSession per request, always closed."""
    async with async_session_factory()() as session:
        yield session
