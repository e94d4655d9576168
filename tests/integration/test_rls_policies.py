"""Row level security as the bot sees it: app_user through the library's tenant sessions."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from psycopg import sql
from rls_support import APP_ROLE, Tenant, insert_tenant, updatable_column
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool, QueuePool

from hotelbot_cli import migrations, rls
from hotelbot_cli.db.lookup import hotel_id_for_whatsapp
from hotelbot_cli.db.tenant import tenant_session, tenant_statements
from hotelbot_cli.errors import UsageError
from hotelbot_cli.models import TENANT_TABLES
from hotelbot_cli.settings import libpq_url

#: Read from the models: a new tenant table is tested here, with the row of it that
#: tests/datasets.py builds for each hotel (tests/unit/test_datasets.py fails, naming the
#: table, until it can).
TABLES = ("hotels", *TENANT_TABLES)
ID = {"hotels": "id"}


def _factory(url: URL, pool: type = NullPool, **kw: object) -> sessionmaker:
    return sessionmaker(create_engine(url, poolclass=pool, **kw), expire_on_commit=False)


def _ids(session, table: str) -> set[str]:
    col = ID.get(table, "hotel_id")
    return {str(r[0]) for r in session.execute(text(f"SELECT {col} FROM {table}"))}


@pytest.mark.parametrize("table", TABLES)
def test_tenant_sees_only_its_own_rows(db_url: URL, two_hotels: tuple[Tenant, Tenant], table: str):
    a, b = two_hotels
    factory = _factory(db_url)
    for me in (a, b):
        with tenant_session(me.hotel_id, factory, role=APP_ROLE) as s:
            assert _ids(s, table) == {me.hotel_id}


@pytest.mark.parametrize("setting", [None, ""])
def test_no_tenant_means_no_rows_and_no_writes(db_url: URL, two_hotels, setting):
    a, _ = two_hotels
    with psycopg.connect(libpq_url(db_url)) as conn:
        conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
        if setting is not None:
            conn.execute("SELECT set_config('app.current_hotel_id', %s, true)", (setting,))
        for table in TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        assert conn.execute("DELETE FROM guests").rowcount == 0
        assert conn.execute("UPDATE guests SET name = 'x'").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO guests (hotel_id, phone) VALUES (%s, '+79160000000')", (a.hotel_id,)
            )


def test_reset_tenant_sees_nothing(db_url: URL, two_hotels):
    a, _ = two_hotels
    with psycopg.connect(libpq_url(db_url)) as conn:
        for statement in tenant_statements(a.hotel_id, APP_ROLE):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM guests").fetchone()[0] == 1
        conn.execute("RESET app.current_hotel_id")
        assert conn.execute("SELECT count(*) FROM guests").fetchone()[0] == 0


def test_malformed_tenant_is_an_error_never_rows(db_url: URL, two_hotels):
    with psycopg.connect(libpq_url(db_url)) as conn:
        conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
        conn.execute("SELECT set_config('app.current_hotel_id', 'hotel-1 OR true', true)")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("SELECT * FROM guests").fetchall()


def test_tenant_session_rejects_a_malformed_id():
    with pytest.raises(UsageError), tenant_session("not-a-uuid"):
        pass


@pytest.mark.parametrize("table", TABLES[1:])
def test_cannot_touch_or_repoint_another_hotels_rows(db_url: URL, two_hotels, table: str):
    a, b = two_hotels
    factory = _factory(db_url)
    with psycopg.connect(libpq_url(db_url)) as conn:
        column = updatable_column(conn, table)
    with tenant_session(a.hotel_id, factory, role=APP_ROLE) as s:
        target = {"i": b.row_id(table)}
        delete = s.execute(text(f"DELETE FROM {table} WHERE id = :i"), target)
        update = s.execute(text(f"UPDATE {table} SET {column} = {column} WHERE id = :i"), target)
        assert (delete.rowcount, update.rowcount) == (0, 0)
    # hotel_id is not updatable by the app role at all: no row can be moved to hotel B
    with pytest.raises(DBAPIError) as err, tenant_session(a.hotel_id, factory, role=APP_ROLE) as s:
        s.execute(text(f"UPDATE {table} SET hotel_id = :b"), {"b": b.hotel_id})
    assert err.value.orig.sqlstate == "42501"


def test_cannot_insert_for_another_hotel(db_url: URL, two_hotels):
    a, b = two_hotels
    with (
        pytest.raises(DBAPIError) as err,
        tenant_session(a.hotel_id, _factory(db_url), role=APP_ROLE) as s,
    ):
        s.execute(
            text("INSERT INTO guests (hotel_id, phone) VALUES (:h, '+79160000001')"),
            {"h": b.hotel_id},
        )
    assert err.value.orig.sqlstate == "42501"


def test_cannot_make_own_rows_reference_another_hotels(db_url: URL, two_hotels):
    """Composite foreign keys: a guessed id of hotel B's guest is refused (23503)."""
    a, b = two_hotels
    with (
        pytest.raises(DBAPIError) as err,
        tenant_session(a.hotel_id, _factory(db_url), role=APP_ROLE) as s,
    ):
        s.execute(
            text("INSERT INTO conversations (hotel_id, guest_id) VALUES (:h, :g)"),
            {"h": a.hotel_id, "g": b.guest_id},
        )
    assert err.value.orig.sqlstate == "23503"


