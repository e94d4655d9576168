"""Tenant isolation: the app_user role, row level security and the WhatsApp-number lookup.

- ``app_user`` (NOLOGIN, not superuser, not BYPASSRLS, owns nothing) is created when
  missing. Roles are cluster-wide: other databases of the same server may use it, so the
  downgrade revokes what this revision granted here and never drops the role.
- The migrating role is granted membership in ``app_user`` (when it is not a superuser
  and not already a member) so that ``hotelbot rls-check`` can ``SET LOCAL ROLE app_user``.
  A non-superuser owner therefore needs CREATEROLE (or an administrator who created
  ``app_user`` and granted it beforehand). When ``app_user`` was made by another role
  and may not be granted, the revision still applies and warns (the migration needs no
  membership; ``rls-check`` does).
- Online-safe: each table is switched in a short transaction of its own (ACCESS
  EXCLUSIVE for a catalog change only, bounded by lock_timeout); every step is
  idempotent, so an interrupted run is run again.
- Row level security is ENABLED and FORCED on hotels and every tenant table. One
  ``FOR ALL TO app_user`` policy per table binds USING and WITH CHECK to
  ``(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)``: one
  evaluation per statement; unset or empty → NULL → no rows and no writes; a malformed
  value → an invalid-uuid error.
- FORCE applies to the owner too. The owner has no policy of its own, so under FORCE it
  sees nothing: data maintenance (seeding, data migrations) runs, inside one
  transaction, ``ALTER TABLE … NO FORCE ROW LEVEL SECURITY``, the work, then ``FORCE``
  again before COMMIT.
- Privileges are the bot's needs only: SELECT/INSERT/DELETE and UPDATE of the non-key
  columns on tenant tables (never hotel_id, id or created_at), SELECT and UPDATE(settings)
  on its own hotel row; no TRUNCATE, REFERENCES, TRIGGER, or DDL. The bot reads its own
  hotel's green_api_token (it needs it to call Green API); RLS keeps every other hotel's
  row, token included, invisible.
- ``hotelbot_hotel_id_for_whatsapp(text)``: SECURITY DEFINER, pinned search_path, returns
  only the id of an active hotel, so the bot can find the tenant before setting it.
  It sees hotels through ``hotels_whatsapp_lookup``, a SELECT policy for the migrating
  role that is open only while the function has set ``hotelbot.lookup`` (transaction-
  locally, cleared before it returns). Only app_user may EXECUTE it.

Revision ID: 007
Revises: 006
Create Date: 2026-11-24
"""

from alembic import op
from hotelbot_cli import migration_steps as steps

revision = "007"
down_revision = "006"
branch_labels = None
depends_on = None

APP_ROLE = "app_user"
TENANT = "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"
#: table -> (tenant column, privileges, columns app_user may UPDATE)
TABLES = {
    "hotels": ("id", "SELECT", ("settings",)),
    "guests": (
        "hotel_id",
        "SELECT, INSERT, DELETE",
        ("phone", "name", "preferences", "last_interaction"),
    ),
    "triggers": (
        "hotel_id",
        "SELECT, INSERT, DELETE",
        ("name", "trigger_type", "conditions", "message_template", "is_active", "priority"),
    ),
    "conversations": ("hotel_id", "SELECT, INSERT, DELETE", ("status", "last_message_at")),
    "messages": (
        "hotel_id",
        "SELECT, INSERT, DELETE",
        ("sentiment_score", "sentiment_type", "metadata"),
    ),
    "staff_notifications": (
        "hotel_id",
        "SELECT, INSERT, DELETE",
        ("title", "content", "status", "sent_at", "acknowledged_at"),
    ),
}
LOOKUP = "hotelbot_hotel_id_for_whatsapp(text)"

CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    -- PostgreSQL 16+ separates membership from the right to SET ROLE.
    IF current_setting('server_version_num')::int >= 160000 THEN
        IF pg_catalog.pg_has_role(current_user, '{APP_ROLE}', 'SET') THEN
            RETURN;
        END IF;
    ELSIF pg_catalog.pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege THEN
        -- app_user was made by another role (PostgreSQL 16+: CREATEROLE grants only the
        -- roles it administers). Migrating needs no membership; rls-check does.
        RAISE WARNING 'role % may not SET ROLE {APP_ROLE} and cannot grant it to itself'
            ' (hotelbot rls-check needs it: as an administrator, GRANT {APP_ROLE} TO %)',
            current_user, current_user;
    END;
END
$$
"""

# The function and the owner's lookup policy name the current schema and role at upgrade time.
CREATE_LOOKUP = f"""
DO $do$
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION hotelbot_hotel_id_for_whatsapp(whatsapp_number text) RETURNS uuid
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $body$
        DECLARE
            found uuid;
        BEGIN
            PERFORM set_config('hotelbot.lookup', 'on', true);
            SELECT h.id INTO found FROM %I.hotels h
             WHERE h.whatsapp_number = $1 AND h.is_active;
            PERFORM set_config('hotelbot.lookup', '', true);
            RETURN found;
        END
        $body$
    $f$, current_schema());
    DROP POLICY IF EXISTS hotels_whatsapp_lookup ON hotels;
    EXECUTE format(
        'CREATE POLICY hotels_whatsapp_lookup ON hotels FOR SELECT TO %I'
        ' USING ((SELECT current_setting(''hotelbot.lookup'', true)) = ''on'' AND is_active)',
        current_user);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema());
END
$do$
"""


def _upgrade_table(table: str) -> None:
    """One table's RLS, policy and grants in one short transaction (idempotent)."""
    column, privileges, updatable = TABLES[table]
    steps.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    steps.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    steps.execute(f"DROP POLICY IF EXISTS {table}_tenant_isolation ON {table}")
    steps.execute(
        f"CREATE POLICY {table}_tenant_isolation ON {table} FOR ALL TO {APP_ROLE}"
        f" USING ({column} = {TENANT}) WITH CHECK ({column} = {TENANT})"
    )
    steps.execute(f"GRANT {privileges} ON {table} TO {APP_ROLE}")
    steps.execute(f"GRANT UPDATE ({', '.join(updatable)}) ON {table} TO {APP_ROLE}")
    # Commit before locking the next table: never hold one table while queueing for another.
    steps.commit(table)


def _downgrade_statements() -> list[str]:
    statements = [
        f"DROP FUNCTION {LOOKUP}",
        "DROP POLICY hotels_whatsapp_lookup ON hotels",
    ]
    for table in reversed(TABLES):
        statements += [
            f"REVOKE ALL ON {table} FROM {APP_ROLE}",
            f"DROP POLICY {table}_tenant_isolation ON {table}",
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ]
    statements.append(
        f"DO $$ BEGIN EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {APP_ROLE}',"
        " current_schema()); END $$"
    )
    return statements


def upgrade() -> None:
    steps.execute(CREATE_ROLE)
    steps.execute(CREATE_LOOKUP)
    steps.commit("hotels")
    for table in TABLES:
        _upgrade_table(table)
    steps.execute(f"REVOKE ALL ON FUNCTION {LOOKUP} FROM PUBLIC")
    steps.execute(f"GRANT EXECUTE ON FUNCTION {LOOKUP} TO {APP_ROLE}")


def downgrade() -> None:
    for statement in _downgrade_statements():
        op.execute(statement)
