"""Verify a tenant signature once, not in every transaction: a cache of verified digests.

Measured on the reference dataset (``recent_messages`` as the bot, a Python loop of
interleaved rounds, median of 9 medians of 300): owner 221 µs, owner plus the binding
statement 238 µs, the bot through 011's policies 293 µs, through this revision's 263 µs.
011's verifier is a PL/pgSQL SECURITY DEFINER function: ~34 µs in the first call of each
transaction (expression set-up, the key read, the HMAC), whatever its body's shape. Now:

- ``hotelbot_private.verified_tenants``: ``digest`` = SHA-256 of ``'<hotel id>:<signature>'``
  of a signature that was verified, and its ``expires_at``. The app role may read it: a
  digest reveals neither the hotel nor the signature, and finding a signature for another
  hotel's digest is a SHA-256 preimage. Only ``hotelbot_tenant_verifier`` may write it.
- ``hotelbot_private.remember_tenant(hotel, signature)`` (SECURITY DEFINER, owned by the verifier
  like ``hotelbot_current_hotel_id()``): checks the signature exactly as the verifier does
  and, when it is valid, stores its digest (and deletes expired ones). The library calls it
  in the binding statement the first time it uses a new signature (every ``ttl/2`` per
  hotel and process); it returns false and stores nothing in a read-only transaction.
- Every ``<table>_tenant_isolation`` policy is
  ``col = (SELECT COALESCE((SELECT <setting> WHERE EXISTS (<digest found, unexpired>)),
  hotelbot_current_hotel_id()))``: a plain index lookup, no function body, in the common
  case; the full verifier when the digest is not there (a signature the library did not
  register, a rolled-back registration, a standby). Setting another hotel's id inside a
  transaction changes the digest: not found, and the verifier says NULL, as before.
- A change of ``hotelbot_private.tenant_key`` (a rotated key) empties the cache (a statement
  trigger): signatures of the old key are void for the verifier, and so for the cache.

Citus cannot run a policy that reads a table on a shard: ``hotelbot db distribute`` keeps
only the verifier call there (see ``hotelbot_cli.citus.policy_form``).

Online: the table and function are new (no lock on a tenant table); then one
``ALTER POLICY`` per table, each in its own transaction with a bounded lock wait, as 011.
Safe to re-run: the set-up is one transaction and checks whether it is done; ALTER POLICY
is idempotent.

Revision ID: 013
Revises: 012
Create Date: 2026-12-03
"""

from alembic import op
from hotelbot_cli import migration_steps as steps

revision = "013"
down_revision = "012"
branch_labels = None
depends_on = None

APP_ROLE = "app_user"
VERIFIER = "hotelbot_tenant_verifier"
CACHE = "hotelbot_private.verified_tenants"
REMEMBER = "hotelbot_private.remember_tenant(uuid, text)"
TABLES = {
    "hotels": "id",
    "guests": "hotel_id",
    "triggers": "hotel_id",
    "conversations": "hotel_id",
    "messages": "hotel_id",
    "staff_notifications": "hotel_id",
}
#: 011's form (downgrade).
OLD_TENANT = "{column} = (SELECT hotelbot_current_hotel_id())"
#: The digest the policies look up and remember_tenant() stores. The policies
#: compute it once per statement (a sub-select): a small cache is read by a sequential
#: scan, whose filter would otherwise hash the settings again for every row it passes.
DIGEST = (
    "sha256(convert_to(current_setting('app.current_hotel_id', true) || ':'"
    " || current_setting('app.tenant_signature', true), 'UTF8'))"
)
NEW_TENANT = (
    "{column} = (SELECT COALESCE("
    "(SELECT NULLIF(current_setting('app.current_hotel_id', true), '')::uuid"
    " WHERE EXISTS (SELECT 1 FROM " + CACHE + " v"
    " WHERE v.digest = (SELECT " + DIGEST + ") AND v.expires_at >= now())),"
    " hotelbot_current_hotel_id()))"
)

