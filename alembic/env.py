"""Alembic environment: runs on a connection handed over by hotelbot, or on DATABASE_URL.

``hotelbot_cli.migrations`` passes its connection in ``config.attributes["connection"]``
(Alembic's documented recipe), so the CLI, the tests and library callers all
migrate through the same code and the same advisory lock.
"""

from __future__ import annotations

from alembic import context
from hotelbot_cli.models import Base

config = context.config
target_metadata = Base.metadata

COMMON = {
    "target_metadata": target_metadata,
    "compare_type": True,
    "compare_server_default": True,
    "include_schemas": False,
}


def _options() -> dict[str, object]:
    options = dict(COMMON)
    callback = config.attributes.get("on_version_apply")
    if callback is not None:
        options["on_version_apply"] = callback
    return options


def run_offline() -> None:
    """Emit SQL for review instead of running it (``hotelbot db sql FROM:TO``)."""
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from sqlalchemy.pool import NullPool

        from hotelbot_cli.db.engine import make_engine

        engine = make_engine(config.attributes.get("url"), poolclass=NullPool)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # One transaction for the whole run: a failing revision leaves the database where it was.
    context.configure(connection=connection, transaction_per_migration=False, **_options())
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
