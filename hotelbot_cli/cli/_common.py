"""Options shared by several commands, declared once, and the engine commands connect with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def engine() -> Engine:
    """An engine for DATABASE_URL (or the embedded server) without a long-lived pool."""
    from sqlalchemy.pool import NullPool

    from hotelbot_cli.db.engine import make_engine

    return make_engine(poolclass=NullPool)


def lock_timeout() -> float:
    from hotelbot_cli.settings import Settings

    return Settings.from_env().lock_timeout
