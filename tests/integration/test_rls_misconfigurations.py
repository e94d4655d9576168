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

TENANT = "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"
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
