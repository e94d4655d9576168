"""Code that runs with someone else's rights, and the side channels code opens.

Every SECURITY DEFINER function the roles may EXECUTE, and every one that a trigger on a
relation they may write fires (EXECUTE is not checked for triggers), runs as its owner. It
passes when its definition hash matches a review in ``[tool.hotelbot.rls-check]
reviewed``, or when its owner is harmless: judged by what the owner's own attributes,
ownerships, policies and grants open. Rules run their actions with the table owner's
rights. LEAKPROOF functions and functions that NOTIFY are side channels and need a review
too.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from psycopg import Connection

from hotelbot_cli.db.tenant import TENANT_KEY, TENANT_KEY_CLASS
from hotelbot_cli.rls.catalog import ROLES_CTE, fetch_rows, reachable
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.effective_policy import command_judgements
from hotelbot_cli.rls.policy import Context
from hotelbot_cli.rls.report import CheckResult, audit_result

#: Whether a role can read the signing key (its pads, or the whole key).
_READS_KEY = (
    f"SELECT 1 FROM {TENANT_KEY_CLASS}"
    " AND pg_catalog.has_any_column_privilege(%(owner)s, c.oid, 'SELECT')"
)
#: The roles among ``roles`` that can read the signing key (none listed: the key is private).
_KEY_READERS = (
    f"WITH {ROLES_CTE} SELECT r.rolname FROM roles r, {TENANT_KEY_CLASS}"
    " AND pg_catalog.has_any_column_privilege(r.oid, c.oid, 'SELECT') ORDER BY 1"
)
_NOTIFY = re.compile(r"\bpg_notify\s*\(|\bnotify\s+\w", re.IGNORECASE)


#: What a review's hash reads in place of the tenant root's schema in a function body.
ROOT_SCHEMA = "<schema of the tenant root>"


def tenant_root(conn: Connection[Any], cfg: RlsConfig) -> tuple[str | None, str]:
    """The tenant root's owner, and its schema as ``format('%I')`` writes it (in 007's
    lookup function); without a root, None and :data:`ROOT_SCHEMA`."""
    row = conn.execute(
        "SELECT pg_get_userbyid(c.relowner), quote_ident(n.nspname) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (cfg.root_table,),
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else (None, ROOT_SCHEMA)


def definition_hash(fields: dict[str, Any]) -> str:
    """sha256 of a function's definition: body, config, owner, security, volatility, leakproof."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_FUNCTIONS_SQL = f"""
WITH {ROLES_CTE},
writable AS (
    SELECT c.oid FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'f') AND EXISTS (
        SELECT 1 FROM roles r WHERE has_table_privilege(r.oid, c.oid, 'DELETE')
            OR has_table_privilege(r.oid, c.oid, 'TRUNCATE')
            OR has_any_column_privilege(r.oid, c.oid, 'INSERT')
            OR has_any_column_privilege(r.oid, c.oid, 'UPDATE'))),
reached AS (
    SELECT p.oid, NULL::text AS via FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND EXISTS (SELECT 1 FROM roles r WHERE has_function_privilege(r.oid, p.oid, 'EXECUTE'))
    UNION
    SELECT t.tgfoid, 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text
      FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgrelid IN (SELECT oid FROM writable)
)
SELECT p.oid, p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proowner, p.prosecdef,
       p.proleakproof, p.provolatile, l.lanname, p.prosrc, coalesce(p.proconfig, '{{}}'),
       p.prorettype::regtype::text, p.proretset,
       array_remove(array_agg(DISTINCT reached.via), NULL)
  FROM reached JOIN pg_proc p ON p.oid = reached.oid JOIN pg_language l ON l.oid = p.prolang
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
 GROUP BY p.oid, l.lanname
 ORDER BY 2
