"""A thin facade over ``alembic.command``: one function per verb, an advisory lock, plain results.

The Alembic scripts ship inside the package (``hotelbot_cli/_alembic`` in a wheel,
``alembic/`` in a source checkout), so every verb works from any directory. ``db check``
is :mod:`hotelbot_cli.migration_check`; new revision files, :mod:`hotelbot_cli.migration_authoring`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotelbot_cli.errors import CheckFailed, DatabaseError, LockTimeout, NotAtHead, UsageError

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
    #: each bounded lock wait that was retried, in order (also listed in ``steps``)
    waits: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class HeadStatus:
    """Where the database is against the scripts' head(s): the one owner of "at head"."""

    current: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)

    def describe(self) -> str:
        """``the database is at X, not at head Y`` (for an error line)."""
        at = ", ".join(self.current) or "base (empty)"
        return f"the database is at {at}, not at head {', '.join(self.heads)}"

    def failure(self) -> CheckFailed | None:
        """The verdict of ``db current --check``."""
        if self.at_head:
            return None
        return CheckFailed(self.describe(), "run `hotelbot db upgrade`")


def head_status(engine: Engine) -> HeadStatus:
    """The database's revision(s) and the scripts' head(s), read-only."""
    return HeadStatus(current(engine), heads())


def is_at_head(engine: Engine) -> bool:
    """True when the database is at every head of the migration scripts."""
    return head_status(engine).at_head


def require_head(engine: Engine) -> None:
    """Raise NotAtHead (saying which command to run) unless the database is at head."""
    status = head_status(engine)
    if not status.at_head:
        raise NotAtHead(status.describe(), "run `hotelbot db upgrade` first")


def _lock_settings() -> tuple[float, int]:
    """(lock_timeout seconds, retries): HOTELBOT_MIGRATION_LOCK_TIMEOUT / _LOCK_RETRIES."""
    from hotelbot_cli import settings

    return settings.migration_lock_timeout(), settings.migration_lock_retries()


class _Superseded(Exception):
    """Another upgrader moved the version while this one was between transactions."""


class _Online:
    """The runner ``migration_steps`` talks to: every transaction it begins is bounded.

    Each transaction sets ``lock_timeout`` (SET LOCAL: nothing leaks to the next user of a
    pooled server connection) and takes the migration lock as a TRANSACTION-level advisory
    lock, so it holds through PgBouncer in transaction mode; after a boundary the version
    is re-read under the lock.
    """

    def __init__(
        self, conn: Connection, lock_timeout: float, lock_wait: float, deadline: float
    ) -> None:
        self.conn = conn
        self.lock_timeout = lock_timeout
        self.deadline = deadline
        self.lock_wait = lock_wait
        self.trans: Any = None
        self.at: tuple[str, ...] = ()
        self.pending: list[str] = []
        self.committed: list[str] = []
        self.notes: list[str] = []
        driver = getattr(conn.connection, "driver_connection", None)
        if driver is not None and hasattr(driver, "add_notice_handler"):
            driver.add_notice_handler(self._notice)

    def _notice(self, diag: Any) -> None:
        """A revision's RAISE WARNING reaches the user (a NOTICE is only chatter)."""
        if getattr(diag, "severity_nonlocalized", None) == "WARNING":
            self.notes.append(f"warning: {diag.message_primary}")

    def begin(self) -> None:
        self.trans = self.conn.begin()
        self.conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
        while not self.conn.exec_driver_sql(
            f"SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ).scalar():
            if time.monotonic() >= self.deadline:
                raise LockTimeout(
                    f"another migration holds the lock (waited {self.lock_wait:g} s)",
                    "wait for it to finish, or raise HOTELBOT_LOCK_TIMEOUT",
                )
            time.sleep(0.1)

    def read_version(self) -> tuple[str, ...]:
        from sqlalchemy import text

        if self.conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
            return ()
        rows = self.conn.exec_driver_sql("SELECT version_num FROM alembic_version")
        return tuple(sorted(r[0] for r in rows))

    def commit(self) -> None:
        self.trans.commit()
        self.trans = None
        self.committed += self.pending
        self.pending.clear()

    def boundary(self) -> None:
        self.commit()
        self.begin()
        if self.read_version() != tuple(sorted(self.at)):
            raise _Superseded

    @contextmanager
    def outside(self) -> Iterator[None]:
        self.commit()
        self.conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield
        finally:
            if self.conn.in_transaction():
                self.conn.commit()  # SQLAlchemy's autobegin; nothing is sent in AUTOCOMMIT
            self.conn.execution_options(isolation_level=self.conn.default_isolation_level)
        self.begin()
        if self.read_version() != tuple(sorted(self.at)):
            raise _Superseded

    def note(self, message: str) -> None:
        self.notes.append(message)


def _lock_not_available(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    # lock_not_available (lock_timeout) or deadlock_detected: both mean "try again later"
    return getattr(orig, "sqlstate", None) in {"55P03", "40P01"}


def _oldest_transaction(engine: Engine) -> str:
    """Who is probably in the way: the oldest open transaction (no query text: it may hold PII)."""
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT pid, state, extract(epoch FROM now() - xact_start)::int"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                    " AND backend_type = 'client backend' ORDER BY xact_start LIMIT 1"
                )
            ).first()
    except Exception:  # pragma: no cover - only a diagnostic
        return ""
    if row is None:
        return ""
    return f"; oldest open transaction: pid {row[0]}, {row[1]}, open {row[2]} s"


