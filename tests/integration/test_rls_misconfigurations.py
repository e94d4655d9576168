"""Proof that rls-check can fail: every class of misconfiguration is applied to a throwaway
database (cloned from the template) and must be reported, naming the object."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import rls
from hotelbot_cli.settings import libpq_url

TENANT = "(SELECT hotelbot_current_hotel_id())"
PER_ROW = "current_setting('app.current_hotel_id', true)::uuid"


def _replace_policy(
    table: str, using: str, check: str | None = None, cmd: str = "ALL"
) -> list[str]:
    check_sql = f" WITH CHECK ({check})" if check else ""
    using_sql = f" USING ({using})" if using else ""
    return [
        f"DROP POLICY {table}_tenant_isolation ON {table}",
        f"CREATE POLICY p ON {table} FOR {cmd} TO app_user{using_sql}{check_sql}",
    ]


NEW_TABLE = [
    "CREATE TABLE reviews (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
    " hotel_id uuid NOT NULL REFERENCES hotels (id), body text NOT NULL, stars int NOT NULL)",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON reviews TO app_user",
]
ISOLATED = [
    "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY iso ON {{t}} TO app_user USING (hotel_id = {TENANT})"
    f" WITH CHECK (hotel_id = {TENANT})",
]

CASES = {
    "rls-disabled": (
        ["ALTER TABLE guests DISABLE ROW LEVEL SECURITY"],
        {
            ("rls-enabled", "guests"),
            ("probe-read-other", "guests"),
            ("probe-no-tenant-unset", "guests"),
        },
    ),
    "rls-not-forced": (
        ["ALTER TABLE messages NO FORCE ROW LEVEL SECURITY"],
        {("rls-forced", "messages")},
    ),
    "policy-dropped": (
        ["DROP POLICY triggers_tenant_isolation ON triggers"],
        {("policy-coverage", "triggers"), ("probe-read-own", "triggers")},
    ),
    "permissive-using-true": (
        ["CREATE POLICY open ON conversations FOR SELECT USING (true)"],
        {("policy-bound", "conversations"), ("probe-read-other", "conversations")},
    ),
    # Write-only holes: UPDATE … SET x = <constant> and DELETE without WHERE read no column,
    # so PostgreSQL applies no SELECT policy to them: a tenant zeroes or deletes every
    # hotel's sentiment counts (measured: 4,401 rows of 5 hotels) though it reads only its
    # own. The probes' writes name B's row in a WHERE (SELECT policies apply there), so
    # the effective policy is what names the hole.
    "update-only-policy-open": (
        [
            "CREATE POLICY reset_counts ON message_sentiment_hourly FOR UPDATE TO app_user"
            " USING (true) WITH CHECK (true)"
        ],
        {("policy-bound", "message_sentiment_hourly")},
    ),
    "delete-only-policy-open": (
        [
            "CREATE POLICY purge_counts ON message_sentiment_hourly FOR DELETE TO app_user"
            " USING (true)"
        ],
        {("policy-bound", "message_sentiment_hourly")},
    ),
    "public-policy": (
        ["CREATE POLICY pub ON guests TO PUBLIC USING (true) WITH CHECK (true)"],
        {("policy-bound", "guests"), ("probe-insert-other", "guests")},
    ),
    "coalesce-fallback": (
        _replace_policy(
            "guests",
            "hotel_id = COALESCE(NULLIF(current_setting('app.current_hotel_id', true), '')::uuid,"
            " hotel_id)",
            f"hotel_id = {TENANT}",
        ),
        {("policy-bound", "guests"), ("probe-no-tenant-unset", "guests")},
    ),
    "or-widened": (
        _replace_policy(
            "messages", f"hotel_id = {TENANT} OR message_type = 'system'", f"hotel_id = {TENANT}"
        ),
        {("policy-bound", "messages")},
    ),
    "wrong-column": (
        _replace_policy("triggers", f"id = {TENANT}", f"id = {TENANT}"),
        {("policy-bound", "triggers"), ("probe-read-own", "triggers")},
    ),
    "no-with-check": (
        [
            "DROP POLICY staff_notifications_tenant_isolation ON staff_notifications",
            f"CREATE POLICY r ON staff_notifications FOR SELECT TO app_user"
            f" USING (hotel_id = {TENANT})",
            "CREATE POLICY w ON staff_notifications FOR INSERT TO app_user WITH CHECK (true)",
        ],
        {
            ("policy-bound", "staff_notifications"),
            ("policy-coverage", "staff_notifications"),
            ("probe-insert-other", "staff_notifications"),
        },
    ),
    # Whoever reads the signing key signs any hotel: SQL injected into a request then reads
    # every hotel, though each policy still compares with the verifier.
    "signing-key-readable": (
        [
            "GRANT USAGE ON SCHEMA hotelbot_private TO app_user",
            "GRANT SELECT ON hotelbot_private.tenant_key TO app_user",
        ],
        {("signing-key-private", "hotelbot_private.tenant_key")},
    ),
    "definer-function-that-signs": (
        [
            "CREATE FUNCTION public.sign_any(h uuid) RETURNS text LANGUAGE sql SECURITY DEFINER"
            " SET search_path = pg_catalog, pg_temp AS $$SELECT hotelbot_private.sign_tenant(h,"
            " extract(epoch FROM now())::bigint + 300)$$",
            "GRANT EXECUTE ON FUNCTION hotelbot_private.sign_tenant(uuid, bigint)"
            " TO hotelbot_tenant_verifier",
            "ALTER FUNCTION public.sign_any(uuid) OWNER TO hotelbot_tenant_verifier",
            "GRANT EXECUTE ON FUNCTION public.sign_any(uuid) TO app_user",
        ],
        {("security-definer", "sign_any(uuid)")},
    ),
    # A switch any SQL in the transaction can set, read in a function the policy calls.
    "policy-trusts-another-setting": (
        [
            "CREATE FUNCTION public.is_admin() RETURNS boolean LANGUAGE sql STABLE AS"
            " $$SELECT coalesce(current_setting('App.Is_Admin', true), '') = 'on'$$",
            f"ALTER POLICY guests_tenant_isolation ON guests"
            f" USING (hotel_id = {TENANT} OR (SELECT is_admin()))",
        ],
        {("probe-forged-setting", "guests")},
    ),
    # the same switch read with SHOW (volatile: SHOW may not run in a stable function)
    "policy-trusts-a-setting-read-with-show": (
        [
            "CREATE FUNCTION public.support_mode() RETURNS boolean LANGUAGE plpgsql VOLATILE AS"
            " $$DECLARE v text; BEGIN BEGIN EXECUTE 'SHOW app.support_mode' INTO v;"
            " EXCEPTION WHEN undefined_object THEN RETURN false; END; RETURN v = 'on'; END$$",
            f"ALTER POLICY guests_tenant_isolation ON guests"
            f" USING (hotel_id = {TENANT} OR (SELECT support_mode()))",
        ],
        {("probe-forged-setting", "guests")},
    ),
    # whatever value the code compares a setting with, SQL in the transaction can set
    "policy-trusts-a-maintenance-mode": (
        [
            "CREATE POLICY maintenance ON triggers FOR SELECT TO app_user"
            " USING (current_setting('app.mode', true) = 'maintenance-window')"
        ],
        {("probe-forged-setting", "triggers")},
    ),
    # a built-in setting any session may set (SET application_name) is as forgeable
    "policy-trusts-a-built-in-setting": (
        [
            "CREATE FUNCTION public.support_console() RETURNS boolean LANGUAGE sql STABLE AS"
            " $$SELECT current_setting('application_name') = 'support-console'$$",
            f"ALTER POLICY conversations_tenant_isolation ON conversations"
            f" USING (hotel_id = {TENANT} OR (SELECT support_console()))",
        ],
        {("probe-forged-setting", "conversations")},
    ),
    # The owner's WhatsApp-lookup policy, open while hotelbot.lookup is 'on', handed to the
    # app role too: the bot sets the switch itself and reads every active hotel's row.
    "lookup-policy-granted-to-app-role": (
        ["ALTER POLICY hotels_whatsapp_lookup ON hotels TO CURRENT_USER, app_user"],
        {("policy-bound", "hotels"), ("probe-forged-setting", "hotels")},
    ),
    "policy-trusts-a-hotel-override": (
        _replace_policy(
            "messages",
            f"hotel_id = COALESCE((SELECT NULLIF(current_setting('app.support_hotel', true),"
            f" '')::uuid), {TENANT})",
            f"hotel_id = {TENANT}",
        ),
        {("probe-forged-setting", "messages")},
    ),
    "per-row-policy": (
        _replace_policy("guests", f"hotel_id = {PER_ROW}", f"hotel_id = {PER_ROW}"),
        {("policy-per-row", "guests")},
    ),
    "truncate": (["GRANT TRUNCATE ON guests TO app_user"], {("table-privileges", "guests")}),
    "references": (
        ["GRANT REFERENCES ON messages TO app_user"],
        {("table-privileges", "messages")},
    ),
    "trigger-privilege": (
        ["GRANT TRIGGER ON triggers TO app_user"],
        {("table-privileges", "triggers")},
    ),
    "hotel-id-updatable": (
        ["GRANT UPDATE (hotel_id) ON guests TO app_user"],
        {("tenant-column-update", "guests")},
    ),
    "hotels-id-updatable": (
        ["GRANT UPDATE ON hotels TO app_user"],
        {("tenant-column-update", "hotels")},
    ),
    "schema-create": (["GRANT CREATE ON SCHEMA public TO app_user"], {("schema-create", None)}),
    # a temp table is found before public's (pg_temp first) and outlives the transaction
    "temporary-for-app-role": (
        ["GRANT TEMPORARY ON DATABASE {db} TO app_user"],
        {("temp-tables", None)},
    ),
    "temporary-for-public": (
        ["GRANT TEMPORARY ON DATABASE {db} TO PUBLIC"],
        {("temp-tables", None)},
    ),
    "app-role-owns-table": (
        ["ALTER TABLE triggers OWNER TO app_user"],
        {("app-role-owns-nothing", None)},
    ),
    "row-security-off": (
        ["ALTER ROLE app_user IN DATABASE {db} SET row_security = off"],
        {("app-role-row-security", None)},
    ),
    "tenant-default-for-role": (
        [
            "ALTER ROLE app_user IN DATABASE {db} SET app.current_hotel_id = "
            "'00000000-0000-0000-0000-000000000001'"
        ],
        {("tenant-default", None)},
    ),
    "tenant-default-for-database": (
        ["ALTER DATABASE {db} SET app.current_hotel_id = '00000000-0000-0000-0000-000000000001'"],
        {("tenant-default", None)},
    ),
    "definer-function-leaks": (
        [
            "CREATE FUNCTION all_guests() RETURNS SETOF guests LANGUAGE sql SECURITY DEFINER"
            " SET search_path = public AS 'SELECT * FROM guests'"
        ],
        {("security-definer", "all_guests()")},
    ),
    "definer-unpinned-search-path": (
        ["ALTER FUNCTION hotelbot_hotel_id_for_whatsapp(text) RESET search_path"],
        {("security-definer", "hotelbot_hotel_id_for_whatsapp(text)")},
    ),
    "view-without-security-invoker": (
        [
            "CREATE VIEW guest_list AS SELECT * FROM guests",
            "GRANT SELECT ON guest_list TO app_user",
        ],
        {("view-security-invoker", "guest_list")},
    ),
    "view-of-view": (
        [
            "CREATE VIEW inner_v WITH (security_invoker = true) AS SELECT * FROM messages",
            "CREATE VIEW outer_v AS SELECT * FROM inner_v",
            "GRANT SELECT ON outer_v TO app_user",
        ],
        {("view-security-invoker", "outer_v")},
    ),
    "materialized-view": (
        [
            "CREATE MATERIALIZED VIEW counts AS SELECT hotel_id, count(*) FROM messages GROUP BY 1",
            "GRANT SELECT ON counts TO app_user",
        ],
        {("materialized-view", "counts")},
    ),
    "new-table-without-rls": (
        NEW_TABLE,
        {
            ("rls-enabled", "reviews"),
            ("rls-forced", "reviews"),
            ("policy-coverage", "reviews"),
            ("tenant-index", "reviews"),
            ("probe-read-other", "reviews"),
        },
    ),
    "single-column-reference": (
        [
            "CREATE UNIQUE INDEX guests_id_key ON guests (id)",  # single-column key: gone in 012
            "CREATE TABLE bookings (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            " hotel_id uuid NOT NULL REFERENCES hotels (id),"
            " guest_id uuid NOT NULL REFERENCES guests (id))",
            "CREATE INDEX ON bookings (hotel_id)",
            "GRANT SELECT, INSERT, DELETE, UPDATE (guest_id) ON bookings TO app_user",
            *(s.format(t="bookings") for s in ISOLATED),
        ],
        {("foreign-key-tenant", "bookings"), ("probe-cross-reference", "bookings")},
    ),
    "partition-without-rls": (
        [
            "CREATE TABLE events (id uuid NOT NULL, hotel_id uuid NOT NULL, at date NOT NULL,"
            " PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
            "CREATE TABLE events_all PARTITION OF events FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
            "GRANT SELECT ON events, events_all TO app_user",
            *(s.format(t="events") for s in ISOLATED),
        ],
        {("rls-enabled", "events_all"), ("probe-read-other", "events_all")},
    ),
    # --- v2: classes the first checker missed (each was checked to let A reach B's data) ---
    # 1. tenant data found by reachability, not by a hotel_id column
    "audit-table-fed-by-trigger": (
        [
            "CREATE TABLE guest_audit (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            " phone text, name text)",
            "GRANT SELECT, INSERT ON guest_audit TO app_user",
            "CREATE FUNCTION audit_guest() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN INSERT INTO guest_audit (phone, name) VALUES (NEW.phone, NEW.name);"
            " RETURN NEW; END$$",
            "CREATE TRIGGER audit_guest AFTER INSERT ON guests FOR EACH ROW"
            " EXECUTE FUNCTION audit_guest()",
        ],
        {("unbound-relation", "guest_audit"), ("probe-canary", "guest_audit")},
    ),
    # A conversation's new message "touches" the guest through a definer trigger that
    # forgot the hotel: every hotel's guest with that phone number is updated.
    "definer-trigger-touches-every-hotel": (
        [
            "CREATE FUNCTION touch_guest() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            " SET search_path = public, pg_catalog, pg_temp AS"
            " $$BEGIN UPDATE guests g SET last_interaction = now() FROM guests mine"
            " WHERE mine.hotel_id = NEW.hotel_id AND mine.id = NEW.id AND g.phone = mine.phone;"
            " RETURN NEW; END$$",
            "REVOKE EXECUTE ON FUNCTION touch_guest() FROM PUBLIC",
            "CREATE TRIGGER touch_guest AFTER UPDATE OF name ON guests FOR EACH ROW"
            " WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION touch_guest()",
        ],
        # the probes' rows share no phone across hotels, so the catalog audit names it
        {("security-definer", "touch_guest()")},
    ),
    "child-keyed-by-parent-id": (
        [
            "CREATE UNIQUE INDEX guests_id_key ON guests (id)",  # single-column key: gone in 012
            "CREATE TABLE guest_notes (guest_id uuid REFERENCES guests (id), note text)",
            "GRANT SELECT, INSERT ON guest_notes TO app_user",
        ],
        {("unbound-relation", "guest_notes")},
    ),
    "tenant-column-with-another-name": (
        [
            "CREATE TABLE rooms (id uuid PRIMARY KEY, property_id uuid NOT NULL"
            " REFERENCES hotels (id), label text)",
            "GRANT SELECT ON rooms TO app_user",
        ],
        {("unbound-relation", "rooms")},
    ),
    "inheritance-parent": (
        [
            "CREATE TABLE event_base (id uuid, note text)",
            "CREATE TABLE guest_events (hotel_id uuid NOT NULL) INHERITS (event_base)",
            *(s.format(t="guest_events") for s in ISOLATED),
            "CREATE INDEX ON guest_events (hotel_id)",
            "GRANT SELECT ON event_base, guest_events TO app_user",
        ],
        {("unbound-relation", "event_base")},
    ),
    "matview-through-function": (
        [
            "CREATE FUNCTION all_names() RETURNS SETOF text LANGUAGE sql"
            " AS 'SELECT name FROM public.guests'",
            "CREATE MATERIALIZED VIEW name_list AS SELECT n FROM all_names() AS n",
            "GRANT SELECT ON name_list TO app_user",
        ],
        {("materialized-view", "name_list"), ("probe-canary", "name_list")},
    ),
    "foreign-table": (
        [
            "CREATE FOREIGN DATA WRAPPER hb_dummy",
            "CREATE SERVER hb_remote FOREIGN DATA WRAPPER hb_dummy",
            "CREATE FOREIGN TABLE remote_guests (hotel_id uuid, phone text) SERVER hb_remote",
            "GRANT SELECT ON remote_guests TO app_user",
        ],
        {("rls-enabled", "remote_guests")},
    ),
    "large-object": (
        ["SELECT lo_create(4242)", "GRANT SELECT ON LARGE OBJECT 4242 TO app_user"],
        {("large-objects", None)},
    ),
    "shared-sequence": (
        ["CREATE SEQUENCE booking_no", "GRANT USAGE ON SEQUENCE booking_no TO app_user"],
        {("sequence-shared", "booking_no")},
    ),
    # 2. column-level privileges
    "column-references-grant": (
        ["GRANT REFERENCES (id) ON guests TO app_user"],
        {("table-privileges", "guests")},
    ),
    "column-grant-on-child-table": (
        [
            "CREATE TABLE guest_docs (guest_id uuid NOT NULL, passport text)",
            "GRANT SELECT (passport) ON guest_docs TO app_user",
        ],
        {("unbound-relation", "guest_docs")},
    ),
    # 3. code that runs with its owner's rights whatever the EXECUTE ACL
    "rule-archives-with-owner-rights": (
        [
            "CREATE TABLE message_archive (hotel_id uuid, content text)",
            "CREATE RULE archive AS ON INSERT TO messages DO ALSO"
            " INSERT INTO message_archive VALUES (NEW.hotel_id, NEW.content)",
        ],
        {("rule-owner-rights", "messages.archive")},
    ),
    "definer-trigger-not-executable": (
        [
            "CREATE FUNCTION sync_phone() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            " SET search_path = public AS $$BEGIN UPDATE guests SET name = NEW.name"
            " WHERE phone = NEW.phone AND id <> NEW.id; RETURN NEW; END$$",
            "REVOKE EXECUTE ON FUNCTION sync_phone() FROM PUBLIC",
            "CREATE TRIGGER sync_phone AFTER INSERT ON guests FOR EACH ROW"
            " EXECUTE FUNCTION sync_phone()",
        ],
        {("security-definer", "sync_phone()"), ("probe-natural-key", None)},
    ),
    # 4. trust by behaviour, not identity
    "reviewed-lookup-body-changed": (
        [
            "CREATE OR REPLACE FUNCTION hotelbot_hotel_id_for_whatsapp(whatsapp_number text)"
            " RETURNS uuid LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
            " AS $$SELECT id FROM public.hotels WHERE whatsapp_number = $1$$"
        ],
        {("security-definer", "hotelbot_hotel_id_for_whatsapp(text)")},
    ),
    "definer-owner-with-open-policy": (
        [
            "DO $$BEGIN CREATE ROLE hb_reporter NOLOGIN; EXCEPTION WHEN duplicate_object"
            " THEN NULL; END$$",
            "GRANT SELECT ON guests TO hb_reporter",
            "CREATE POLICY reporter_all ON guests FOR SELECT TO hb_reporter USING (true)",
            "CREATE FUNCTION guests_with_phone(text) RETURNS bigint LANGUAGE sql"
            " SECURITY DEFINER SET search_path = public"
            " AS 'SELECT count(*) FROM guests WHERE phone = $1'",
            "ALTER FUNCTION guests_with_phone(text) OWNER TO hb_reporter",
        ],
        {("security-definer", "guests_with_phone(text)")},
    ),
    "invoker-view-over-a-definer-function": (
        [
            "CREATE FUNCTION guest_directory() RETURNS TABLE (name text, phone text)"
            " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public"
            " AS 'SELECT name, phone FROM guests'",
            "CREATE VIEW directory WITH (security_invoker = true) AS SELECT * FROM"
            " guest_directory()",
            "GRANT SELECT ON directory TO app_user",
        ],
        {("security-definer", "guest_directory()"), ("probe-canary", "directory")},
    ),
    # 5. side channels
    "unique-key-without-hotel": (
        ["ALTER TABLE guests ADD CONSTRAINT uq_guests_phone UNIQUE (phone)"],
        {("unique-oracle", "guests")},
    ),
    "notify-shared-channel": (
        [
            "CREATE FUNCTION notify_message() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN PERFORM pg_notify('messages', NEW.content); RETURN NEW; END$$",
            "CREATE TRIGGER notify_message AFTER INSERT ON messages FOR EACH ROW"
            " EXECUTE FUNCTION notify_message()",
        ],
        {("notify-channel", "notify_message()")},
    ),
    "leakproof-that-raises": (
        [
            "CREATE FUNCTION noisy(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE LEAKPROOF"
            " AS $$BEGIN RAISE NOTICE '%', $1; RETURN true; END$$"
        ],
        {("leakproof-function", "noisy(text)")},
    ),
    # 6. effects of A's writes on B's rows (no static trace: the rule targets its own table)
    "rule-rewrites-other-hotels-rows": (
        [
            "CREATE RULE same_phone AS ON INSERT TO guests DO ALSO"
            " UPDATE guests SET name = NEW.name WHERE phone = NEW.phone AND id <> NEW.id"
        ],
        {("probe-natural-key", None)},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_misconfiguration_is_caught(db_url: URL, case: str) -> None:
    statements, expected = CASES[case]
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.replace("{db}", f'"{db_url.database}"'))
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    failed = {(r.id, r.table) for r in report.failures()}
    assert not report.ok
    assert expected <= failed, f"missing {expected - failed}; got {sorted(failed)}"
    for result in report.failures():
        assert result.fix, f"{result.id} on {result.table} gives no fix"


@pytest.fixture
def make_app_role(server_url: URL, db_url: URL):
    """Roles used in place of app_user, so cluster-wide attributes never touch app_user itself."""
    made: list[str] = []

    def make(name: str, *statements: str) -> str:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
            if (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
                is None
            ):
                conn.execute(f"CREATE ROLE {name} NOLOGIN")
            for statement in statements:
                conn.execute(statement.format(role=name))
        with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
            conn.execute(f"GRANT app_user TO {name}")
        made.append(name)
        return name

    return make


@pytest.mark.parametrize(
    ("name", "statements", "expected"),
    [
        ("hb_rls_bypass", ["ALTER ROLE {role} BYPASSRLS"], "app-role-attributes"),
        ("hb_rls_super", ["ALTER ROLE {role} SUPERUSER"], "app-role-attributes"),
        ("hb_rls_createrole", ["ALTER ROLE {role} CREATEROLE"], "app-role-attributes"),
        ("hb_rls_readall", ["GRANT pg_read_all_data TO {role}"], "app-role-membership"),
        ("hb_rls_owner_member", ["GRANT postgres TO {role}"], "app-role-membership"),
        # v2: an allowlist, not a denylist
        ("hb_rls_replication", ["ALTER ROLE {role} REPLICATION"], "app-role-attributes"),
        ("hb_rls_createdb", ["ALTER ROLE {role} CREATEDB"], "app-role-attributes"),
        ("hb_rls_stats", ["GRANT pg_read_all_stats TO {role}"], "app-role-membership"),
    ],
)
def test_privileged_app_role_is_caught(db_url, make_app_role, name, statements, expected) -> None:
    role = make_app_role(
        name, "ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS NOCREATEROLE", *statements
    )
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine, app_role=role, probes=False)
    engine.dispose()
    assert (expected, None) in {(r.id, r.table) for r in report.failures()}


@pytest.mark.parametrize("grantee", ["app_user", "PUBLIC"])
def test_a_parameter_the_app_role_may_set_is_caught(server_url: URL, db_url: URL, grantee) -> None:
    """SET session_replication_role = replica in a request switches off the tenant foreign
    keys: hotel A's message may then point at hotel B's conversation. Parameter privileges
    are cluster-wide, so the grant is revoked whatever the check says."""
    grant = f"SET ON PARAMETER session_replication_role TO {grantee}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f"GRANT {grant}")
        try:
            engine = create_engine(db_url, poolclass=NullPool)
            report = rls.check(engine, probes=False)
            engine.dispose()
        finally:
            conn.execute(f"REVOKE {grant.replace(' TO ', ' FROM ')}")
    (failure,) = [r for r in report.failures() if r.id == "catalog-grant"]
    assert "parameter session_replication_role SET" in failure.detail, failure.detail
    assert ("(to PUBLIC)" in failure.detail) == (grantee == "PUBLIC")
    assert failure.fix and "ON PARAMETER" in failure.fix


def test_missing_app_role_is_caught(db_url: URL) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine, app_role="hb_no_such_role")
    engine.dispose()
    assert [r.id for r in report.failures()] == ["app-role-exists"]


def test_the_real_schema_passes(db_url: URL) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert report.ok, report.failures()
    ids = {r.id for r in report.results}
    assert {"rls-enabled", "probe-read-other", "policy-per-row", "tenant-index"} <= ids


TENANT_FN = "hotelbot_test_current_hotel"
#: Sound, ordinary schema changes: each must pass with no failure (the first checker failed
#: them). (statements, config overrides).
SOUND: dict[str, tuple[list[str], dict]] = {
    "stable-helper-function": (
        [
            f"CREATE FUNCTION {TENANT_FN}() RETURNS uuid LANGUAGE sql STABLE AS"
            " $$SELECT hotelbot_current_hotel_id()$$",
            *_replace_policy(
                "guests", f"hotel_id = (SELECT {TENANT_FN}())", f"hotel_id = (SELECT {TENANT_FN}())"
            ),
        ],
        {},
    ),
    "bare-helper-function": (
        [
            f"CREATE FUNCTION {TENANT_FN}() RETURNS uuid LANGUAGE sql STABLE AS"
            " $$SELECT hotelbot_current_hotel_id()$$",
            *_replace_policy("triggers", f"hotel_id = {TENANT_FN}()", f"{TENANT_FN}() = hotel_id"),
        ],
        {},
    ),
    "cast-outside-the-sub-select": (
        _replace_policy(
            "messages",
            "hotel_id = (SELECT hotelbot_current_hotel_id()::text)::uuid",
            "hotel_id = (SELECT hotelbot_current_hotel_id()::text)::uuid",
        ),
        {},
    ),
    "equivalent-forms": (
        _replace_policy(
            "staff_notifications",
            f"{TENANT} = hotel_id AND status IS NOT NULL OR hotel_id = {TENANT}",
            "(hotel_id)::text = (SELECT hotelbot_current_hotel_id()::text)",
        ),
        {},
    ),
    "restrictive-tenant-policy-narrows-an-open-one": (
        [
            "CREATE POLICY open_read ON triggers FOR SELECT TO app_user USING (true)",
            f"CREATE POLICY tenant_only ON triggers AS RESTRICTIVE TO app_user"
            f" USING (hotel_id = {TENANT}) WITH CHECK (hotel_id = {TENANT})",
        ],
        {},
    ),
    "partitions-audited-through-their-root": (
        [
            "CREATE TABLE events (id uuid NOT NULL DEFAULT gen_random_uuid(),"
            " hotel_id uuid NOT NULL REFERENCES hotels (id), at date NOT NULL,"
            " PRIMARY KEY (hotel_id, id, at)) PARTITION BY RANGE (at)",
            "CREATE TABLE events_all PARTITION OF events FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
            "GRANT SELECT, INSERT, DELETE ON events TO app_user",
            *(s.format(t="events") for s in ISOLATED),
        ],
        {},
    ),
    "timestamptz-in-the-primary-key": (
        [
            "CREATE TABLE stays (hotel_id uuid NOT NULL REFERENCES hotels (id),"
            " at timestamptz NOT NULL DEFAULT clock_timestamp(), room text,"
            " PRIMARY KEY (hotel_id, at))",
            "GRANT SELECT, INSERT, DELETE, UPDATE (room) ON stays TO app_user",
            *(s.format(t="stays") for s in ISOLATED),
        ],
        {},
    ),
    "security-invoker-view": (
        [
            "CREATE VIEW guest_list WITH (security_invoker = true) AS SELECT id, name FROM guests",
            "GRANT SELECT ON guest_list TO app_user",
        ],
        {},
    ),
    "declared-non-tenant-reference-table": (
        [
            "CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL)",
            "INSERT INTO countries VALUES ('FR', 'France')",
            "GRANT SELECT ON countries TO app_user",
        ],
        {"non_tenant": ("countries", "ISO country names, the same for every hotel")},
    ),
    "child-table-bound-through-its-parent": (
        [
            "CREATE UNIQUE INDEX guests_id_key ON guests (id)",  # single-column key: gone in 012
            "CREATE TABLE guest_tags (guest_id uuid NOT NULL REFERENCES guests (id), tag text)",
            "ALTER TABLE guest_tags ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE guest_tags FORCE ROW LEVEL SECURITY",
            "CREATE POLICY via_guest ON guest_tags TO app_user"
            " USING (guest_id IN (SELECT id FROM guests))"
            " WITH CHECK (guest_id IN (SELECT id FROM guests))",
            "GRANT SELECT, INSERT ON guest_tags TO app_user",
        ],
        {},
    ),
}


BARE = "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"
#: Policies that bind the tenant soundly but trust the bare setting, which SQL inside the
#: transaction can set: sound in form (no policy finding), forgeable on a database that signs
#: its tenants. (statements, the one table forging opens.)
BARE_SETTING: dict[str, tuple[list[str], str]] = {
    "helper-function": (
        [
            f"CREATE FUNCTION {TENANT_FN}() RETURNS uuid LANGUAGE sql STABLE AS"
            " $$SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid$$",
            *_replace_policy(
                "guests", f"hotel_id = (SELECT {TENANT_FN}())", f"hotel_id = (SELECT {TENANT_FN}())"
            ),
        ],
        "guests",
    ),
    "cast-outside-the-sub-select": (
        _replace_policy(
            "messages",
            "hotel_id = (SELECT NULLIF(current_setting('app.current_hotel_id', true), ''))::uuid",
            "hotel_id = (SELECT NULLIF(current_setting('app.current_hotel_id', true), ''))::uuid",
        ),
        "messages",
    ),
    "text-comparison": (
        _replace_policy(
            "staff_notifications",
            f"{BARE} = hotel_id",
            "(hotel_id)::text = (SELECT current_setting('app.current_hotel_id', true))",
        ),
        "staff_notifications",
    ),
    "error-when-no-tenant": (
        _replace_policy(
            "guests",
            "hotel_id = (SELECT current_setting('app.current_hotel_id')::uuid)",
            "hotel_id = (SELECT current_setting('app.current_hotel_id')::uuid)",
        ),
        "guests",
    ),
    "altered-derived-table": (
        [
            f"ALTER POLICY message_sentiment_hourly_tenant_isolation ON message_sentiment_hourly"
            f" USING (hotel_id = {BARE}) WITH CHECK (hotel_id = {BARE})"
        ],
        "message_sentiment_hourly",
    ),
    "new-table": (
        [
            "CREATE TABLE bookings (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            " hotel_id uuid NOT NULL REFERENCES hotels (id), room text NOT NULL)",
            "CREATE INDEX ON bookings (hotel_id)",
            "GRANT SELECT, INSERT, DELETE ON bookings TO app_user",
            "ALTER TABLE bookings ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE bookings FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY iso ON bookings TO app_user USING (hotel_id = {BARE})"
            f" WITH CHECK (hotel_id = {BARE})",
        ],
        "bookings",
    ),
}


@pytest.mark.parametrize("case", sorted(BARE_SETTING))
def test_a_policy_that_trusts_the_bare_setting_fails_where_tenants_are_signed(
    db_url: URL, case: str
) -> None:
    """The database signs its tenants, so SQL injected into hotel A's transaction that sets
    the tenant to B by hand reads B's rows on that one table: rls-check fails, names it and
    says which function to compare with; nothing else is reported."""
    statements, table = BARE_SETTING[case]
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    failed = {(r.id, r.table) for r in report.failures()}
    assert failed == {("probe-forged-tenant", table)}, sorted(failed)
    (forged,) = report.failures()
    assert forged.fix and "hotelbot_current_hotel_id()" in forged.fix


@pytest.mark.parametrize("case", sorted(SOUND))
def test_sound_change_passes(db_url: URL, case: str) -> None:
    from hotelbot_cli.rls.config import NonTenant, load_config

    statements, overrides = SOUND[case]
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    cfg = load_config()
    if "non_tenant" in overrides:
        cfg = load_config(non_tenant=(NonTenant(*overrides["non_tenant"]),))
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine, config=cfg)
    engine.dispose()
    assert report.ok, [(r.id, r.table, r.detail) for r in report.failures()]


def test_the_real_schema_passes_as_a_non_superuser_owner(owner_engine) -> None:
    """0 false alarms as the managed-PostgreSQL owner too, and its self-test is green."""
    report = rls.check(owner_engine)
    assert report.ok, [(r.id, r.table, r.detail) for r in report.failures()]
    assert not [r for r in report.results if r.status == "warn"]
    selftest = rls.self_test(owner_engine)
    assert selftest.ok, [(r.table, r.detail) for r in selftest.failures()]
    assert {r.status for r in selftest.results} <= {"pass", "skip"}


def test_a_clean_database_has_no_warnings(db_url: URL) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert report.ok and not [r for r in report.results if r.status == "warn"]


def test_a_verifier_that_accepts_expired_signatures_fails(db_url: URL) -> None:
    """The verifier's expiry test dropped: forging still fails (the MAC holds), but a
    signature that leaked once opens its hotel forever. rls-check fails and names it."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        (body,) = conn.execute(
            "SELECT pg_get_functiondef('public.hotelbot_current_hotel_id()'::regprocedure)"
        ).fetchone()
        lenient = body.replace("OR expires::bigint < extract(epoch FROM now())", "")
        assert lenient != body  # revision 011's body has the expiry test
        conn.execute(lenient)
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert not report.ok
    stale = [r for r in report.failures() if r.id == "probe-expired-signature"]
    assert {"guests", "hotels", "messages"} <= {r.table for r in stale}
    assert all(r.fix and "expired" in r.fix for r in stale)
    assert not [r for r in report.results if r.id == "probe-forged-tenant" and r.status != "pass"]


