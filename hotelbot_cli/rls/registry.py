# ruff: noqa: E501 - one registry row per entry reads better than wrapped prose
"""Every check id ``rls-check`` can report: category, what a pass proves, the usual fix.

``--ignore`` takes these ids; the README's registry table is rendered from here
(:func:`markdown`) and a test keeps the two, and the ids the code emits, in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckInfo:
    id: str
    category: str
    proves: str
    fix: str


_A, _P, _L, _S = "audit", "probe", "lint", "self-test"

CHECKS: tuple[CheckInfo, ...] = (
    CheckInfo(
        "app-role-exists",
        _A,
        "the application's restricted role exists",
        "run `hotelbot db upgrade` or pass --app-role",
    ),
    CheckInfo(
        "tenant-tables-found",
        _A,
        "the app role reaches at least one table with the tenant column",
        "migrate, or set tenant-column / root-table",
    ),
    CheckInfo(
        "rls-enabled",
        _A,
        "a reachable tenant table has row level security enabled",
        "ALTER TABLE … ENABLE ROW LEVEL SECURITY",
    ),
    CheckInfo(
        "rls-forced",
        _A,
        "row security also binds the table's owner",
        "ALTER TABLE … FORCE ROW LEVEL SECURITY",
    ),
    CheckInfo(
        "policy-coverage",
        _A,
        "every command the app role may run has a permissive policy",
        "CREATE POLICY … FOR ALL TO app_user USING (tenant) WITH CHECK (tenant)",
    ),
    CheckInfo(
        "policy-bound",
        _A,
        "the effective policy (permissive OR-ed, restrictive AND-ed) of each command binds the current tenant; warn when only the probes can decide",
        "drop or rewrite the loose policy, or add a RESTRICTIVE tenant policy",
    ),
    CheckInfo(
        "table-privileges",
        _A,
        "no TRUNCATE, REFERENCES or TRIGGER (table or column level) on tenant data",
        "REVOKE TRUNCATE, REFERENCES, TRIGGER ON … FROM app_user",
    ),
    CheckInfo(
        "tenant-column-update",
        _A,
        "the tenant column cannot be updated (rows cannot be moved)",
        "GRANT UPDATE only on the other columns",
    ),
    CheckInfo(
        "foreign-key-tenant",
        _A,
        "references between tenant tables include the tenant column",
        "FOREIGN KEY (hotel_id, x_id) REFERENCES x (hotel_id, id)",
    ),
    CheckInfo(
        "unique-oracle",
        _A,
        "no writable unique key across tenants answers 'does another tenant have this value'",
        "UNIQUE (hotel_id, …) or revoke writes of its columns",
    ),
    CheckInfo(
        "unbound-relation",
        _A,
        "every reachable relation without row security is declared non-tenant",
        "enable and force RLS with a tenant policy, revoke, or declare it non-tenant with a reason",
    ),
    CheckInfo(
        "non-tenant-declared",
        _A,
        "a reachable relation is declared non-tenant (the canary search checks the claim)",
        "-",
    ),
    CheckInfo(
        "view-security-invoker",
        _A,
        "a reachable view applies the reader's policies",
        "ALTER VIEW … SET (security_invoker = true)",
    ),
    CheckInfo(
        "materialized-view",
        _A,
        "no reachable materialized view (they have no row security)",
        "REVOKE SELECT, or declare it non-tenant",
    ),
    CheckInfo(
        "sequence-shared",
        _A,
        "no reachable sequence (a counter shared by every tenant)",
        "uuid keys or identity columns; REVOKE USAGE",
    ),
    CheckInfo(
        "app-role-attributes",
        _A,
        "the app role and every role it can become are on the attribute allowlist",
        "ALTER ROLE … NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
    ),
    CheckInfo(
        "signing-key-private",
        _A,
        "where the database signs its tenants: neither the app role nor any role it can become reads hotelbot_private.tenant_key (whoever reads it signs any hotel)",
        "REVOKE ALL ON hotelbot_private.tenant_key FROM the app role and every role it can become",
    ),
    CheckInfo(
        "probe-forged-tenant",
        _P,
        "SQL injected into tenant A's transaction that sets the tenant to B by hand sees none of B's rows (the signed tenant holds); a failure where the database signs its tenants (revision 009), else a warning",
        "compare policies with the signature-verifying hotelbot_current_hotel_id(), never the bare setting",
    ),
    CheckInfo(
        "probe-forged-setting",
        _P,
        "where policies or functions read other settings the app role may set (current_setting() or SHOW: an app.is_admin, an application_name): tenant A's transaction setting each to a switch, a wildcard, a literal of the code that reads it, or B's id sees none of B's rows; a failure where the database signs its tenants, else a warning",
        "bind the policies to the signed tenant only, never to a setting any SQL can set",
    ),
    CheckInfo(
        "probe-expired-signature",
        _P,
        "where the policies verify the signature: tenant B bound with its own signature that expired an hour ago sees none of B's rows",
        "hotelbot_current_hotel_id() must return NULL for an expired signature (revision 011's body)",
    ),
    CheckInfo(
        "probe-expired-cached-signature",
        _P,
        "where the policies use the cache of verified signatures (revision 013): tenant B bound with its own signature that expired an hour ago, whose digest the cache still holds (stored while it was valid, not yet pruned), sees none of B's rows",
        "the policy looks up the digest only while it is unexpired (v.expires_at >= now(), revision 013), else asks hotelbot_current_hotel_id()",
    ),
    CheckInfo(
        "probe-planted-signature",
        _P,
        "where the policies use the cache of verified signatures (revision 013): SQL in tenant A's transaction that writes a made-up signature of tenant B into it, or hands one to hotelbot_private.remember_tenant(), then binds B with it, sees none of B's rows",
        "the app role may only read hotelbot_private.verified_tenants; hotelbot_private.remember_tenant() stores only a signature that verifies (revision 013's body); the policy looks up the digest of the bound hotel and signature, else asks hotelbot_current_hotel_id()",
    ),
    CheckInfo(
        "bot-login",
        _A,
        "the bot's login (HOTELBOT_APP_DATABASE_URL, when set) is LOGIN, granted the app role and nothing else: no attribute, membership, owned object or direct grant outside the policies",
        "hotelbot db create-login NAME (resets the role), or REVOKE what the check names",
    ),
    CheckInfo(
        "bot-search-path",
        _A,
        "the bot's login (HOTELBOT_APP_DATABASE_URL, when set) finds every table of the tenant root's schema there, by the search_path a session of it starts with (its own setting in this database, its own, the database's, the server's): no schema earlier in its path shadows one, none is missing",
        "hotelbot db create-login NAME (pins its search_path), or ALTER ROLE NAME IN DATABASE … SET search_path = <schema>, pg_temp",
    ),
    CheckInfo(
        "app-role-membership",
        _A,
        "no predefined (pg_*), owner or database-owner role can be become",
        "REVOKE <role> FROM app_user",
    ),
    CheckInfo(
        "app-role-owns-nothing",
        _A,
        "the app role and its roles own nothing (owners bypass RLS)",
        "ALTER … OWNER TO the migrating role",
    ),
    CheckInfo(
        "app-role-row-security",
        _A,
        "row_security is not turned off for the app role or database",
        "ALTER ROLE app_user RESET row_security",
    ),
    CheckInfo(
        "tenant-default",
        _A,
        "the tenant setting has no role or database default",
        "ALTER ROLE/DATABASE … RESET the setting",
    ),
    CheckInfo(
        "schema-create",
        _A,
        "the app role cannot CREATE in any schema or the database",
        "REVOKE CREATE ON SCHEMA … FROM app_user, PUBLIC",
    ),
    CheckInfo(
        "temp-tables",
        _A,
        "neither the app role, nor a role it is a member of, nor PUBLIC may create temporary tables in the database (a temp table shadows ours where the search_path does not name pg_temp, and outlives the transaction on a pooled connection); a failure where the database signs its tenants (revision 009 revokes it), else a warning",
        "REVOKE TEMPORARY ON DATABASE … FROM PUBLIC, app_user (again after CREATE DATABASE … TEMPLATE or a restore)",
    ),
    CheckInfo(
        "large-objects",
        _A,
        "the app role can read no large object",
        "REVOKE SELECT ON LARGE OBJECT …; lo_compat_privileges off",
    ),
    CheckInfo(
        "catalog-grant",
        _A,
        "no catalog object was granted to the app role beyond the defaults, and no server parameter may be set by it (or PUBLIC) beyond a user's (session_replication_role = replica switches off the tenant foreign keys and the triggers)",
        "REVOKE ALL ON <catalog object> FROM app_user; REVOKE SET, ALTER SYSTEM ON PARAMETER <name> FROM app_user, PUBLIC",
    ),
    CheckInfo(
        "security-definer",
        _A,
        "each SECURITY DEFINER function it can call or fire has a pinned search_path and is reviewed (hash) or has a harmless owner (not superuser, no open policy, cannot read the tenant signing key)",
        "revoke, make it SECURITY INVOKER, or review and pin its hash",
    ),
    CheckInfo(
        "leakproof-function",
        _A,
        "no unreviewed LEAKPROOF function (it sees rows before the policies)",
        "ALTER FUNCTION … NOT LEAKPROOF, or review and pin",
    ),
    CheckInfo(
        "notify-channel",
        _A,
        "no unreviewed reachable function sends NOTIFY (every session can LISTEN)",
        "per-tenant channels carrying ids only; review and pin",
    ),
    CheckInfo(
        "rule-owner-rights",
        _A,
        "no rule on a writable relation acts with its owner's rights outside row security",
        "use a SECURITY INVOKER trigger instead",
    ),
    CheckInfo(
        "probe-setup",
        _P,
        "probe rows could be written for every probed table",
        "see the detail; run as the tables' owner or a superuser",
    ),
    CheckInfo("probe-read-own", _P, "tenant A reads its own row", "GRANT SELECT and check USING"),
    CheckInfo(
        "probe-read-other",
        _P,
        "tenant A sees no row of another tenant",
        "enable and force RLS with a tenant-bound USING",
    ),
    CheckInfo(
        "probe-update-other",
        _P,
        "tenant A cannot update B's row (the key is proven to address it)",
        "bind USING to the current tenant",
    ),
    CheckInfo(
        "probe-delete-other",
        _P,
        "tenant A cannot delete B's row (the key is proven to address it)",
        "bind USING to the current tenant",
    ),
    CheckInfo(
        "probe-repoint",
        _P,
        "tenant A cannot move its row to another tenant",
        "revoke UPDATE of the tenant column; bind WITH CHECK",
    ),
    CheckInfo(
        "probe-insert-other",
        _P,
        "tenant A cannot insert a row for B",
        "bind WITH CHECK to the current tenant",
    ),
    CheckInfo(
        "probe-cross-reference",
        _P,
        "tenant A cannot point its row at B's row",
        "composite foreign keys with the tenant column",
    ),
    CheckInfo(
        "probe-no-tenant-unset",
        _P,
        "with no tenant set nothing is visible or writable (an error is a refusal)",
        "compare with NULLIF(current_setting(…, true), '')",
    ),
    CheckInfo(
        "probe-no-tenant-empty",
        _P,
        "with an empty tenant nothing is visible or writable",
        "compare with NULLIF(current_setting(…, true), '')",
    ),
    CheckInfo(
        "probe-malformed-tenant",
        _P,
        "a malformed tenant value shows nothing",
        "cast the setting to the tenant column's type",
    ),
    CheckInfo(
        "probe-token",
        _P,
        "tenant A cannot find B's green_api_token",
        "bind the root policy; revoke the column",
    ),
    CheckInfo(
        "probe-canary",
        _P,
        "B's canary values, token, id and phones are found nowhere A (or no tenant) can read outside proven tenant tables, planner statistics included",
        "make the relation tenant-bound or stop copying tenant data into it",
    ),
    CheckInfo(
        "probe-write-effects",
        _P,
        "A's inserts, updates and deletes (and the triggers/rules they fire) leave B's rows unchanged",
        "bind triggers and rules to the tenant",
    ),
    CheckInfo(
        "probe-natural-key",
        _P,
        "A using B's natural keys (phone, WhatsApp number) leaves B's rows unchanged",
        "include the tenant column in keys and trigger/rule conditions",
    ),
    CheckInfo(
        "policy-per-row",
        _L,
        "the tenant is read once per statement (warn: a bare tenant function)",
        "wrap it in a sub-select: (SELECT …)",
    ),
    CheckInfo(
        "tenant-index",
        _L,
        "an index of each probed tenant table leads with the tenant column",
        "CREATE INDEX ON … (hotel_id, …)",
    ),
    CheckInfo(
        "self-test",
        _S,
        "a planted leak of one class was caught",
        "report it: the checker misses a leak on this server",
    ),
)

BY_ID = {c.id: c for c in CHECKS}


def markdown() -> str:
    """The README's registry table."""
    lines = ["| id | category | a pass proves | usual fix |", "|---|---|---|---|"]
    lines += [
        f"| `{c.id}` | {c.category} | {c.proves} | {c.fix.replace('|', '∣')} |" for c in CHECKS
    ]
    return "\n".join(lines) + "\n"