def _next_revision(verb: str, at: tuple[str, ...]) -> str:
    """The revision an upgrade (or downgrade) from ``at`` runs next: the one that failed."""
    if verb != "upgrade":
        return ", ".join(at) or "base"
    parent = at[0] if at else None
    for rev in script_directory().walk_revisions():
        if _one(rev.down_revision) == parent:
            return rev.revision
    return "?"  # pragma: no cover - at head nothing runs


def _run(  # noqa: PLR0912, PLR0915 - one retry loop, read top to bottom
    engine: Engine,
    verb: str,
    revision: str,
    lock_timeout: float,
    progress: Callable[[str], None] | None = None,
) -> MigrationResult:
    """Run an Alembic verb through :class:`_Online`, retrying bounded lock waits with backoff.

    A retry re-runs the interrupted revision from its first step (the steps are
    idempotent); what earlier transactions committed is kept.
    """
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from alembic import command
    from hotelbot_cli.migration_steps import RUNNER_KEY, StepBusy

    timeout, retries = _lock_settings()
    steps: list[str] = []
    waits: list[str] = []
    before: tuple[str, ...] | None = None
    runner: _Online | None = None

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    def record(*, step: Any, **_: Any) -> None:
        assert runner is not None
        arrow = "->" if step.is_upgrade else "<-"
        runner.pending.append(
            f"{arrow} {step.up_revision_id}  {(step.up_revision.doc or '').strip()}"
        )
        say(runner.pending[-1])
        if step.is_upgrade:
            runner.at = (step.up_revision_id,)
        else:
            runner.at = tuple(step.down_revision_ids)

    attempt = 0
    deadline = time.monotonic() + lock_timeout  # for the migration lock / another upgrader
    while True:
        runner = None
        try:
            with engine.connect() as conn:
                runner = _Online(conn, timeout, lock_timeout, deadline)
                runner.begin()
                runner.at = runner.read_version()
                if before is None:
                    before = runner.at
                config = make_config(conn, on_version_apply=record, **{RUNNER_KEY: runner})
                try:
                    getattr(command, verb)(config, revision)
                    if verb == "downgrade" and not runner.at:
                        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
                    runner.commit()
                finally:
                    steps += runner.committed
                    for note in runner.notes:
                        say(note)
            break
        except _Superseded:
            continue
        except CommandError as exc:
            raise UsageError(str(exc), "see `hotelbot db history` for valid revisions") from None
        except StepBusy as exc:
            # Another upgrader is doing this step (building the same index): not a lock
            # wait of ours, so it waits for the migration lock's deadline, not the retries.
            assert runner is not None
            if time.monotonic() >= runner.deadline:
                raise LockTimeout(
                    f"{exc} (waited {lock_timeout:g} s)",
                    "wait for the other migration to finish, or raise HOTELBOT_LOCK_TIMEOUT",
                ) from None
            time.sleep(0.5)
            continue
        except DBAPIError as exc:
            if runner is None:  # could not connect: the CLI says so (exit 3)
                raise
            failed = _next_revision(verb, runner.at)
            now_at = ", ".join(current(engine)) or "base"
            busy = _lock_not_available(exc)
            if busy and attempt < retries:
                attempt += 1
                pause = min(0.25 * 2**attempt, 10.0)
                wait = (
                    f"   {failed}: waited {timeout:g} s for a lock (try {attempt}/{retries + 1})"
                    f"{_oldest_transaction(engine)}; retrying in {pause:g} s"
                )
                waits.append(wait)
                say(wait)
                time.sleep(pause)
                continue
            if busy:
                raise LockTimeout(
                    f"{verb} stopped at {failed}: no lock within {timeout:g} s in"
                    f" {retries + 1} tries{_oldest_transaction(engine)}",
                    f"the database is at {now_at}; end the blocking transaction and run again,"
                    " or raise HOTELBOT_MIGRATION_LOCK_TIMEOUT",
                ) from None
            orig = getattr(exc, "orig", None)
            first = str(orig or exc).strip().splitlines()[0]
            raise DatabaseError(
                f"{verb} failed at {failed}: {first}",
                f"the database is still at {now_at}; fix the cause and run again",
            ) from exc
    after = current(engine)
    return MigrationResult(
        before=before or (), after=after, steps=tuple(steps + waits), waits=tuple(waits)
    )


