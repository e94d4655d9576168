"""Options shared by several commands, declared once, and the engine commands connect with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

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


#: The largest count any option accepts (PostgreSQL's int4): a bigger one is a typo, exit 2.
MAX_COUNT = 2**31 - 1
#: The longest duration any option accepts, in seconds (a week).
MAX_SECONDS = 7 * 24 * 3600.0


def finite(value: float | None) -> float | None:
    """Option callback: refuse nan/inf (click's ranges let NaN through)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def count_option(*names: str, help: str, minimum: int = 1, maximum: int = MAX_COUNT) -> Any:
    """A whole-number option bounded on both sides (a huge value is a usage error, exit 2)."""
    return typer.Option(*names, help=help, min=minimum, max=maximum)


def seconds_option(*names: str, help: str, minimum: float = 0.0, **kwargs: Any) -> Any:
    """A duration option: finite, at least ``minimum``, at most a week."""
    return typer.Option(*names, help=help, min=minimum, max=MAX_SECONDS, callback=finite, **kwargs)