"""


def owner_risks(conn: Connection[Any], owner_oid: int, cfg: RlsConfig, ctx: Context) -> list[str]:
    """What a definer function's owner opens by its own attributes, ownerships and policies."""
    attrs = conn.execute(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE oid = %s", (owner_oid,)
    ).fetchone()
    if attrs and (attrs[0] or attrs[1]):
        return ["is superuser or BYPASSRLS"]
    risks = []
    if conn.execute(_READS_KEY, {"owner": owner_oid}).fetchone():
        risks.append(
            f"can read the tenant signing key {TENANT_KEY}: what it returns may sign any hotel"
        )
    owned = {
        r[0]
        for r in fetch_rows(
            conn,
            f"WITH {ROLES_CTE} SELECT c.oid FROM pg_class c WHERE c.relowner IN"
            " (SELECT oid FROM roles)",
            {"app": owner_oid},
        )
    }
    for t in reachable(conn, owner_oid, cfg):
        if t.kind not in "rpf" or cfg.declared(t.display):
            continue
        if not t.enabled and (t.column is not None or t.root):
            risks.append(f"reads {t.display}, which has no row security")
        elif t.enabled and t.oid in owned and not t.forced:
            risks.append(f"owns {t.display}, whose row security is not forced")
        elif t.enabled:
            judged = command_judgements(t, ctx)
            open_ = [c for c, j in judged.items() if j.verdict != "bound"]
            if open_:
                risks.append(f"has its own policy on {t.display} open for {'/'.join(open_)}")
    return risks


def audit_functions(
    conn: Connection[Any], cfg: RlsConfig, app_oid: int, ctx: Context
) -> list[CheckResult]:
    """SECURITY DEFINER, LEAKPROOF and NOTIFY-ing functions the roles can call or fire."""
    owner_of_root, root_schema = tenant_root(conn, cfg)
    cache: dict[int, list[str]] = {}
    results = []
    for row in fetch_rows(conn, _FUNCTIONS_SQL, {"app": app_oid}):
        (
            _oid,
            sig,
            owner,
            owner_oid,
            definer,
            leakproof,
            volatile,
            lang,
            src,
            config,
            rettype,
            retset,
            via,
        ) = row
        notify = bool(_NOTIFY.search(src or ""))
        if not (definer or leakproof or notify):
            continue
        fields = {
            "signature": sig,
            "language": lang,
            "body": src,
            "config": sorted(config),
            "owner": "<owner of the tenant root>" if owner == owner_of_root else owner,
            "security_definer": definer,
            "leakproof": leakproof,
            "volatility": volatile,
            "returns": ("setof " if retset else "") + rettype,
        }
        digest = definition_hash(fields)
        # A body that names the tenant root's schema (007's lookup does) is the same
        # definition wherever the migrations installed it.
        anywhere = definition_hash(
            {**fields, "body": (src or "").replace(f"{root_schema}.", ROOT_SCHEMA + ".")}
        )
        reviews = cfg.reviews_for(sig)
        reviewed = any(r.sha256 in (digest, anywhere) for r in reviews)
        where = f" (fired by {', '.join(via)})" if via else ""
        pin = (
            f'review it, then pin: [tool.hotelbot.rls-check] reviewed = [{{function = "{sig}",'
            f' sha256 = "{digest}", review = "…"}}]'
        )
        changed = "its definition changed since the review; " if reviews and not reviewed else ""
        if definer:
            problems = []
            if not any(c.startswith("search_path=") for c in config):
                problems.append("search_path is not pinned (SET search_path = pg_catalog, pg_temp)")
            if not reviewed:
                if owner_oid not in cache:
                    cache[owner_oid] = owner_risks(conn, owner_oid, cfg, ctx)
                if cache[owner_oid]:
                    problems.append(
                        f"{changed}runs as {owner}, who {'; '.join(cache[owner_oid][:3])}"
                    )
            results.append(
                audit_result(
                    "security-definer",
                    sig,
                    not problems,
                    f"{cfg.app_role} reaches it{where}; " + "; ".join(problems)
                    if problems
                    else f"runs as {owner}{where}: "
                    + ("reviewed (definition hash matches)" if reviewed else "owner opens nothing"),
                    f"REVOKE EXECUTE ON FUNCTION {sig} FROM {cfg.app_role}, PUBLIC; or make it"
                    f" SECURITY INVOKER; or {pin}",
                )
            )
        for check_id, flagged, why in (
            (
                "leakproof-function",
                leakproof,
                "is LEAKPROOF: the planner runs it on rows the"
                " policies have not filtered yet, so any error or notice it raises shows them",
            ),
            (
                "notify-channel",
                notify,
                "sends NOTIFY: any session may LISTEN on a channel, so"
                " what it sends reaches every tenant",
            ),
        ):
            if flagged:
                results.append(
                    audit_result(
                        check_id,
                        sig,
                        reviewed,
                        f"{why}{where}"
                        if not reviewed
                        else f"reviewed (definition hash matches){where}",
                        f"ALTER FUNCTION {sig} NOT LEAKPROOF; or {pin}"
                        if check_id == "leakproof-function"
                        else f"send only ids on a per-tenant channel name; or {pin}",
                    )
                )
    return results


