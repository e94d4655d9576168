"""The Alembic scripts that ship with the package: where they are, a Config, their revisions.

The scripts are ``hotelbot_cli/_alembic`` in a wheel and ``alembic/`` in a source
checkout, so every verb works from any directory and without an alembic.ini. Everything
that needs the scripts asks :func:`script_location` here at call time (tests point it at a
copy by patching it on this module).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hotelbot_cli.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection


@dataclass(frozen=True)
class RevisionInfo:
    revision: str
    down_revision: str | None
    message: str
    is_head: bool


def script_location() -> Path:
    """The directory holding env.py and versions/ (installed or source checkout)."""
    package = Path(__file__).resolve().parent.parent  # hotelbot_cli/
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(
        "the Alembic scripts are missing from this installation"
    )  # pragma: no cover


def make_config(connection: Connection | None = None, **attributes: object) -> Config:
    """An Alembic Config without alembic.ini; ``connection`` is used by env.py when given.

    Keep in step with ``[tool.alembic]`` in pyproject.toml (plain ``alembic`` in a checkout).
    """
    from alembic.config import Config

    config = Config(output_buffer=io.StringIO())
    location = script_location()
    config.set_main_option("script_location", str(location))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(location / "versions"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes.update(attributes)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(make_config())


def heads() -> tuple[str, ...]:
    return tuple(script_directory().get_heads())


def history() -> list[RevisionInfo]:
    """Every revision, newest first."""
    script = script_directory()
    head_set = set(script.get_heads())
    return [
        RevisionInfo(
            revision=rev.revision,
            down_revision=joined_revisions(rev.down_revision),
            message=(rev.doc or "").strip(),
            is_head=rev.revision in head_set,
        )
        for rev in script.walk_revisions()
    ]


def joined_revisions(value: str | tuple[str, ...] | list[str] | None) -> str | None:
    """A revision's ``down_revision`` as one string (a merge's parents joined by commas)."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)