def test_own_token_readable_other_token_never(db_url: URL, two_hotels):
    a, b = two_hotels
    with tenant_session(a.hotel_id, _factory(db_url), role=APP_ROLE) as s:
        tokens = [r[0] for r in s.execute(text("SELECT green_api_token FROM hotels"))]
        assert tokens == [a.token]
        leaked = s.execute(
            text("SELECT count(*) FROM hotels WHERE green_api_token = :t"), {"t": b.token}
        ).scalar()
        assert leaked == 0


def test_app_role_cannot_truncate_or_change_the_schema(db_url: URL, two_hotels):
    a, _ = two_hotels
    for statement in (
        "TRUNCATE guests",
        "ALTER TABLE guests ADD COLUMN x int",
        "CREATE TABLE public.evil (id int)",
        "DROP POLICY guests_tenant_isolation ON guests",
        "ALTER TABLE guests DISABLE ROW LEVEL SECURITY",
        "INSERT INTO hotels (name, whatsapp_number) VALUES ('x', '+15550009999')",
    ):
        with psycopg.connect(libpq_url(db_url)) as conn:
            for binding in tenant_statements(a.hotel_id, APP_ROLE):
                conn.execute(binding)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_app_role_attributes(superuser_conn):
    row = superuser_conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole FROM pg_roles"
        " WHERE rolname = %s",
        (APP_ROLE,),
    ).fetchone()
    assert row == (False, False, False, False)


def test_lookup_by_whatsapp_number_before_any_tenant(db_url: URL, two_hotels, superuser_conn):
    a, b = two_hotels
    superuser_conn.execute("UPDATE hotels SET is_active = false WHERE id = %s", (b.hotel_id,))
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SET ROLE {APP_ROLE}")
        assert conn.exec_driver_sql("SELECT count(*) FROM hotels").scalar() == 0
        assert hotel_id_for_whatsapp(conn, a.whatsapp) == uuid.UUID(a.hotel_id)
        assert hotel_id_for_whatsapp(conn, b.whatsapp) is None  # inactive
        assert hotel_id_for_whatsapp(conn, "+15559999999") is None
        # the function's own setting does not outlive the call
        assert conn.exec_driver_sql("SELECT current_setting('hotelbot.lookup', true)").scalar() in (
            "",
            None,
        )
        assert conn.exec_driver_sql("SELECT count(*) FROM hotels").scalar() == 0
        with pytest.raises(UsageError):
            hotel_id_for_whatsapp(conn, "12345")
    engine.dispose()


def test_lookup_function_is_not_executable_by_public(superuser_conn):
    assert (
        superuser_conn.execute(
            "SELECT has_function_privilege('public',"
            " 'hotelbot_hotel_id_for_whatsapp(text)', 'EXECUTE')"
        ).fetchone()[0]
        is False
    )


def test_tenant_setting_does_not_survive_into_the_next_transaction(db_url: URL, two_hotels):
    """A pooled connection reused for another request carries no tenant and no role."""
    a, _ = two_hotels
    engine = create_engine(db_url, poolclass=QueuePool, pool_size=1, max_overflow=0)
    factory = sessionmaker(engine)
    with tenant_session(a.hotel_id, factory, role=APP_ROLE) as s:
        first_pid = s.execute(text("SELECT pg_backend_pid()")).scalar()
        assert s.execute(text("SELECT count(*) FROM guests")).scalar() == 1
    with engine.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first_pid
        )  # same connection
        assert conn.exec_driver_sql(
            "SELECT current_setting('app.current_hotel_id', true)"
        ).scalar() in ("", None)
        assert conn.exec_driver_sql("SELECT current_user").scalar() != APP_ROLE
        conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
        assert conn.exec_driver_sql("SELECT count(*) FROM guests").scalar() == 0
    engine.dispose()