def audit_signing_key(
    conn: Connection[Any], cfg: RlsConfig, app_oid: int, *, signed: bool
) -> list[CheckResult]:
    """Where the database signs its tenants (``signed``), no role the app role can become
    reads the key: whoever reads it can sign any hotel, so SQL injected into a request could."""
    if not signed:
        return []
    readers = [r[0] for r in fetch_rows(conn, _KEY_READERS, {"app": app_oid})]
    return [
        audit_result(
            "signing-key-private",
            TENANT_KEY,
            not readers,
            f"{', '.join(readers)} can read the tenant signing key: SQL in any tenant's"
            " transaction can sign any hotel"
            if readers
            else f"no role {cfg.app_role} can become reads the tenant signing key",
            f"REVOKE ALL ON {TENANT_KEY} FROM {', '.join(readers) or cfg.app_role}; only"
            " hotelbot_tenant_verifier reads its pads (revision 009)",
        )
    ]


def audit_rules(conn: Connection[Any], cfg: RlsConfig, app_oid: int) -> list[CheckResult]:
    """Rule actions run with the rule's table owner's rights, whatever the app role may do."""
    rows = fetch_rows(
        conn,
        f"""
        WITH {ROLES_CTE}
        SELECT rw.rulename, rw.ev_class::regclass::text,
               array_agg(DISTINCT d.refobjid::regclass::text ORDER BY d.refobjid::regclass::text),
               bool_and(t.relrowsecurity AND t.relforcerowsecurity
                        AND NOT o.rolsuper AND NOT o.rolbypassrls)
          FROM pg_rewrite rw
          JOIN pg_class c ON c.oid = rw.ev_class
          JOIN pg_roles o ON o.oid = c.relowner
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
           AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rw.ev_class
          JOIN pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p', 'f', 'm', 'v')
         WHERE rw.rulename <> '_RETURN' AND EXISTS (SELECT 1 FROM roles r
               WHERE has_table_privilege(r.oid, c.oid, 'DELETE')
                  OR has_any_column_privilege(r.oid, c.oid, 'INSERT')
                  OR has_any_column_privilege(r.oid, c.oid, 'UPDATE'))
         GROUP BY 1, 2 ORDER BY 2, 1
        """,
        {"app": app_oid},
    )
    return [
        audit_result(
            "rule-owner-rights",
            f"{table}.{rule}",
            bool(safe),
            f"rule {rule} on {table} runs with its owner's rights on {', '.join(targets)}"
            + ("" if safe else ", where row security does not bind the owner"),
            f"replace the rule with a SECURITY INVOKER trigger, or DROP RULE {rule} ON {table}",
        )
        for rule, table, targets, safe in rows
    ]
