"""A thin facade over ``alembic.command``: one function per verb, an advisory lock, plain results.

The Alembic scripts ship inside the package (``hotelbot_cli/_alembic`` in a wheel,
``alembic/`` in a source checkout), so every verb works from any directory.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotelbot_cli.errors import DatabaseError, LockTimeout, NotAtHead, UsageError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection, Engine

#: pg_advisory_lock key taken while migrating: b"hotelbot" as a big-endian bigint.
MIGRATION_LOCK_KEY = int.from_bytes(b"hotelbot", "big")


@dataclass(frozen=True)
class RevisionInfo:
    revision: str
    down_revision: str | None
    message: str
    is_head: bool


@dataclass(frozen=True)
class MigrationResult:
    """What an upgrade, downgrade or stamp did."""

    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckReport:
    """``db check``: differences between the models and the migrations, and the heads."""

    heads: tuple[str, ...]
    differences: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return len(self.heads) == 1 and not self.differences


def script_location() -> Path:
    """The directory holding env.py and versions/ (installed or source checkout)."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(
        "the Alembic scripts are missing from this installation"
    )  # pragma: no cover


def make_config(connection: Connection | None = None, **attributes: Any) -> Config:
    """An Alembic Config without alembic.ini; ``connection`` is used by env.py when given."""
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
            down_revision=_one(rev.down_revision),
            message=(rev.doc or "").strip(),
            is_head=rev.revision in head_set,
        )
        for rev in script.walk_revisions()
    ]


