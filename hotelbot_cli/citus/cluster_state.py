"""What ``db distribute`` depends on, read from the coordinator, and whether it can run there.

:func:`read_state` asks the catalogs (Citus' and PostgreSQL's) once; the plan is built from
the :class:`ClusterState` alone, so it can be tested without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from hotelbot_cli.citus import citus_version
from hotelbot_cli.errors import HotelbotError
from hotelbot_cli.models import TENANT_TABLES

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: The reference table and the tenant tables, in the order they are distributed
#: (the first tenant table is the colocation group's anchor).
REFERENCE = "hotels"
APP_ROLE = "app_user"
KEY_TABLE = "hotelbot_private.tenant_key"


class NotDistributable(HotelbotError):
    """The database is not a Citus coordinator with workers (exit 1: nothing was changed)."""


class ForeignKey(NamedTuple):
    """A foreign key among our tables, as ``pg_get_constraintdef`` gives it."""

    table: str
    name: str
    definition: str


class Policy(NamedTuple):
    """A policy on one of our tables, its expressions as ``pg_policies`` gives them."""

    table: str
    name: str
    using: str | None
    check: str | None


@dataclass(frozen=True)
class ClusterState:
    """What the plan depends on, read from the coordinator (see :func:`read_state`)."""

    database: str
    citus_version: str | None
    is_coordinator: bool = False
    workers: tuple[str, ...] = ()
    propagate_set_commands: str | None = None
    #: table -> 'reference' | 'distributed' (Citus tables among ours)
    citus_tables: dict[str, str] = field(default_factory=dict)
    #: the foreign keys among our tables
    foreign_keys: tuple[ForeignKey, ...] = ()
    #: the policies on our tables
    policies: tuple[Policy, ...] = ()
    #: worker -> may app_user log in there
    app_login: dict[str, bool] = field(default_factory=dict)
    has_key: bool = True


def refusal(state: ClusterState) -> str | None:
    """Why ``db distribute`` cannot run here (None: it can)."""
    if state.citus_version is None:
        return (
            "this database is not a Citus database: the citus extension is not installed"
            " (CREATE EXTENSION citus on the coordinator and every worker, then add the workers)"
        )
    if not state.is_coordinator:
        return "this is not the Citus coordinator (point DATABASE_URL at the coordinator)"
    if not state.workers:
        return (
            "the coordinator has no active worker"
            " (add one: SELECT citus_add_node('worker-host', 5432))"
        )
    if not state.has_key:
        return "the tenant key is missing (run `hotelbot db upgrade`: revision 009 creates it)"
    return None


def _scalar(conn: Connection, sql: str, **params: object) -> Any:
    from sqlalchemy import text

    return conn.execute(text(sql), params).scalar()


def _rows(conn: Connection, sql: str, **params: object) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    return [tuple(row) for row in conn.execute(text(sql), params)]


def read_state(conn: Connection) -> ClusterState:
    """The coordinator's state as :func:`~hotelbot_cli.citus.plan.build_plan` needs it."""
    database = str(_scalar(conn, "SELECT current_database()"))
    version = citus_version(conn.connection.driver_connection)
    has_key = bool(_scalar(conn, f"SELECT to_regclass('{KEY_TABLE}') IS NOT NULL"))
    if version is None:
        return ClusterState(database=database, citus_version=None, has_key=has_key)
    ours = [REFERENCE, *TENANT_TABLES]
    workers = tuple(
        f"{host}:{port}"
        for host, port in _rows(
            conn,
            "SELECT nodename, nodeport FROM pg_dist_node WHERE isactive"
            " AND noderole = 'primary' AND groupid <> 0 ORDER BY nodeid",
        )
    )
    setting = _scalar(
        conn,
        "SELECT s.opt FROM pg_db_role_setting r CROSS JOIN unnest(r.setconfig) AS s(opt)"
        " WHERE r.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND r.setrole = 0 AND s.opt LIKE 'citus.propagate_set_commands=%'",
    )
    citus_tables = {
        str(name): str(kind)
        for name, kind in _rows(
            conn,
            "SELECT logicalrelid::regclass::text,"
            " CASE WHEN partmethod = 'n' THEN 'reference' ELSE 'distributed' END"
            " FROM pg_dist_partition WHERE logicalrelid::regclass::text = ANY(:t)",
            t=ours,
        )
    }
    fks = tuple(
        ForeignKey(str(t), str(n), str(d))
        for t, n, d in _rows(
            conn,
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid::regclass::text = ANY(:t) AND confrelid::regclass::text = ANY(:t)"
            " ORDER BY conrelid::regclass::text <> 'hotels', conname",
            t=ours,
        )
    )
    policies = tuple(
        Policy(str(t), str(p), q, w)
        for t, p, q, w in _rows(
            conn,
            "SELECT tablename, policyname, qual, with_check FROM pg_policies"
            " WHERE schemaname = current_schema() AND tablename = ANY(:t)"
            " ORDER BY tablename, policyname",
            t=ours,
        )
    )
    logins = {
        f"{host}:{port}": result == "t"
        for host, port, ok, result in _rows(
            conn,
            "SELECT nodename, nodeport, success, result FROM run_command_on_workers("
            f"$$SELECT rolcanlogin FROM pg_roles WHERE rolname = '{APP_ROLE}'$$)",
        )
        if ok
    }
    return ClusterState(
        database=database,
        citus_version=str(version),
        is_coordinator=bool(_scalar(conn, "SELECT citus_is_coordinator()")),
        workers=workers,
        propagate_set_commands=setting.split("=", 1)[1] if setting else None,
        citus_tables=citus_tables,
        foreign_keys=fks,
        policies=policies,
        app_login=logins,
        has_key=has_key,
    )
