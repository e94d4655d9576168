"""``hotelbot rls-check``: prove that one tenant can never reach another tenant's data.

:func:`check` runs the static audit (:mod:`~hotelbot_cli.rls.audit`), the live probes, the
effect probes with canaries and the lints in ONE transaction that is always rolled back (so
it is safe on production), and returns an :class:`~hotelbot_cli.rls.report.RlsReport`.
:func:`self_test` plants one leak per class in a scratch schema, inside a rolled-back
transaction, and proves the checks catch them. What is the tenant comes from
:class:`~hotelbot_cli.rls.config.RlsConfig` (``[tool.hotelbot.rls-check]``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hotelbot_cli.observability import raw_connection
from hotelbot_cli.rls.config import RlsConfig, load_config
from hotelbot_cli.rls.report import CheckResult, Ignore, RlsReport, apply_ignores

if TYPE_CHECKING:
    from psycopg import Connection
    from sqlalchemy import Engine

    from hotelbot_cli.rls.audit import Audit

DEFAULT_APP_ROLE = "app_user"

__all__ = ["DEFAULT_APP_ROLE", "RlsConfig", "check", "load_config", "run_checks", "self_test"]


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


def _timed(work: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run one phase; its time is shared by the results it produced (for JUnit)."""
    start = time.perf_counter()
    results = work()
    share = (time.perf_counter() - start) / max(len(results), 1)
    return [replace(r, seconds=share) for r in results]


def _citus_tables(conn: Connection[Any]) -> frozenset[str]:
    """Our tables that Citus distributes or replicates (empty on a plain PostgreSQL)."""
    from hotelbot_cli import citus

    if not citus.is_citus(conn):
        return frozenset()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname"
            " ELSE quote_ident(n.nspname) || '.' || quote_ident(c.relname) END"
            " FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
        )
        return frozenset(str(r[0]) for r in cur.fetchall())


def run_checks(
    conn: Connection[Any], cfg: RlsConfig | str | None = None, probes: bool = True
) -> list[CheckResult]:
    """Audit, probes and lints on ``conn`` (in its current transaction; the caller rolls back).

    ``cfg`` may be an app role name (the rest default) for callers of the first version.
    """
    from hotelbot_cli.rls.audit import audit
    from hotelbot_cli.rls.lints import lint_indexes, lint_policies

    if not isinstance(cfg, RlsConfig):
        cfg = load_config(app_role=cfg)
    box: dict[str, Audit] = {}

    def static() -> list[CheckResult]:
        box["audit"] = found = audit(conn, cfg)
        return found.results

    results = _timed(static)
    found = box["audit"]
    tables = found.tenant_tables
    distributed = _citus_tables(conn)
    results += _timed(
        lambda: lint_policies(tables, found.ctx, cfg, distributed) + lint_indexes(conn, tables)
    )
    if probes and found.app_oid is not None and found.reachable:
        from hotelbot_cli.rls.probes import run_probes

        if distributed:  # probes end transactions there (see rls.prober.Prober)
            results += _timed(lambda: run_probes(conn, cfg, found))
        else:
            conn.execute("SAVEPOINT rls_probes")
            results += _timed(lambda: run_probes(conn, cfg, found))
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


def check(  # noqa: PLR0917 - keyword-compatible with the first version
    engine: Engine,
    app_role: str | None = None,
    ignores: list[Ignore] | None = None,
    probes: bool = True,
    config: RlsConfig | None = None,
    migrated: bool = True,
) -> RlsReport:
    """Run every check against the database at head; nothing it writes survives.

    ``migrated=False`` checks a schema that hotelbot's migrations do not manage.
    """
    from hotelbot_cli.migrations import require_head

    cfg = config or load_config()
    if app_role:
        cfg = replace(cfg, app_role=app_role)
    if migrated:
        require_head(engine)
    with rolled_back(engine) as conn:
        header = _header(conn, engine, cfg.app_role)
        results = run_checks(conn, cfg, probes)
    return RlsReport(results=tuple(apply_ignores(results, ignores or [])), **header)


def self_test(
    engine: Engine, app_role: str | None = None, config: RlsConfig | None = None
) -> RlsReport:
    """Plant one leak per class in a scratch schema, prove each is caught, roll back."""
    from hotelbot_cli.migrations import require_head
    from hotelbot_cli.rls.selftest import run_self_test

    cfg = config or load_config()
    if app_role:
        cfg = replace(cfg, app_role=app_role)
    require_head(engine)
    with rolled_back(engine) as conn:
        header = _header(conn, engine, cfg.app_role)
        results = run_self_test(conn, cfg)
    return RlsReport(results=tuple(results), **header)
