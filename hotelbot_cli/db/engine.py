"""Sync and async engines over psycopg 3, with a real (configurable) connection pool.

Sub-task 2.1 of the spec, with psycopg 3 instead of asyncpg: one driver for
sync code, async code, COPY and pipelining.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

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
    pool = settings.pool
    kwargs: dict[str, Any] = {
        "echo": settings.echo,
        "pool_pre_ping": pool.pre_ping,
        "connect_args": {
            "connect_timeout": settings.connect_timeout,
            "application_name": APPLICATION_NAME,
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
    kwargs.update(overrides)
    return kwargs


def make_engine(
    url: str | URL | None = None, settings: Settings | None = None, **overrides: Any
) -> Engine:
    """A sync engine for ``url`` (or the configured database) with the configured pool."""
    settings = settings or Settings.from_env()
    engine = create_engine(resolve_url(url, settings), **_engine_kwargs(settings, overrides))
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
    engine = _create_async_engine(
        async_url(resolve_url(url, settings)), **_engine_kwargs(settings, overrides)
    )
    from hotelbot_cli.observability import instrument  # SQL logging + pool metrics, always

    instrument(engine)
    for hook in ENGINE_HOOKS:
        hook(engine.sync_engine)
    return engine


_default_engine: Engine | None = None
_default_async_engine: AsyncEngine | None = None


def get_engine() -> Engine:
    """The process-wide engine for the configured database, made on first use."""
    global _default_engine  # noqa: PLW0603 - one lazily built engine per process
    if _default_engine is None:
        _default_engine = make_engine()
    return _default_engine


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
