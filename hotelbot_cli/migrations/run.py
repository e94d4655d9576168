"""``db upgrade``/``downgrade``/``stamp``: an Alembic verb run online, lock waits retried.

Every transaction goes through :class:`~hotelbot_cli.migrations.online.OnlineRunner`; a
bounded lock wait that times out is retried with backoff, and any other failure becomes
one of our errors saying where the database was left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from hotelbot_cli.errors import DatabaseError, LockTimeout, UsageError
from hotelbot_cli.migrations.online import OnlineRunner, Superseded
from hotelbot_cli.migrations.scripts import joined_revisions, make_config, script_directory
from hotelbot_cli.migrations.status import current

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass(frozen=True)
class MigrationResult:
    """What an upgrade, downgrade or stamp did."""

    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: tuple[str, ...] = ()
    #: each bounded lock wait that was retried, in order (also listed in ``steps``)
    waits: tuple[str, ...] = ()


class LockSettings(NamedTuple):
    """How long one statement may wait for a lock, and how often such a wait is retried."""

    lock_timeout: float
    retries: int


def lock_settings() -> LockSettings:
    """HOTELBOT_MIGRATION_LOCK_TIMEOUT (seconds) and HOTELBOT_MIGRATION_LOCK_RETRIES."""
    from hotelbot_cli import settings

    return LockSettings(settings.migration_lock_timeout(), settings.migration_lock_retries())


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
        if joined_revisions(rev.down_revision) == parent:
            return rev.revision
    return "?"  # pragma: no cover - at head nothing runs


def _run(  # noqa: PLR0912, PLR0915 - one retry loop, read top to bottom
    engine: Engine,
    verb: str,
    revision: str,
    lock_timeout: float,
    progress: Callable[[str], None] | None = None,
) -> MigrationResult:
    """Run an Alembic verb through :class:`OnlineRunner`, retrying bounded lock waits with backoff.

    A retry re-runs the interrupted revision from its first step (the steps are
    idempotent); what earlier transactions committed is kept.
    """
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from alembic import command
    from hotelbot_cli.migration_steps import RUNNER_KEY, StepBusy

    timeout, retries = lock_settings()
    steps: list[str] = []
    waits: list[str] = []
    before: tuple[str, ...] | None = None
    runner: OnlineRunner | None = None

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    attempt = 0
    deadline = time.monotonic() + lock_timeout  # for the migration lock / another upgrader
    while True:
        runner = None
        try:
            with engine.connect() as conn:
                runner = OnlineRunner(conn, timeout, lock_timeout, deadline, progress)
                runner.begin()
                runner.at = runner.read_version()
                if before is None:
                    before = runner.at
                config = make_config(
                    conn, on_version_apply=runner.on_version_apply, **{RUNNER_KEY: runner}
                )
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
        except Superseded:
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