REMEMBER_BODY = r"""
DECLARE
    expires text := split_part(signature, ':', 1);
    pads record;
BEGIN
    IF hotel IS NULL OR expires !~ '^[0-9]{1,12}$'
       OR expires::bigint < extract(epoch FROM now())
       OR current_setting('transaction_read_only')::boolean THEN
        RETURN false;
    END IF;
    SELECT k.ipad, k.opad INTO pads FROM hotelbot_private.tenant_key k;
    IF split_part(signature, ':', 2) IS DISTINCT FROM encode(sha256(pads.opad
           || sha256(pads.ipad || convert_to(hotel::text || ':' || expires, 'UTF8'))), 'hex') THEN
        RETURN false;
    END IF;
    -- Never wait behind another bot transaction: its row is as good as ours.
    DELETE FROM {cache} c WHERE c.digest IN (
        SELECT d.digest FROM {cache} d WHERE d.expires_at < now() FOR UPDATE SKIP LOCKED);
    INSERT INTO {cache} (digest, expires_at)
    VALUES (sha256(convert_to(hotel::text || ':' || signature, 'UTF8')),
            to_timestamp(expires::bigint))
    ON CONFLICT (digest) DO NOTHING;
    RETURN true;
EXCEPTION WHEN lock_not_available THEN
    RETURN false;
END
"""

SET_UP = [
    f"CREATE TABLE {CACHE} (digest bytea PRIMARY KEY, expires_at timestamptz NOT NULL)",
    f"REVOKE ALL ON {CACHE} FROM PUBLIC",
    f"GRANT USAGE ON SCHEMA hotelbot_private TO {APP_ROLE}",
    f"GRANT SELECT ON {CACHE} TO {APP_ROLE}",
    f"GRANT SELECT, INSERT, DELETE, UPDATE ON {CACHE} TO {VERIFIER}",
    f"""CREATE FUNCTION hotelbot_private.remember_tenant(hotel uuid, signature text)
        RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp SET lock_timeout = '100ms'
        AS $body${REMEMBER_BODY.replace("{cache}", CACHE)}$body$""",
    # The verifier owns it, as 009's function (see 009 for the hand-over's conditions).
    f"""DO $do$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       OR pg_catalog.pg_has_role(current_user, '{VERIFIER}',
              CASE WHEN current_setting('server_version_num')::int >= 160000
                   THEN 'SET' ELSE 'MEMBER' END) THEN
        GRANT CREATE ON SCHEMA hotelbot_private TO {VERIFIER};
        ALTER FUNCTION {REMEMBER} OWNER TO {VERIFIER};
        REVOKE CREATE ON SCHEMA hotelbot_private FROM {VERIFIER};
    END IF;
END
$do$""",
    # A new key (rotated by hand) voids every signature made with the old one: the cache
    # forgets them too, or a leaked old signature would live on until it expires.
    f"""CREATE FUNCTION hotelbot_private.forget_verified_tenants() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
        AS $body$ BEGIN DELETE FROM {CACHE}; RETURN NULL; END $body$""",
    "REVOKE ALL ON FUNCTION hotelbot_private.forget_verified_tenants() FROM PUBLIC",
    "CREATE TRIGGER forget_verified_tenants"
    " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hotelbot_private.tenant_key"
    " FOR EACH STATEMENT EXECUTE FUNCTION hotelbot_private.forget_verified_tenants()",
    f"REVOKE ALL ON FUNCTION {REMEMBER} FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION {REMEMBER} TO {APP_ROLE}",
]

#: Set-up is one transaction: done when the app role, not PUBLIC, may call the function
#: (the last two statements).
DONE = (
    "SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = to_regprocedure('" + REMEMBER + "')"
    f" AND has_function_privilege('{APP_ROLE}', p.oid, 'EXECUTE')"
    " AND NOT has_function_privilege('public', p.oid, 'EXECUTE')"  # granted by CREATE
)


def upgrade() -> None:
    for statement in SET_UP:
        steps.execute(statement, unless=DONE)
    steps.commit("hotels")
    steps.alter_policies(TABLES, NEW_TENANT)


def downgrade() -> None:
    steps.alter_policies(TABLES, OLD_TENANT)
    steps.lock_timeout()
    op.execute("DROP TRIGGER IF EXISTS forget_verified_tenants ON hotelbot_private.tenant_key")
    op.execute("DROP FUNCTION IF EXISTS hotelbot_private.forget_verified_tenants()")
    op.execute(f"DROP FUNCTION IF EXISTS {REMEMBER}")
    op.execute(f"DROP TABLE IF EXISTS {CACHE}")
    op.execute(f"REVOKE USAGE ON SCHEMA hotelbot_private FROM {APP_ROLE}")
