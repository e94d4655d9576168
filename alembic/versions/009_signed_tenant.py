"""A tenant that SQL inside the transaction cannot forge; no TEMP for the bot.

Until 007 the policies trusted ``app.current_hotel_id``: any statement inside hotel A's
transaction could ``set_config`` it to hotel B. Now a hotel counts only when the
transaction also carries ``app.tenant_signature = '<expires>:<hmac>'``, an HMAC-SHA256 of
``'<hotel id>:<expires>'`` (expires: Unix seconds) keyed by a secret that the app role
cannot read. The library signs when it opens a tenant session, in the same round trip
(``hotelbot_cli.db.tenant.tenant_statements``).

- ``hotelbot_private.tenant_key``: one row, the 32-byte key and its HMAC inner/outer pads.
  No privilege for PUBLIC or the app role; the schema is not granted to them either.
- ``hotelbot_tenant_verifier``: a NOLOGIN role that may read the pads and nothing else.
  It owns ``hotelbot_current_hotel_id()`` (a non-superuser owner needs CREATEROLE, or an
  administrator's ``GRANT hotelbot_tenant_verifier TO <owner>``, as for ``app_user``) (STABLE, SECURITY DEFINER, pinned search_path),
  so a flaw in that function can at most read the key, never bypass a policy: it is not a
  superuser, not BYPASSRLS and owns no table. The function returns the hotel id when its
  signature is valid and not expired, else NULL (no rows, no writes); a malformed id
  still raises invalid_text_representation, as before.
- ``hotelbot_private.sign_tenant(uuid, bigint)``: the owner's way to sign (``rls-check``
  probes and ``bench`` run as the owner, which need not know the key); PUBLIC and the app
  role cannot reach it.
- Every ``<table>_tenant_isolation`` policy now also requires
  ``hotel_id = (SELECT hotelbot_current_hotel_id())``: an InitPlan, evaluated once per
  statement whatever the plan (a bare STABLE call is evaluated per row in a filter).
- ``TEMPORARY`` on this database is revoked from PUBLIC: a bot request can no longer plant
  a temp table that shadows ``triggers`` or ``messages`` for the next hotel served on its
  connection. The database owner and superusers keep it.

Re-running after an interruption is safe: the whole upgrade is one transaction.

Revision ID: 009
Revises: 008
Create Date: 2026-12-01
"""

from alembic import op
from hotelbot_cli import migration_steps as steps

revision = "009"
down_revision = "008"
branch_labels = None
depends_on = None

APP_ROLE = "app_user"
VERIFIER = "hotelbot_tenant_verifier"
FUNCTION = "hotelbot_current_hotel_id()"
OLD_TENANT = "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid)"
#: The unsigned setting (as 007) AND the verified hotel: the first conjunct keeps the policy
#: in the shape rls-check's analyser knows; the second, read atomically with its
#: signature, is what makes the tenant unforgeable. Both are InitPlans: once per statement.
NEW_TENANT = f"{OLD_TENANT} AND {{column}} = (SELECT hotelbot_current_hotel_id())"
TABLES = {
    "hotels": "id",
    "guests": "hotel_id",
    "triggers": "hotel_id",
    "conversations": "hotel_id",
    "messages": "hotel_id",
    "staff_notifications": "hotel_id",
}

