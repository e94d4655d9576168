"""The static audit in one call: reachability, relations, keys, roles, objects and code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from hotelbot_cli.db.tenant import signs_tenants
from hotelbot_cli.rls import catalog, code_paths, objects, relations, roles, tenant_keys
from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.login import audit_bot_login, audit_bot_search_path, configured_login
from hotelbot_cli.rls.policy import Context
from hotelbot_cli.rls.report import CheckResult, audit_result


@dataclass
class Audit:
    """What the probes and lints need from the audit."""

    app_oid: int | None
    reachable: list[TenantTable]
    tenant_tables: list[TenantTable]  # reachable tables with a tenant column: probed
    ctx: Context
    results: list[CheckResult]


def audit(conn: Connection[Any], cfg: RlsConfig) -> Audit:
    """Every static check; the reachable relations are returned for the probes and lints."""
    ctx = Context(cfg.tenant_setting, catalog.tenant_functions(conn, cfg))
    app_oid = catalog.app_role_oid(conn, cfg.app_role)
    if app_oid is None:
        return Audit(
            None,
            [],
            [],
            ctx,
            [
                CheckResult(
                    "app-role-exists",
                    "audit",
                    None,
                    "fail",
                    f"role {cfg.app_role} does not exist: the application has no restricted role",
                    "run `hotelbot db upgrade` (migration 007 creates it) or pass --app-role",
                )
            ],
        )
    rels = catalog.reachable(conn, app_oid, cfg)
    by_name = catalog.tenant_by_name(conn, cfg)
    tables = [t for t in rels if t.column and t.kind in "rpf" and not cfg.declared(t.display)]
    results = [
        CheckResult("app-role-exists", "audit", None, "pass", f"role {cfg.app_role} exists"),
        audit_result(
            "tenant-tables-found",
            None,
            bool(tables),
            f"{cfg.app_role} reaches {len(rels)} relations, {len(tables)} with a tenant column:"
            f" {', '.join(t.display for t in tables)}"
            if tables
            else f"{cfg.app_role} reaches no table with a {cfg.tenant_column} column",
            "run `hotelbot db upgrade`, or set tenant-column / root-table in"
            " [tool.hotelbot.rls-check]",
        ),
    ]
    for t in rels:
        results += relations.audit_relation(t, cfg, ctx, by_name)
    results += tenant_keys.audit_tenant_columns(conn, app_oid, rels, cfg)
    results += tenant_keys.audit_foreign_keys(conn, rels, cfg)
    results += tenant_keys.audit_unique_oracles(conn, app_oid, rels, cfg)
    results += roles.audit_roles(conn, cfg, app_oid, rels)
    signed = signs_tenants(conn)  # revision 009: the key is audited, a TEMP grant fails
    results += objects.audit_create(conn, cfg, app_oid)
    results += objects.audit_temporary(conn, cfg, app_oid, signed=signed)
    results += objects.audit_large_objects(conn, cfg, app_oid)
    results += objects.audit_catalog_grants(conn, cfg, app_oid)
    results += code_paths.audit_functions(conn, cfg, app_oid, ctx)
    results += code_paths.audit_rules(conn, cfg, app_oid)
    results += code_paths.audit_signing_key(conn, cfg, app_oid, signed=signed)
    login = configured_login()
    if login:
        results += audit_bot_login(conn, cfg, login)
        results += audit_bot_search_path(conn, login, rels)
    return Audit(app_oid, rels, tables, ctx, results)
