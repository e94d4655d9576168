"""Alembic environment: runs on a connection handed over by hotelbot, or on DATABASE_URL.

``hotelbot_cli.migrations`` passes its connection in ``config.attributes["connection"]``
(Alembic's documented recipe), so the CLI, the tests and library callers all
migrate through the same code and the same advisory lock. An ``Engine`` there works too
(pytest-alembic hands one over). Plain ``alembic …`` from a checkout (configured by
``[tool.alembic]`` in pyproject.toml) connects to ``sqlalchemy.url`` when set, else to
DATABASE_URL, else to the embedded server, exactly as ``hotelbot`` does.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine

from alembic import context
from hotelbot_cli.models import Base

config = context.config
target_metadata = Base.metadata

if config.cmd_opts is not None and not logging.getLogger().handlers:
    # Plain `alembic …` without an alembic.ini (whose [loggers] would do this): show its
    # "Running upgrade …" lines on stderr, as its own templates do.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-5.5s [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)

COMMON = {
    "target_metadata": target_metadata,
    "compare_type": True,
    "compare_server_default": True,
    "include_schemas": False,
}

#: Offline SQL is for psql, not a DBAPI: with the "named" paramstyle SQLAlchemy writes a
#: literal ``%`` as itself, where psycopg's "pyformat" would double it (``%%I`` in format()).
OFFLINE_DIALECT = "postgresql+psycopg://"


def _options() -> dict[str, object]:
    options = dict(COMMON)
    callback = config.attributes.get("on_version_apply")
    if callback is not None:
        options["on_version_apply"] = callback
    return options


def _url() -> object:
    """An explicit URL: hotelbot's attribute, or ``sqlalchemy.url`` of an alembic.ini if any."""
    if config.attributes.get("url"):
        return config.attributes["url"]
    if config.file_config.has_section(config.config_ini_section):
        return config.get_main_option("sqlalchemy.url")
    return None  # pyproject.toml only: DATABASE_URL or the embedded server


def run_offline() -> None:
    """Emit SQL for review or psql instead of running it (``hotelbot db sql FROM:TO``)."""
    context.configure(
        url=_url() or OFFLINE_DIALECT,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connectable = config.attributes.get("connection")
    if isinstance(connectable, Connection):
        _run(connectable)
        return
    engine = connectable
    if not isinstance(engine, Engine):
        from sqlalchemy.pool import NullPool

        from hotelbot_cli.db.engine import make_engine

        engine = make_engine(_url() or None, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        if engine is not connectable:
            engine.dispose()


def _run(connection: Connection) -> None:
    # One transaction for the whole run: a failing revision leaves the database where it was.
    context.configure(connection=connection, transaction_per_migration=False, **_options())
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
