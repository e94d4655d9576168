"""A cheaper signed-tenant check: one verifier InitPlan per statement, in PL/pgSQL.

Measured on the reference dataset (server CPU per statement of ``recent_messages`` as the
bot, a loop of 3,000 ``EXECUTE``s, extra over the owner): 009's policies cost 18 µs, of
which 6 µs the unsigned conjunct ``col = (SELECT NULLIF(current_setting(…))::uuid)`` that
only repeated what the verifier already checks, and the SQL-language verifier 14 µs: a
non-inlinable SQL function is parsed and planned again in every statement, while
PL/pgSQL keeps its plan for the session (10 µs). Now:

- ``hotelbot_current_hotel_id()`` is the same check in PL/pgSQL (same signature, owner,
  grants, ``SECURITY DEFINER``, pinned ``search_path``; it still reads
  ``app.current_hotel_id``, returns NULL for a missing, expired or wrong signature and
  still raises ``invalid_text_representation`` for a malformed id);
- every ``<table>_tenant_isolation`` policy is ``col = (SELECT hotelbot_current_hotel_id())``:
  an InitPlan, evaluated once per statement whatever the plan (a bare STABLE call in a
  sequential scan's filter runs once per row: 8.6 µs a row, measured).

Online: the function is replaced in place (a catalog row; no table lock), then one
``ALTER POLICY`` per table, each in its own transaction with a bounded lock wait, as 009.
Safe to re-run: both steps are idempotent.

Revision ID: 011
Revises: 010
Create Date: 2026-12-02
"""

from alembic import op
from hotelbot_cli import migration_steps as steps

revision = "011"
down_revision = "010"
branch_labels = None
depends_on = None

TABLES = {
    "hotels": "id",
    "guests": "hotel_id",
    "triggers": "hotel_id",
    "conversations": "hotel_id",
    "messages": "hotel_id",
    "staff_notifications": "hotel_id",
}
UNSIGNED = "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"
VERIFIED = "(SELECT hotelbot_current_hotel_id())"
#: 009's form (downgrade) and this revision's.
OLD_TENANT = f"{{column}} = {UNSIGNED} AND {{column}} = {VERIFIED}"
NEW_TENANT = f"{{column}} = {VERIFIED}"

PLPGSQL_BODY = r"""
DECLARE
    hotel uuid := NULLIF(current_setting('app.current_hotel_id', true), '')::uuid;
    signature text := current_setting('app.tenant_signature', true);
    expires text := split_part(signature, ':', 1);
    pads record;
BEGIN
    IF hotel IS NULL OR expires !~ '^[0-9]{1,12}$'
       OR expires::bigint < extract(epoch FROM now()) THEN
        RETURN NULL;
    END IF;
    SELECT k.ipad, k.opad INTO pads FROM hotelbot_private.tenant_key k;
    IF split_part(signature, ':', 2) = encode(sha256(pads.opad || sha256(pads.ipad
           || convert_to(hotel::text || ':' || expires, 'UTF8'))), 'hex') THEN
        RETURN hotel;
    END IF;
    RETURN NULL;
END
"""

#: 009's body, byte for byte: a downgrade restores exactly what 009 made.
SQL_BODY = r"""
            SELECT t.hotel
              FROM (SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid
                           AS hotel,
                           split_part(current_setting('app.tenant_signature', true), ':', 1)
                           AS expires,
                           split_part(current_setting('app.tenant_signature', true), ':', 2)
                           AS mac) t,
                   hotelbot_private.tenant_key k
             WHERE t.hotel IS NOT NULL
               AND t.expires ~ '^[0-9]{1,12}$'
               AND t.expires::bigint >= extract(epoch FROM now())
               AND t.mac = encode(sha256(k.opad || sha256(k.ipad
                       || convert_to(t.hotel::text || ':' || t.expires, 'UTF8'))), 'hex')
        """


def _replace_function(language: str, body: str) -> str:
    """CREATE OR REPLACE keeps the owner and grants; it must run as the owner (the verifier
    role, or the migrating role where 009 could not hand it over) or a superuser, and the
    owner needs CREATE on the schema for that moment, as in 009."""
    create = (
        "CREATE OR REPLACE FUNCTION %I.hotelbot_current_hotel_id() RETURNS uuid"
        f" LANGUAGE {language} STABLE SECURITY DEFINER PARALLEL SAFE"
        " SET search_path = pg_catalog, pg_temp AS $body${body}$body$"
    ).replace("{body}", body)
    return f"""
DO $do$
DECLARE
    owner name := (SELECT pg_catalog.pg_get_userbyid(p.proowner) FROM pg_catalog.pg_proc p
                    WHERE p.oid = format('%I.hotelbot_current_hotel_id()',
                                         current_schema())::regprocedure);
    switch boolean := owner <> current_user
        AND NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
    IF switch THEN
        EXECUTE format('GRANT CREATE ON SCHEMA %I TO %I', current_schema(), owner);
        EXECUTE format('SET LOCAL ROLE %I', owner);
    END IF;
    EXECUTE format($f${create}$f$, current_schema());
    IF switch THEN
        RESET ROLE;
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', current_schema(), owner);
    END IF;
END
$do$
"""


def _swap_policies(tenant: str) -> None:
    """One ALTER POLICY per table, each in its own transaction (see 009)."""
    for table, column in TABLES.items():
        bound = tenant.format(column=column)
        steps.execute(
            f"ALTER POLICY {table}_tenant_isolation ON {table} USING ({bound}) WITH CHECK ({bound})"
        )
        steps.commit(table)


def upgrade() -> None:
    steps.lock_timeout()
    op.execute(_replace_function("plpgsql", PLPGSQL_BODY))
    steps.commit("hotels")
    _swap_policies(NEW_TENANT)


def downgrade() -> None:
    _swap_policies(OLD_TENANT)
    steps.lock_timeout()
    op.execute(_replace_function("sql", SQL_BODY))
