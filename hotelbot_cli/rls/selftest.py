"""``rls-check --self-test``: plant known leaks in a scratch schema and prove each is caught.

Everything happens in the caller's transaction, which is rolled back: the scratch schema
never becomes visible to anyone else and is gone afterwards. A green self-test means the
checker, on this server and its version, really fails on the leaks it claims to find.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from psycopg import Connection, sql

from hotelbot_cli.rls.report import CheckResult

#: (check id, scratch table) pairs that MUST fail on the planted objects.
EXPECTED = (
    ("rls-enabled", "leak_no_rls"),
    ("table-privileges", "leak_no_rls"),
    ("tenant-index", "leak_no_rls"),
    ("probe-read-other", "leak_no_rls"),
    ("policy-bound", "leak_open_policy"),
    ("probe-read-other", "leak_open_policy"),
    ("rls-forced", "leak_per_row"),
    ("policy-per-row", "leak_per_row"),
    ("tenant-column-update", "leak_per_row"),
    ("view-security-invoker", "leak_view"),
)

_TENANT_ROW = "hotel_id = current_setting('app.current_hotel_id', true)::uuid"
_TENANT_ONCE = "hotel_id = (SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"


def plant(conn: Connection[Any], schema: str, app_role: str) -> None:
    """Create the leaky objects in ``schema`` (the caller rolls back)."""
    hotels = conn.execute("SELECT to_regclass('hotels')::text").fetchone()
    ref = hotels[0] if hotels and hotels[0] else None
    fk = f" REFERENCES {ref} (id)" if ref else ""
    s = sql.Identifier(schema)
    app = sql.Identifier(app_role)
    statements = [
        sql.SQL("CREATE SCHEMA {}").format(s),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, app),
    ]
    for name in ("leak_no_rls", "leak_open_policy", "leak_per_row"):
        statements += [
            sql.SQL(
                "CREATE TABLE {}.{} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
                " hotel_id uuid NOT NULL" + fk + ", note text)"
            ).format(s, sql.Identifier(name)),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {}.{} TO {}").format(
                s, sql.Identifier(name), app
            ),
        ]
    statements += [
        # a tenant policy OR-ed with one that lets everybody read everything
        sql.SQL("ALTER TABLE {}.leak_open_policy ENABLE ROW LEVEL SECURITY").format(s),
        sql.SQL("ALTER TABLE {}.leak_open_policy FORCE ROW LEVEL SECURITY").format(s),
        sql.SQL(
            f"CREATE POLICY tenant ON {{}}.leak_open_policy TO {{}} USING ({_TENANT_ONCE})"
            f" WITH CHECK ({_TENANT_ONCE})"
        ).format(s, app),
        sql.SQL("CREATE POLICY everyone ON {}.leak_open_policy FOR SELECT USING (true)").format(s),
        sql.SQL("CREATE INDEX ON {}.leak_open_policy (hotel_id)").format(s),
        # enabled but not forced, the setting read per row, hotel_id updatable
        sql.SQL("ALTER TABLE {}.leak_per_row ENABLE ROW LEVEL SECURITY").format(s),
        sql.SQL(
            f"CREATE POLICY tenant ON {{}}.leak_per_row TO {{}} USING ({_TENANT_ROW})"
            f" WITH CHECK ({_TENANT_ROW})"
        ).format(s, app),
        sql.SQL("CREATE INDEX ON {}.leak_per_row (hotel_id)").format(s),
        # a view that runs as its owner over tenant data
        sql.SQL("CREATE VIEW {}.leak_view AS SELECT * FROM {}.leak_open_policy").format(s, s),
        sql.SQL("GRANT SELECT ON {}.leak_view TO {}").format(s, app),
    ]
    for statement in statements:
        conn.execute(statement)


def run_self_test(conn: Connection[Any], app_role: str) -> list[CheckResult]:
    """Plant, check, compare with :data:`EXPECTED`; the caller rolls everything back."""
    from hotelbot_cli.rls import run_checks

    schema = f"hotelbot_rls_selftest_{secrets.token_hex(4)}"
    try:
        plant(conn, schema, app_role)
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
    found = {(r.id, r.table) for r in run_checks(conn, app_role) if r.failed}
    results = []
    for check_id, table in EXPECTED:
        name = f"{schema}.{table}"
        caught = (check_id, name) in found
        results.append(
            CheckResult(
                "self-test",
                "self-test",
                f"{check_id} on {table}",
                "pass" if caught else "fail",
                f"the planted leak was caught by {check_id}"
                if caught
                else f"{check_id} did NOT catch the planted leak in {table}",
                None if caught else "report this: the checker misses a leak on this server",
            )
        )
    return results