def test_policies_keep_index_plans(db_url: URL, two_hotels, superuser_conn):
    """The tenant qual is an InitPlan (once per statement) usable as an index condition."""
    a, b = two_hotels
    for hotel in (a, b):
        superuser_conn.execute(
            "INSERT INTO guests (hotel_id, phone) SELECT %s, '+7900' || lpad(i::text, 7, '0')"
            " FROM generate_series(1, 3000) i",
            (hotel.hotel_id,),
        )
        superuser_conn.execute(
            "INSERT INTO conversations (hotel_id, guest_id, status, last_message_at)"
            " SELECT %s, %s, 'closed', now() - i * interval '1 hour'"
            " FROM generate_series(1, 3000) i",
            (hotel.hotel_id, hotel.guest_id),
        )
    superuser_conn.execute("ANALYZE guests")
    superuser_conn.execute("ANALYZE conversations")
    with psycopg.connect(libpq_url(db_url)) as conn:
        for statement in tenant_statements(a.hotel_id, APP_ROLE):
            conn.execute(statement)

        def plan(query: str) -> str:
            return "\n".join(r[0] for r in conn.execute("EXPLAIN " + query))

        lookup = plan(
            f"SELECT id FROM guests WHERE hotel_id = '{a.hotel_id}' AND phone = '+79161234567'"
        )
        assert "uq_guests_hotel_id_phone" in lookup
        recent = plan(
            "SELECT count(*) FROM conversations WHERE last_message_at > now() - interval '7 days'"
        )
        assert "ix_conversations_hotel_id_last_message_at" in recent
        assert "InitPlan" in recent
        # The tenant is an InitPlan parameter: `$0` up to PostgreSQL 16, `(InitPlan 1).col1` after.
        assert re.search(r"Index Cond: \(\(hotel_id = (\$\d+|\(InitPlan)", recent)
        assert "current_setting" not in recent.split("InitPlan")[0].split("Index Cond")[-1]


def test_downgrade_removes_exactly_what_007_added(db_url: URL, superuser_conn):
    engine = create_engine(db_url, poolclass=NullPool)
    migrations.downgrade(engine, "006")
    rows = superuser_conn.execute(
        "SELECT count(*) FILTER (WHERE relrowsecurity OR relforcerowsecurity) FROM pg_class"
        " WHERE relname = ANY(%s)",
        (list(TABLES),),
    ).fetchone()
    assert rows[0] == 0
    assert superuser_conn.execute("SELECT count(*) FROM pg_policy").fetchone()[0] == 0
    assert (
        superuser_conn.execute(
            "SELECT to_regprocedure('hotelbot_hotel_id_for_whatsapp(text)')"
        ).fetchone()[0]
        is None
    )
    assert (
        superuser_conn.execute(
            "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = %s",
            (APP_ROLE,),
        ).fetchone()[0]
        == 0
    )
    # the role is cluster-wide and stays; upgrading again is idempotent
    assert superuser_conn.execute(
        "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
    ).fetchone()
    migrations.upgrade(engine, "head")
    assert rls.check(engine).ok
    engine.dispose()


def test_non_superuser_owner_migrates_checks_and_maintains_data(owner_engine, owner_db_url):
    """Managed PostgreSQL: FORCE binds the owner too; it loads data under NO FORCE, then FORCEs."""
    report = rls.check(owner_engine)
    assert report.ok, [r for r in report.failures()]
    with psycopg.connect(libpq_url(owner_db_url)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # FORCE applies to the owner
            conn.execute("INSERT INTO hotels (name, whatsapp_number) VALUES ('x', '+15550003003')")
        conn.rollback()
        for table in TABLES:
            conn.execute(
                sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(sql.Identifier(table))
            )
        with conn.cursor().copy("COPY hotels (name, whatsapp_number) FROM STDIN") as copy:
            copy.write_row(("Copied", "+15550003003"))
        a = insert_tenant(conn, "+15550004004", "tok")
        for table in TABLES:
            conn.execute(
                sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(sql.Identifier(table))
            )
        conn.commit()
        assert conn.execute("SELECT count(*) FROM hotels").fetchone()[0] == 0  # forced again
        for statement in tenant_statements(a.hotel_id, APP_ROLE):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM guests").fetchone()[0] == 1
        conn.rollback()
    assert rls.check(owner_engine).ok
    assert migrations.downgrade(owner_engine, "006").after == ("006",)
    assert migrations.upgrade(owner_engine, "head").after == migrations.heads()