CREATE_VERIFIER = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{VERIFIER}') THEN
        CREATE ROLE {VERIFIER} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    -- ALTER FUNCTION … OWNER TO needs the right to SET ROLE to the new owner.
    IF current_setting('server_version_num')::int >= 160000 THEN
        IF pg_catalog.pg_has_role(current_user, '{VERIFIER}', 'SET') THEN
            RETURN;
        END IF;
    ELSIF pg_catalog.pg_has_role(current_user, '{VERIFIER}', 'MEMBER') THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('GRANT {VERIFIER} TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege THEN
        -- A managed server's CREATEROLE owner (PostgreSQL 16+) may only grant roles it
        -- administers: the verifier function then stays owned by the migrating role
        -- (rls-check reports it) until an administrator grants the role and 009 is re-run.
        RAISE WARNING 'role % may not SET ROLE {VERIFIER} and cannot grant it to itself:'
            ' hotelbot_current_hotel_id() stays owned by %', current_user, current_user
            USING HINT = format('as an administrator: GRANT {VERIFIER} TO %I', current_user);
    END;
END
$$
"""

CREATE_KEY = r"""
DO $$
DECLARE
    k bytea := decode(replace(gen_random_uuid()::text, '-', '')
                      || replace(gen_random_uuid()::text, '-', ''), 'hex');
    block bytea;
    ipad bytea := decode(repeat('36', 64), 'hex');
    opad bytea := decode(repeat('5c', 64), 'hex');
BEGIN
    -- Two UUIDv4 from the server's strong random source: 244 random bits.
    block := k || decode(repeat('00', 32), 'hex');
    FOR i IN 0..63 LOOP
        ipad := set_byte(ipad, i, get_byte(block, i) # 54);
        opad := set_byte(opad, i, get_byte(block, i) # 92);
    END LOOP;
    INSERT INTO hotelbot_private.tenant_key (key, ipad, opad) VALUES (k, ipad, opad);
END
$$
"""

CREATE_FUNCTION = f"""
DO $do$
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION %I.hotelbot_current_hotel_id() RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS $body$
            SELECT t.hotel
              FROM (SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid
                           AS hotel,
                           split_part(current_setting('app.tenant_signature', true), ':', 1)
                           AS expires,
                           split_part(current_setting('app.tenant_signature', true), ':', 2)
                           AS mac) t,
                   hotelbot_private.tenant_key k
             WHERE t.hotel IS NOT NULL
               AND t.expires ~ '^[0-9]{{1,12}}$'
               AND t.expires::bigint >= extract(epoch FROM now())
               AND t.mac = encode(sha256(k.opad || sha256(k.ipad
                       || convert_to(t.hotel::text || ':' || t.expires, 'UTF8'))), 'hex')
        $body$
    $f$, current_schema());
    -- A new owner needs CREATE on the schema, for the moment of the hand-over only; the
    -- hand-over needs the right to SET ROLE to it (see CREATE_VERIFIER's warning).
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       OR pg_catalog.pg_has_role(current_user, '{VERIFIER}',
              CASE WHEN current_setting('server_version_num')::int >= 160000
                   THEN 'SET' ELSE 'MEMBER' END) THEN
        EXECUTE format('GRANT CREATE ON SCHEMA %I TO {VERIFIER}', current_schema());
        EXECUTE format('ALTER FUNCTION %I.hotelbot_current_hotel_id() OWNER TO {VERIFIER}',
                       current_schema());
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM {VERIFIER}', current_schema());
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %I.hotelbot_current_hotel_id() FROM PUBLIC',
                   current_schema());
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.hotelbot_current_hotel_id() TO {APP_ROLE}',
                   current_schema());
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$do$
"""

SIGN_FUNCTION = """
CREATE FUNCTION hotelbot_private.sign_tenant(hotel uuid, expires bigint) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT expires::text || ':' || encode(sha256(k.opad || sha256(k.ipad
           || convert_to(hotel::text || ':' || expires::text, 'UTF8'))), 'hex')
      FROM hotelbot_private.tenant_key k
$$
"""


def _swap_policies(tenant: str) -> None:
    """One ALTER POLICY per table, each in its own transaction on a populated database.

    ALTER POLICY replaces USING and WITH CHECK atomically and is idempotent, so a re-run
    after an interruption redoes only what is left; one table's lock per transaction
    never makes the bot's multi-table transactions deadlock with the migration.
    """
    for table, column in TABLES.items():
        bound = tenant.format(column=column)
        steps.execute(
            f"ALTER POLICY {table}_tenant_isolation ON {table}"
            f" USING ({column} = {bound}) WITH CHECK ({column} = {bound})"
        )
        steps.commit(table)


#: Set-up is one transaction: done when the verifier function exists (it is created last).
SET_UP = "SELECT 1 FROM pg_catalog.pg_proc WHERE proname = 'hotelbot_current_hotel_id'"


def upgrade() -> None:
    for statement in [
        CREATE_VERIFIER,
        "CREATE SCHEMA hotelbot_private",
        "REVOKE ALL ON SCHEMA hotelbot_private FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA hotelbot_private TO {VERIFIER}",
        "CREATE TABLE hotelbot_private.tenant_key ("
        " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
        " key bytea NOT NULL CHECK (length(key) = 32),"
        " ipad bytea NOT NULL, opad bytea NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now())",
        "REVOKE ALL ON hotelbot_private.tenant_key FROM PUBLIC",
        f"GRANT SELECT (ipad, opad) ON hotelbot_private.tenant_key TO {VERIFIER}",
        CREATE_KEY,
        SIGN_FUNCTION,
        "REVOKE ALL ON FUNCTION hotelbot_private.sign_tenant(uuid, bigint) FROM PUBLIC",
        CREATE_FUNCTION,
    ]:
        steps.execute(statement, unless=SET_UP)
    steps.commit("messages")
    _swap_policies(NEW_TENANT)


def downgrade() -> None:
    _swap_policies(OLD_TENANT)
    steps.lock_timeout()
    for statement in [
        f"DROP FUNCTION IF EXISTS {FUNCTION}",
        "DROP SCHEMA IF EXISTS hotelbot_private CASCADE",
        "DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC',"
        " current_database()); END $$",
    ]:
        op.execute(statement)