def upgrade(
    engine: Engine,
    revision: str = "head",
    lock_timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> MigrationResult:
    """Upgrade to ``revision``: bounded lock waits, the migration lock in every transaction.

    ``lock_timeout`` bounds the wait for another migration; each statement's own lock wait
    is HOTELBOT_MIGRATION_LOCK_TIMEOUT (retried HOTELBOT_MIGRATION_LOCK_RETRIES times).
    """
    return _run(engine, "upgrade", revision, lock_timeout, progress)


def downgrade(
    engine: Engine,
    revision: str,
    lock_timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> MigrationResult:
    """Downgrade to ``revision``; ``base`` removes everything ours, alembic_version included.

    Refused on a distributed (Citus) schema: the revisions' DDL assumes local tables.
    """
    _refuse_distributed(engine)
    return _run(engine, "downgrade", revision, lock_timeout, progress)


def _refuse_distributed(engine: Engine) -> None:
    from hotelbot_cli import citus
    from hotelbot_cli.observability import raw_connection

    raw = raw_connection(engine)
    try:
        conn = raw.driver_connection
        assert conn is not None
        with conn.cursor() as cur:
            distributed = citus.is_distributed(cur)
        conn.rollback()
    finally:
        raw.close()
    if distributed:
        raise UsageError(
            "the schema is distributed (Citus): downgrades are not supported there",
            "restore a backup taken before `hotelbot db distribute`, or undistribute the"
            " tables with Citus' undistribute_table() first",
        )


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
    relative = relative_steps(end)
    if relative is not None:
        verb = "upgrade" if relative > 0 else "downgrade"
    else:
        verb = "upgrade" if _is_upgrade(start or "base", end or "head") else "downgrade"
    try:
        getattr(command, verb)(config, f"{start or 'base'}:{end or 'head'}", sql=True)
    except CommandError as exc:
        raise UsageError(str(exc), "see `hotelbot db history` for valid revisions") from None
    buffer = config.output_buffer
    assert isinstance(buffer, io.StringIO)
    return buffer.getvalue()


def relative_steps(revision: str) -> int | None:
    """``-1`` → -1, ``+2`` / ``ae10+2`` → 2 (Alembic's relative revisions); None when absolute."""
    import re

    found = re.fullmatch(r"(?:[^@\s]+@)?\w*([+-]\d+)", revision.strip())
    return int(found.group(1)) if found else None


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
