"""What bench reads from the database before it runs: its rows, targets, roles and context.

All of it on the owner's autocommit connection, as the tables' owner (or a superuser).
An owner that bypasses no row level security reads with FORCE lifted in a rolled-back
transaction, and the owner baseline of the isolation comparison cannot be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotelbot_cli.bench.targets import load_targets
from hotelbot_cli.bench.workload import APP_ROLE, Context, Target
from hotelbot_cli.errors import HotelbotError, UsageError

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

#: SECURITY DEFINER function that maps a WhatsApp number to a hotel id for app_user,
#: which cannot read the hotels of other tenants (see migration 007).
RESOLVE_FUNCTIONS = ("hotelbot_hotel_id_for_whatsapp",)

#: The tables bench reads its targets and row counts from.
_TARGET_TABLES = ("hotels", "guests", "conversations", "messages", "triggers")


class EmptyDatabase(HotelbotError):
    """There is nothing to benchmark."""


@dataclass(frozen=True)
class Survey:
    """The database as bench found it."""

    dataset: dict[str, int]  # rows per table
    targets: list[Target]
    server_version: str
    #: app_user when the connecting role may act as it; None: it is missing or not granted.
    role: str | None
    ctx: Context
    #: Why the owner baseline (no RLS) cannot be measured; None when it can.
    baseline_skipped: str | None


def _dataset(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in _TARGET_TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def _bypasses_rls(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])


def _read_without_force(
    conn: psycopg.Connection[Any], per_hotel: int
) -> tuple[dict[str, int], list[Target]]:
    """Row counts and targets as the tables' owner, FORCE lifted in a rolled-back transaction.

    As ``hotelbot seed`` does; the ALTERs wait at most 2 s for their locks and are undone.
    Not the owner either: a UsageError saying which role bench needs.
    """
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL lock_timeout = '2s'")
            for table in _TARGET_TABLES:
                conn.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            return _dataset(conn), load_targets(conn, per_hotel)
    except psycopg.errors.InsufficientPrivilege:
        raise UsageError(
            "bench reads its targets as the tables' owner, a superuser or a BYPASSRLS role",
            "connect as the role that ran `hotelbot db upgrade`",
        ) from None


def _app_role(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
        (APP_ROLE,),
    ).fetchone()
    return APP_ROLE if row and row[0] else None


def find_resolve_function(conn: psycopg.Connection[Any]) -> str | None:
    """The SECURITY DEFINER function that resolves a WhatsApp number, if migration 007 made one."""
    row = conn.execute(
        "SELECT proname FROM pg_proc WHERE proname = ANY(%(names)s) AND prosecdef"
        " ORDER BY array_position(%(names)s, proname::text) LIMIT 1",
        {"names": list(RESOLVE_FUNCTIONS)},
    ).fetchone()
    return str(row[0]) if row else None


def survey(admin: psycopg.Connection[Any], owner_url: URL, per_hotel: int) -> Survey:
    """Read the database on ``admin``; a database with nothing to run on is EmptyDatabase."""
    from hotelbot_cli.db.tenant import propagates_set_local, signing_key
    from hotelbot_cli.settings import tenant_ttl_from_env

    baseline_skipped = None
    if _bypasses_rls(admin):
        dataset = _dataset(admin)
        targets = load_targets(admin, per_hotel)
    else:
        # FORCE row level security hides every row from an owner that bypasses none:
        # read the targets with FORCE lifted in a rolled-back transaction; the owner
        # baseline (no RLS) cannot be measured, the tenant side can.
        dataset, targets = _read_without_force(admin, per_hotel)
        baseline_skipped = (
            f"{owner_url.username or 'the connecting role'} bypasses no row level"
            " security (a superuser or BYPASSRLS role measures it)"
        )
    if dataset["hotels"] == 0:
        raise EmptyDatabase("the database has no hotels to benchmark", "run `hotelbot seed` first")
    if not targets:
        raise EmptyDatabase(
            "no active hotel has a guest with a conversation",
            "run `hotelbot seed` first",
        )
    row = admin.execute("SHOW server_version").fetchone()
    return Survey(
        dataset=dataset,
        targets=targets,
        server_version=str(row[0]) if row else "",
        role=_app_role(admin),
        ctx=Context(
            resolve_function=find_resolve_function(admin),
            tenant_key=signing_key(admin),
            propagate=propagates_set_local(admin),
            tenant_ttl=tenant_ttl_from_env(),
        ),
        baseline_skipped=baseline_skipped,
    )
