"""``hotelbot db check``: the models against the migrations, and against the database.

The migrations run on a scratch database (or the configured one when none may be made),
then Alembic's autogenerate compares the metadata; roles the migrations created on the
scratch server are dropped again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hotelbot_cli import migrations
from hotelbot_cli.errors import CheckFailed

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


@dataclass(frozen=True)
class CheckReport:
    """``db check``: the heads, the models against the migrations, the models against the database.

    ``differences``: the models against what the migrations build (a scratch database, or the
    configured one when no scratch database may be created). ``database_differences``: the
    models against the configured database itself, compared only when it is at head
    (``database_compared``), as ``alembic check`` does. ``notes`` say what else it did.
    """

    heads: tuple[str, ...]
    differences: tuple[str, ...] = field(default=())
    database: tuple[str, ...] = ()
    database_compared: bool = False
    database_differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return len(self.heads) == 1 and not self.differences and not self.database_differences

    def problems(self) -> list[str]:
        """Each finding as one sentence (empty when the check passed)."""
        found = (
            [] if len(self.heads) == 1 else [f"{len(self.heads)} heads: {', '.join(self.heads)}"]
        )
        found += [f"models and migrations differ: {d}" for d in self.differences]
        found += [f"the database differs from the models: {d}" for d in self.database_differences]
        return found

    def failure(self) -> CheckFailed | None:
        """The verdict of ``db check``: one line naming every finding and what to do."""
        problems = self.problems()
        if not problems:
            return None
        if len(self.heads) != 1:
            hint = "merge them into one"
        elif self.differences:
            hint = "run `hotelbot db revision --autogenerate -m '…'` and review the new file"
        else:
            hint = (
                "the database was changed outside the migrations: undo that change, or make it"
                " a revision (`hotelbot db revision --autogenerate`) so every database gets it"
            )
        message = problems[0] if len(problems) == 1 else f"{len(problems)} problems: "
        if len(problems) > 1:
            message += "; ".join(problems)
        return CheckFailed(message, hint)


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
    """Compare the models with what the migrations build, in a scratch database at head, and
    with the configured database when it is at head (the drift ``alembic check`` reports).

    Falls back to the configured database (which must then be at head) when the role
    may not create databases. Revision 007 creates the cluster-wide role ``app_user``: when
    the check created it (it did not exist before), it is dropped again afterwards.
    """
    from sqlalchemy.pool import NullPool

    from hotelbot_cli.db.engine import make_engine
    from hotelbot_cli.db.scratch import ScratchUnavailable, scratch_database

    head_list = migrations.heads()
    if len(head_list) != 1:
        return CheckReport(heads=head_list)
    notes: list[str] = []
    roles_before = _roles(engine)
    try:
        with scratch_database(engine, "hotelbot_check") as url:
            scratch_engine = make_engine(url, poolclass=NullPool)
            try:
                migrations.upgrade(scratch_engine, "head", lock_timeout)
                with scratch_engine.connect() as conn:
                    differences = tuple(compare(conn))
            finally:
                scratch_engine.dispose()
        notes.append(f"migrated a scratch database ({url.database}) to head and dropped it")
        notes += _drop_new_roles(engine, roles_before)
    except ScratchUnavailable as exc:
        migrations.require_head(engine)
        with engine.connect() as conn:
            differences = tuple(compare(conn))
        notes.append(f"compared the database itself: {exc.message}")
        return CheckReport(
            heads=head_list,
            differences=differences,
            database=head_list,
            database_compared=True,
            notes=tuple(notes),
        )
    at = migrations.current(engine)
    database_differences: tuple[str, ...] = ()
    if set(at) == set(head_list):
        with engine.connect() as conn:
            database_differences = tuple(compare(conn))
    else:
        notes.append(
            f"the database is at {', '.join(at) or 'base (empty)'}, not at head: its schema was"
            " not compared (run `hotelbot db upgrade`)"
        )
    return CheckReport(
        heads=head_list,
        differences=differences,
        database=at,
        database_compared=set(at) == set(head_list),
        database_differences=database_differences,
        notes=tuple(notes),
    )


#: The cluster-wide roles the revisions create (007: ``app_user``). Only these are ever dropped
#: after ``check``: any other new role was made by someone else meanwhile.
MIGRATION_ROLES = frozenset({"app_user"})


def _roles(engine: Engine) -> frozenset[str]:
    """Which of :data:`MIGRATION_ROLES` exist on the server."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT rolname FROM pg_roles").scalars()
        return frozenset(rows) & MIGRATION_ROLES


def _drop_new_roles(engine: Engine, before: frozenset[str]) -> list[str]:
    """Drop the roles the scratch migration created; say what was done (roles are cluster-wide)."""
    from sqlalchemy.exc import DBAPIError

    notes = []
    for role in sorted(_roles(engine) - before):
        quoted = '"' + role.replace('"', '""') + '"'
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP ROLE {quoted}")
            notes.append(f"dropped the role {role} the migrations created on this server")
        except DBAPIError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            notes.append(f"the migrations created the cluster-wide role {role} ({reason})")
    return notes