def test_a_verifier_that_ignores_the_signature_fails(db_url: URL) -> None:
    """The verifier's body replaced by one that trusts the bare setting: the policies still
    read the tenant setting, so only the probe that forges it inside A's transaction shows
    that SQL injected into a request could read another hotel (issue 10's threat). The
    database signs its tenants, so that is a failure on every table, naming the verifier."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION public.hotelbot_current_hotel_id() RETURNS uuid"
            " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
            " AS $$ SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid $$"
        )
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert not report.ok
    forged = [r for r in report.failures() if r.id == "probe-forged-tenant"]
    assert {"guests", "hotels", "messages"} <= {r.table for r in forged}
    assert all(r.fix and "hotelbot_current_hotel_id" in r.fix for r in forged)


def test_a_schema_without_signed_tenants_only_warns(db_url: URL) -> None:
    """A schema that never signed its tenants (no hotelbot_private.tenant_key: a peer's
    schema, or one before revision 009) has no defence to compare with: forging by hand
    is a warning there, and honest code still passes."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        for table in (
            "hotels",
            "guests",
            "triggers",
            "conversations",
            "messages",
            "staff_notifications",
            "message_sentiment_hourly",
        ):
            conn.execute(
                f"ALTER POLICY {table}_tenant_isolation ON {table}"
                f" USING ({'id' if table == 'hotels' else 'hotel_id'} = {BARE})"
                f" WITH CHECK ({'id' if table == 'hotels' else 'hotel_id'} = {BARE})"
            )
        conn.execute("DROP SCHEMA hotelbot_private CASCADE")
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert report.ok, [(r.id, r.table, r.detail) for r in report.failures()]
    warned = {
        r.table for r in report.results if r.id == "probe-forged-tenant" and r.status == "warn"
    }
    assert {"guests", "hotels", "messages"} <= warned, warned


