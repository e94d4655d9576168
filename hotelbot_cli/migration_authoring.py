"""``hotelbot db revision``: new revision files, in the checkout the scripts come from.

An installed copy of the package has no place for new revisions; these find the source
checkout (or take ``--source``) and number the next revision.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hotelbot_cli.errors import UsageError
from hotelbot_cli.migrations import scripts, status

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine


def next_revision_id(location: Path | None = None) -> str:
    """Zero-padded successor of the highest numeric revision id (001, 002, …) in ``location``."""
    from alembic.script import ScriptDirectory

    script = (
        ScriptDirectory.from_config(_config_at(location))
        if location
        else scripts.script_directory()
    )
    numbers = [int(r.revision) for r in script.walk_revisions() if r.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:03d}"


def _config_at(location: Path, connection: Connection | None = None) -> Config:
    """:func:`make_config`, but for the migration scripts in ``location``."""
    config = scripts.make_config(connection)
    config.set_main_option("script_location", str(location))
    config.set_main_option("version_locations", str(location / "versions"))
    return config


def _is_installed(location: Path) -> bool:
    """True for scripts inside an installed package (a wheel's ``hotelbot_cli/_alembic``)."""
    import site
    import sysconfig

    roots = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    inside = any(location.resolve().is_relative_to(Path(r).resolve()) for r in roots if r)
    return inside or (location.name == "_alembic" and location.parent.name == "hotelbot_cli")


def find_checkout(start: Path | None = None) -> Path | None:
    """The hotelbot source checkout holding ``start`` (default: the working directory).

    A checkout is a directory with a pyproject.toml naming the project ``hotelbot`` and
    ``alembic/env.py`` beside it; the nearest one, walking up, wins.
    """
    import tomllib

    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if not (pyproject.is_file() and (folder / "alembic" / "env.py").is_file()):
            continue
        try:
            name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        if name == "hotelbot":
            return folder
    return None


def revision_location(source: Path | None = None) -> Path:
    """Where ``db revision`` writes: the scripts of a source checkout, never site-packages.

    ``source`` (a checkout, or its ``alembic/`` directory) > the scripts in use when they are
    a checkout's (an editable install) > the checkout holding the working directory.
    """
    if source is not None:
        for candidate in (source / "alembic", source):
            if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
                if _is_installed(candidate):
                    raise UsageError(
                        f"{candidate} is an installed copy of the migration scripts",
                        "pass the path of a source checkout",
                    )
                return candidate.resolve()
        raise UsageError(
            f"{source} holds no migration scripts (alembic/env.py)",
            "pass the root of a hotelbot source checkout",
        )
    location = scripts.script_location()
    if not _is_installed(location):
        return location
    checkout = find_checkout()
    if checkout is None:
        raise UsageError(
            f"the migration scripts in use are installed ({location}); a new revision belongs"
            " in a source checkout",
            "run it inside your clone of hotelbot, or pass --source PATH",
        )
    return checkout / "alembic"


def revision(
    engine: Engine | None,
    message: str,
    autogenerate: bool = False,
    source: Path | None = None,
) -> Path:
    """Create a new revision file in a source checkout (from the models' differences when
    ``autogenerate``); see :func:`revision_location` for where."""
    from alembic import command

    if not message.strip():
        raise UsageError("a revision needs a message", "pass -m 'what it changes'")
    location = revision_location(source)
    rev_id = next_revision_id(location)
    if autogenerate:
        assert engine is not None
        _require_models_of(location)
        status.require_head(engine)
        with engine.connect() as conn:
            script = command.revision(
                _config_at(location, conn), message=message, autogenerate=True, rev_id=rev_id
            )
    else:
        script = command.revision(_config_at(location), message=message, rev_id=rev_id)
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def _require_models_of(location: Path) -> None:
    """Autogenerate compares the imported models: refuse when they are not the checkout's."""
    import hotelbot_cli

    theirs = location.parent / "hotelbot_cli"
    ours = Path(hotelbot_cli.__file__).resolve().parent
    if theirs.is_dir() and theirs.resolve() != ours:
        raise UsageError(
            f"--autogenerate would compare the models installed in {ours}, not those of {theirs}",
            f"install the checkout editable (pip install -e {location.parent}) and run again",
        )
