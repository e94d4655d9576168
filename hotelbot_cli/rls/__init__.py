"""``hotelbot rls-check``: prove that one hotel can never reach another hotel's rows.

:func:`check` runs the catalog audit, the live probes and the lints in ONE transaction
that is always rolled back (so it is safe on production), and returns an
:class:`~hotelbot_cli.rls.report.RlsReport`. :func:`self_test` plants leaky tables in a
scratch schema, inside a rolled-back transaction, and proves the checks catch them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hotelbot_cli.observability import raw_connection
from hotelbot_cli.rls.report import CheckResult, Ignore, RlsReport, apply_ignores

if TYPE_CHECKING:
    from psycopg import Connection
    from sqlalchemy import Engine

DEFAULT_APP_ROLE = "app_user"


@contextmanager
def rolled_back(engine: Engine, lock_timeout: str = "5s") -> Iterator[Connection[Any]]:
    """A psycopg connection inside one transaction that is always rolled back."""
    raw = raw_connection(engine)
    try:
        conn = raw.driver_connection
        assert conn is not None
        conn.rollback()
        conn.autocommit = False
        conn.execute("SET LOCAL lock_timeout = %s" % _quote(lock_timeout))  # noqa: UP031
        conn.execute("SET LOCAL statement_timeout = '60s'")
        try:
            yield conn
        finally:
            conn.rollback()
    finally:
        raw.close()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run_checks(conn: Connection[Any], app_role: str, probes: bool = True) -> list[CheckResult]:
    """Audit, probes and lints on ``conn`` (in its current transaction; the caller rolls back)."""
    from hotelbot_cli.rls.catalog import audit
    from hotelbot_cli.rls.lints import lint_indexes, lint_policies

    tables, results = audit(conn, app_role)
    results += lint_policies(tables) + lint_indexes(conn, tables)
    if probes and tables and not any(r.id == "app-role-exists" and r.failed for r in results):
        from hotelbot_cli.rls.probes import run_probes

        conn.execute("SAVEPOINT rls_probes")
        results += run_probes(conn, app_role, tables)
        conn.execute("ROLLBACK TO SAVEPOINT rls_probes")
    return results


def _header(conn: Connection[Any], engine: Engine, app_role: str) -> dict[str, str]:
    from hotelbot_cli.settings import redact_url

    version = conn.execute("SHOW server_version").fetchone()
    return {
        "database": redact_url(engine.url),
        "app_role": app_role,
        "server_version": str(version[0]) if version else "?",
    }


def check(
    engine: Engine,
    app_role: str = DEFAULT_APP_ROLE,
    ignores: list[Ignore] | None = None,
    probes: bool = True,
) -> RlsReport:
    """Run every check against the database at head; nothing it writes survives."""
    from hotelbot_cli.migrations import require_head

    require_head(engine)
    with rolled_back(engine) as conn:
        header = _header(conn, engine, app_role)
        results = run_checks(conn, app_role, probes)
    return RlsReport(results=tuple(apply_ignores(results, ignores or [])), **header)


def self_test(engine: Engine, app_role: str = DEFAULT_APP_ROLE) -> RlsReport:
    """Plant leaky tables in a scratch schema, prove each leak is caught, roll everything back."""
    from hotelbot_cli.rls.selftest import run_self_test

    with rolled_back(engine) as conn:
        header = _header(conn, engine, app_role)
        results = run_self_test(conn, app_role)
    return RlsReport(results=tuple(results), **header)