def _one(value: str | tuple[str, ...] | list[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


def current(engine: Engine) -> tuple[str, ...]:
    """The revision(s) the database is at, read in a READ ONLY transaction (writes nothing)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        revs = tuple(MigrationContext.configure(conn).get_current_heads())
        conn.rollback()
    return revs


def is_at_head(engine: Engine) -> bool:
    return set(current(engine)) == set(heads())


def require_head(engine: Engine) -> None:
    """Raise NotAtHead (saying which command to run) unless the database is at head."""
    at = current(engine)
    want = heads()
    if set(at) != set(want):
        raise NotAtHead(
            f"the database is at {', '.join(at) or 'base (empty)'}, not at head {', '.join(want)}",
            "run `hotelbot db upgrade` first",
        )


@contextmanager
def migration_lock(engine: Engine, timeout: float) -> Iterator[None]:
    """Hold the migration advisory lock on a connection of its own, waiting at most ``timeout``."""
    deadline = time.monotonic() + timeout
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_conn:
        while not lock_conn.exec_driver_sql(
            f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY})"
        ).scalar():
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another migration holds the lock (waited {timeout:g} s)",
                    "wait for it to finish, or raise HOTELBOT_LOCK_TIMEOUT",
                )
            time.sleep(0.1)
        try:
            yield
        finally:
            lock_conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")


def _run(engine: Engine, verb: str, revision: str, lock_timeout: float) -> MigrationResult:
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from alembic import command

    steps: list[str] = []

    def record(*, step: Any, **_: Any) -> None:
        arrow = "->" if step.is_upgrade else "<-"
        steps.append(f"{arrow} {step.up_revision_id}  {(step.up_revision.doc or '').strip()}")

    with migration_lock(engine, lock_timeout):
        before = current(engine)
        try:
            with engine.begin() as conn:
                config = make_config(conn, on_version_apply=record)
                getattr(command, verb)(config, revision)
        except CommandError as exc:
            raise UsageError(str(exc), "see `hotelbot db history` for valid revisions") from None
        except DBAPIError as exc:
            failed = steps[-1].split()[1] if steps else "?"
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseError(
                f"{verb} failed at {failed}: {first}",
                f"nothing was changed; the database is still at {', '.join(before) or 'base'}",
            ) from exc
        after = current(engine)
    return MigrationResult(before=before, after=after, steps=tuple(steps))


def upgrade(engine: Engine, revision: str = "head", lock_timeout: float = 60.0) -> MigrationResult:
    """Upgrade to ``revision`` in one transaction, holding the migration lock."""
    return _run(engine, "upgrade", revision, lock_timeout)


def downgrade(engine: Engine, revision: str, lock_timeout: float = 60.0) -> MigrationResult:
    """Downgrade to ``revision``; ``base`` removes everything ours, alembic_version included."""
    result = _run(engine, "downgrade", revision, lock_timeout)
    if not result.after:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    return result


def stamp(engine: Engine, revision: str, lock_timeout: float = 60.0) -> MigrationResult:
    """Record ``revision`` as current without running any migration."""
    return _run(engine, "stamp", revision, lock_timeout)


def offline_sql(revision_range: str) -> str:
    """SQL for ``FROM:TO`` (either direction) for review, without a database."""
    from alembic.util import CommandError

    from alembic import command

    if ":" not in revision_range:
        raise UsageError(f"{revision_range!r} is not a range", "use FROM:TO, e.g. base:head")
    start, end = revision_range.split(":", 1)
    config = make_config(url="postgresql+psycopg://")
    verb = "upgrade" if _is_upgrade(start or "base", end or "head") else "downgrade"
    try:
        getattr(command, verb)(config, f"{start or 'base'}:{end or 'head'}", sql=True)
    except CommandError as exc:
        raise UsageError(str(exc), "see `hotelbot db history` for valid revisions") from None
    buffer = config.output_buffer
    assert isinstance(buffer, io.StringIO)
    return buffer.getvalue()


def _is_upgrade(start: str, end: str) -> bool:
    """True when ``end`` is ``start`` or one of its descendants."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    script = script_directory()
    if start == "base" or end in {"head", "heads"}:
        return True
    if end == "base" or start in {"head", "heads"}:
        return False
    try:
        lower = script.get_revision(start)
        upper = script.get_revision(end)
    except (RevisionError, CommandError) as exc:
        raise UsageError(str(exc), "see `hotelbot db history` for valid revisions") from None
    if lower is None or upper is None:  # pragma: no cover - alembic raises first
        raise UsageError(f"unknown revision in {start}:{end}")
    ancestors = {r.revision for r in script.iterate_revisions(upper.revision, "base")}
    return lower.revision in ancestors


def next_revision_id() -> str:
    """Zero-padded successor of the highest numeric revision id (001, 002, …)."""
    numbers = [int(r.revision) for r in history() if r.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:03d}"


def revision(engine: Engine | None, message: str, autogenerate: bool = False) -> Path:
    """Create a new revision file (from the models' differences when ``autogenerate``)."""
    from alembic import command

    if not message.strip():
        raise UsageError("a revision needs a message", "pass -m 'what it changes'")
    rev_id = next_revision_id()
    if autogenerate:
        assert engine is not None
        require_head(engine)
        with engine.connect() as conn:
            script = command.revision(
                make_config(conn), message=message, autogenerate=True, rev_id=rev_id
            )
    else:
        script = command.revision(make_config(), message=message, rev_id=rev_id)
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def compare(conn: Connection) -> list[str]:
    """Readable differences between the models and the schema ``conn`` sees."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from hotelbot_cli.models import Base

    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return [describe_diff(d) for d in compare_metadata(context, Base.metadata)]


def describe_diff(diff: Any) -> str:
    """One line for an Alembic autogenerate diff (a tuple, or a list of modify_* tuples)."""
    if isinstance(diff, list):
        return "; ".join(describe_diff(d) for d in diff)
    kind, *rest = diff
    if kind in {"add_table", "remove_table"}:
        return f"{kind.replace('_', ' ')} {rest[0].name}"
    if kind in {"add_column", "remove_column"}:
        return f"{kind.replace('_', ' ')} {rest[1]}.{rest[2].name}"
    if kind in {"add_index", "remove_index", "add_constraint", "remove_constraint"}:
        obj = rest[0]
        cols = ", ".join(getattr(c, "name", str(c)) for c in getattr(obj, "columns", []))
        return f"{kind.replace('_', ' ')} {obj.name} on {obj.table.name} ({cols})"
    if kind in {"add_fk", "remove_fk"}:
        fk = rest[0]
        return f"{kind.replace('_', ' ')} {fk.name} on {fk.parent.name}"
    if kind.startswith("modify_"):
        _schema, table, column, _kw, old, new = rest
        return f"{kind.replace('_', ' ')} {table}.{column}: {old!s} -> {new!s}"
    return f"{kind} {rest}"  # pragma: no cover - a diff kind Alembic may add later


def check(engine: Engine, lock_timeout: float = 60.0) -> CheckReport:
    """Compare the models with what the migrations build, in a scratch database at head.

    Falls back to the configured database (which must then be at head) when the role
    may not create databases.
    """
    from sqlalchemy.pool import NullPool

    from hotelbot_cli.db.engine import make_engine
    from hotelbot_cli.db.scratch import ScratchUnavailable, scratch_database

    head_list = heads()
    if len(head_list) != 1:
        return CheckReport(heads=head_list)
    try:
        with scratch_database(engine, "hotelbot_check") as url:
            scratch_engine = make_engine(url, poolclass=NullPool)
            try:
                upgrade(scratch_engine, "head", lock_timeout)
                with scratch_engine.connect() as conn:
                    differences = tuple(compare(conn))
            finally:
                scratch_engine.dispose()
    except ScratchUnavailable:
        require_head(engine)
        with engine.connect() as conn:
            differences = tuple(compare(conn))
    return CheckReport(heads=head_list, differences=differences)