@pytest.mark.parametrize("hole", ["app role may write the cache", "registration skips the check"])
def test_a_cache_that_takes_unverified_signatures_fails(db_url: URL, hole: str) -> None:
    """Revision 013's cache of verified signatures opened to what the verifier would refuse:
    written directly by the app role, or by a registering function that stores whatever it
    is given. Forging by hand still fails (the digest is not there); planting does, and
    rls-check names it."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        if hole == "app role may write the cache":
            conn.execute("GRANT INSERT ON hotelbot_private.verified_tenants TO app_user")
        else:
            (body,) = conn.execute(
                "SELECT pg_get_functiondef("
                "'hotelbot_private.remember_tenant(uuid, text)'::regprocedure)"
            ).fetchone()
            trusting = body.replace(
                "IF split_part(signature, ':', 2) IS DISTINCT FROM",
                "IF false AND split_part(signature, ':', 2) IS DISTINCT FROM",
            )
            assert trusting != body  # revision 013's body checks the MAC
            conn.execute(trusting)
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    planted = [r for r in report.failures() if r.id == "probe-planted-signature"]
    assert {"guests", "hotels", "messages"} <= {r.table for r in planted}
    assert all(r.fix and "hotelbot_private.verified_tenants" in r.fix for r in planted)
    assert not [r for r in report.results if r.id == "probe-forged-tenant" and r.status != "pass"]


def test_a_policy_that_ignores_a_cached_signatures_expiry_fails(db_url: URL) -> None:
    """One table's policy finds the digest of the bound hotel and signature in the cache but
    never asks whether it expired: a signature that leaked lives on until a registration
    prunes it. An expired signature the cache never held still opens nothing there (the
    verifier answers), so only the probe with the digest still cached catches it."""
    timeless = (
        "hotel_id = (SELECT COALESCE((SELECT NULLIF(current_setting('app.current_hotel_id',"
        " true), '')::uuid WHERE EXISTS (SELECT 1 FROM hotelbot_private.verified_tenants v"
        " WHERE v.digest = (SELECT sha256(convert_to(current_setting('app.current_hotel_id',"
        " true) || ':' || current_setting('app.tenant_signature', true), 'UTF8'))))),"
        " hotelbot_current_hotel_id()))"
    )
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            f"ALTER POLICY guests_tenant_isolation ON guests USING ({timeless})"
            f" WITH CHECK ({timeless})"
        )
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert {(r.id, r.table) for r in report.failures()} == {
        ("probe-expired-cached-signature", "guests")
    }
    (failure,) = report.failures()
    assert failure.fix and "v.expires_at >= now()" in failure.fix
    passed = {(r.id, r.table) for r in report.results if r.status == "pass"}
    assert {
        ("probe-expired-signature", "guests"),
        ("probe-expired-cached-signature", "messages"),
    } <= passed
    with psycopg.connect(libpq_url(db_url)) as conn:  # the probe left nothing in the cache
        (stale,) = conn.execute(
            "SELECT count(*) FROM hotelbot_private.verified_tenants WHERE expires_at < now()"
        ).fetchone()
    assert stale == 0


def test_a_policy_that_trusts_any_cached_signature_fails(db_url: URL) -> None:
    """One table's policy checks only that the cache holds *some* unexpired digest, not the
    digest of the bound hotel and signature: any tenant's registered signature then opens
    every hotel there. Forging by hand only warns; planting a made-up signature fails and
    names the table (the cache is there, so the database has chosen signed tenants)."""
    lax = (
        "hotel_id = (SELECT COALESCE((SELECT NULLIF(current_setting('app.current_hotel_id',"
        " true), '')::uuid WHERE EXISTS (SELECT 1 FROM hotelbot_private.verified_tenants v"
        " WHERE v.expires_at >= now())), hotelbot_current_hotel_id()))"
    )
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            f"ALTER POLICY messages_tenant_isolation ON messages USING ({lax}) WITH CHECK ({lax})"
        )
    engine = create_engine(db_url, poolclass=NullPool)
    report = rls.check(engine)
    engine.dispose()
    assert not report.ok
    planted = [r for r in report.failures() if r.id == "probe-planted-signature"]
    assert {r.table for r in planted} == {"messages"}
    assert all(r.fix and "digest of the bound hotel" in r.fix for r in planted)
