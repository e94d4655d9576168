"""``rls-check --self-test``: plant one leak per class in a scratch schema, prove each is caught.

Everything happens in the caller's transaction, which is rolled back: the scratch schema
(and, for a superuser, a scratch role) never becomes visible to anyone else and is gone
afterwards. A green self-test means the checker, on this server and its version, really
fails on the leaks it claims to find. Leaks that need a superuser to plant (LEAKPROOF, a
REPLICATION role) are reported as skipped for any other checking role.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import Connection, sql

from hotelbot_cli.db.tenant import signs_tenants
from hotelbot_cli.rls.config import Review, RlsConfig
from hotelbot_cli.rls.report import CheckResult

#: (class, check id, planted object or None for database-wide) that MUST fail; ``{s}`` is
#: the scratch schema, ``{r}`` the scratch role. The last two need a superuser.
EXPECTED: tuple[tuple[str, str, str | None], ...] = (
    ("row security", "rls-enabled", "{s}.leak_no_rls"),
    ("row security", "table-privileges", "{s}.leak_no_rls"),
    ("row security", "tenant-index", "{s}.leak_no_rls"),
    ("row security", "probe-read-other", "{s}.leak_no_rls"),
    ("policies", "policy-bound", "{s}.leak_open_policy"),
    ("policies", "probe-read-other", "{s}.leak_open_policy"),
    ("policies", "rls-forced", "{s}.leak_per_row"),
    ("policies", "policy-per-row", "{s}.leak_per_row"),
    ("policies", "tenant-column-update", "{s}.leak_per_row"),
    ("views", "view-security-invoker", "{s}.leak_view"),
    ("views", "materialized-view", "{s}.leak_matview"),
    ("tenant data without the tenant column", "unbound-relation", "{s}.leak_audit"),
    ("tenant data without the tenant column", "probe-canary", "{s}.leak_audit"),
    ("column-level privileges", "unbound-relation", "{s}.leak_guest_notes"),
    ("code with owner rights", "rule-owner-rights", "{s}.tenant_notes.leak_archive"),
    ("code with owner rights", "security-definer", "{s}.leak_definer_trigger()"),
    ("trust by behaviour", "security-definer", "{s}.leak_all_notes()"),
    ("side channels", "unique-oracle", "{s}.leak_oracle"),
    ("side channels", "notify-channel", "{s}.leak_notify()"),
    ("side channels", "sequence-shared", "{s}.leak_counter"),
    ("effects", "probe-natural-key", None),
    ("forged tenant", "probe-forged-tenant", "{s}.leak_bare"),
    ("forged tenant", "probe-forged-setting", "{s}.leak_switch"),
    ("side channels", "leakproof-function", "{s}.leak_proof(text)"),
    ("role attributes", "app-role-attributes", None),
)
SUPERUSER_ONLY = {"leakproof-function", "app-role-attributes"}
#: Failures only where the database signs its tenants (elsewhere forging is a warning).
SIGNED_ONLY = {"probe-forged-tenant", "probe-forged-setting"}

_ONCE = "hotel_id = (SELECT NULLIF(current_setting('{setting}', true), '')::uuid)"
_ROW = "hotel_id = current_setting('{setting}', true)::uuid"


def _statements(schema: str, role: str, app: str, ref: str | None, cfg: RlsConfig) -> list[str]:
    s, a = f'"{schema}"', f'"{app}"'
    fk = f" REFERENCES {ref} (id)" if ref else ""
    once = _ONCE.format(setting=cfg.tenant_setting)
    row = _ROW.format(setting=cfg.tenant_setting)

    def isolated(table: str) -> list[str]:
        return [
            f"ALTER TABLE {s}.{table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {s}.{table} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY tenant ON {s}.{table} TO {a} USING ({once}) WITH CHECK ({once})",
            f"CREATE INDEX ON {s}.{table} (hotel_id)",
        ]

    out = [f"CREATE SCHEMA {s}", f"GRANT USAGE ON SCHEMA {s} TO {a}"]
    for name in ("leak_no_rls", "leak_open_policy", "leak_per_row"):
        out += [
            f"CREATE TABLE {s}.{name} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            f" hotel_id uuid NOT NULL{fk}, note text)",
            f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {s}.{name} TO {a}",
        ]
    out += [
        # a tenant policy OR-ed with one that lets everybody read everything
        *isolated("leak_open_policy"),
        f"CREATE POLICY everyone ON {s}.leak_open_policy FOR SELECT USING (true)",
        # enabled but not forced, the setting read per row, hotel_id updatable
        f"ALTER TABLE {s}.leak_per_row ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant ON {s}.leak_per_row TO {a} USING ({row}) WITH CHECK ({row})",
        f"CREATE INDEX ON {s}.leak_per_row (hotel_id)",
        # a view that runs as its owner, a materialized view
        f"CREATE VIEW {s}.leak_view AS SELECT * FROM {s}.leak_open_policy",
        f"GRANT SELECT ON {s}.leak_view TO {a}",
        f"CREATE MATERIALIZED VIEW {s}.leak_matview AS SELECT hotel_id, note FROM"
        f" {s}.leak_open_policy",
        f"GRANT SELECT ON {s}.leak_matview TO {a}",
        # a sound tenant table whose trigger copies notes into an audit table without
        # hotel_id, a rule that archives them with the owner's rights, a NOTIFY trigger
        f"CREATE TABLE {s}.tenant_notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        f" hotel_id uuid NOT NULL{fk}, note text)",
        *isolated("tenant_notes"),
        f"GRANT SELECT, INSERT, DELETE, UPDATE (note) ON {s}.tenant_notes TO {a}",
        f"CREATE TABLE {s}.leak_audit (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), note text)",
        f"GRANT SELECT, INSERT ON {s}.leak_audit TO {a}",
        f"CREATE FUNCTION {s}.copy_note() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$BEGIN INSERT INTO {s}.leak_audit (note) VALUES (NEW.note); RETURN NEW; END$$",
        f"CREATE TRIGGER copy_note AFTER INSERT ON {s}.tenant_notes FOR EACH ROW"
        f" EXECUTE FUNCTION {s}.copy_note()",
        f"CREATE TABLE {s}.archive (hotel_id uuid, note text)",
        f"CREATE RULE leak_archive AS ON INSERT TO {s}.tenant_notes DO ALSO"
        f" INSERT INTO {s}.archive VALUES (NEW.hotel_id, NEW.note)",
        f"CREATE FUNCTION {s}.leak_notify() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$BEGIN PERFORM pg_notify('notes', NEW.note); RETURN NEW; END$$",
        f"CREATE TRIGGER leak_notify AFTER INSERT ON {s}.tenant_notes FOR EACH ROW"
        f" EXECUTE FUNCTION {s}.leak_notify()",
        # child data keyed only by a guest id, readable through a column-level grant
        f"CREATE TABLE {s}.leak_guest_notes (guest_id uuid NOT NULL, note text)",
        f"GRANT SELECT (note) ON {s}.leak_guest_notes TO {a}",
        # a SECURITY DEFINER trigger that reaches every tenant's rows with the same phone
        f"CREATE TABLE {s}.leak_phones (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        f" hotel_id uuid NOT NULL{fk}, phone text NOT NULL, note text, UNIQUE (hotel_id, phone))",
        *isolated("leak_phones"),
        f"GRANT SELECT, INSERT, DELETE, UPDATE (note) ON {s}.leak_phones TO {a}",
        f"CREATE FUNCTION {s}.leak_definer_trigger() RETURNS trigger LANGUAGE plpgsql"
        f" SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$BEGIN"
        f" UPDATE {s}.leak_phones SET note = 'overwritten' WHERE phone = NEW.phone"
        f" AND id <> NEW.id; RETURN NEW; END$$",
        f"CREATE TRIGGER leak_definer AFTER INSERT ON {s}.leak_phones FOR EACH ROW"
        f" EXECUTE FUNCTION {s}.leak_definer_trigger()",
        # a reviewed definer function whose definition changed since (see run_self_test)
        f"CREATE FUNCTION {s}.leak_all_notes() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER"
        f" SET search_path = pg_catalog, pg_temp AS $$SELECT note FROM {s}.tenant_notes$$",
        # a unique key across tenants, a shared sequence
        f"CREATE TABLE {s}.leak_oracle (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        f" hotel_id uuid NOT NULL{fk}, email text UNIQUE)",
        *isolated("leak_oracle"),
        f"GRANT SELECT, INSERT, DELETE ON {s}.leak_oracle TO {a}",
        f"CREATE SEQUENCE {s}.leak_counter",
        f"GRANT USAGE ON SEQUENCE {s}.leak_counter TO {a}",
    ]
    # a tenant any SQL in the transaction can set; a switch it can set too
    for name in ("leak_bare", "leak_switch"):
        out += [
            f"CREATE TABLE {s}.{name} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            f" hotel_id uuid NOT NULL{fk}, note text)",
            f"GRANT SELECT, INSERT, DELETE ON {s}.{name} TO {a}",
            *isolated(name),
        ]
    out.append(
        f"CREATE POLICY admin ON {s}.leak_switch FOR SELECT TO {a}"
        f" USING (current_setting('{schema}.admin', true) = 'on')"
    )
    return out


def _superuser_statements(schema: str, role: str, app: str) -> list[str]:
    return [
        f'CREATE FUNCTION "{schema}".leak_proof(text) RETURNS boolean LANGUAGE sql IMMUTABLE'
        " LEAKPROOF AS $$SELECT $1 IS NOT NULL$$",
        f'CREATE ROLE "{role}" NOLOGIN REPLICATION',
        f'GRANT "{role}" TO "{app}"',
    ]


def plant(conn: Connection[Any], schema: str, role: str, cfg: RlsConfig) -> bool:
    """Create the leaky objects; True when the superuser-only ones were planted too."""
    hotels = conn.execute("SELECT to_regclass(%s)::text", (cfg.root_table,)).fetchone()
    ref = hotels[0] if hotels and hotels[0] else None
    for statement in _statements(schema, role, cfg.app_role, ref, cfg):
        conn.execute(sql.SQL(statement))
    su = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not (su and su[0]):
        return False
    for statement in _superuser_statements(schema, role, cfg.app_role):
        conn.execute(sql.SQL(statement))
    return True


def run_self_test(conn: Connection[Any], cfg: RlsConfig) -> list[CheckResult]:
    """Plant, check, compare with :data:`EXPECTED`; the caller rolls everything back."""
    from hotelbot_cli.rls import run_checks

    token = secrets.token_hex(4)
    schema, role = f"hotelbot_rls_selftest_{token}", f"hotelbot_rls_selftest_{token}"
    try:
        superuser = plant(conn, schema, role, cfg)
    except psycopg.Error as exc:
        return [
            CheckResult(
                "self-test",
                "self-test",
                None,
                "fail",
                f"cannot plant the scratch schema: {str(exc).strip().splitlines()[0]}",
                "run the self-test as a role that may CREATE schemas in this database",
            )
        ]
    stale = Review(f"{schema}.leak_all_notes()", "0" * 64, "self-test: a review of another body")
    checked = replace(cfg, reviewed=(*cfg.reviewed, stale))
    found = {(r.id, r.table) for r in run_checks(conn, checked) if r.failed}
    signed = signs_tenants(conn)
    results = []
    for leak_class, check_id, obj in EXPECTED:
        name = obj.format(s=schema) if obj else None
        label = f"{leak_class}: {check_id} on {obj.format(s='…') if obj else 'the database'}"
        skipped = (
            "this database does not sign its tenants: forging is a warning here"
            if check_id in SIGNED_ONLY and not signed
            else "planting it needs a superuser; the check itself still runs"
            if check_id in SUPERUSER_ONLY and not superuser
            else None
        )
        if skipped:
            results.append(CheckResult("self-test", "self-test", label, "skip", skipped))
            continue
        caught = (check_id, name) in found
        results.append(
            CheckResult(
                "self-test",
                "self-test",
                label,
                "pass" if caught else "fail",
                f"the planted leak was caught by {check_id}"
                if caught
                else f"{check_id} did NOT catch the planted leak ({leak_class})",
                None if caught else "report this: the checker misses a leak on this server",
            )
        )
    return results
