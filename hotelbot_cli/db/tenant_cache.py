"""The cache of verified tenant signatures (revision 013): its names, and what each
connection knows of it.

A database at revision 013 keeps the SHA-256 of every signature that
``hotelbot_private.remember_tenant()`` verified; the policies look a signature up there
before running the verifier. The library registers a client-made signature once per
connection (:func:`hotelbot_cli.db.tenant.tenant_binding`'s ``registered``).
"""

from __future__ import annotations

import weakref
from typing import Any

#: The table of verified digests and the SECURITY DEFINER function that fills it.
VERIFIED_TENANTS = "hotelbot_private.verified_tenants"
REMEMBER_TENANT = "hotelbot_private.remember_tenant"
#: The role tenant code switches to (as hotelbot_cli.db.tenant.APP_ROLE).
_APP_ROLE = "app_user"

_SCHEMA, _FUNCTION = REMEMBER_TENANT.split(".")
#: A catalog query, not to_regprocedure(): that one fails without USAGE on the schema.
#: Where neither the login nor the app role may call it (a revoked grant), nothing is
#: registered: tenants take the verifier's path.
_HAS_CACHE = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n"
    " ON n.oid = p.pronamespace"
    f" WHERE n.nspname = '{_SCHEMA}' AND p.proname = '{_FUNCTION}'"
    " AND pg_catalog.array_to_string(p.proargtypes::pg_catalog.regtype[], ',') = 'uuid,text'"
    " AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r"  # the login, or the role it switches to
    f" WHERE r.rolname IN (current_user, '{_APP_ROLE}')"
    " AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE')"
    " AND pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')))"
)
#: psycopg connection -> the signatures it registered (None: its database has no cache).
_REGISTERED: weakref.WeakKeyDictionary[Any, set[str] | None] = weakref.WeakKeyDictionary()
_UNASKED: Any = object()


def _remember(raw: Any, row: Any) -> set[str] | None:
    """Record :data:`_HAS_CACHE`'s answer ``row`` for ``raw``; its set, or None."""
    known = _REGISTERED[raw] = set() if row and row[0] else None
    return known


def registered_signatures(raw: Any) -> set[str] | None:
    """The signatures ``raw`` (a psycopg connection) registered; None without the cache.

    Asked once per physical connection (one catalog query), like the Citus question. A
    set per connection, not per process: a process may serve several databases. A
    registration rolled back with its transaction stays in the set; its signature then
    takes the verifier's path for the rest of its life (at most ``ttl/2``): slower, as safe.
    """
    known = _REGISTERED.get(raw, _UNASKED)  # one weak reference made, not two
    if known is not _UNASKED:
        return known
    return _remember(raw, raw.execute(_HAS_CACHE).fetchone())


async def registered_signatures_async(raw: Any) -> set[str] | None:
    """:func:`registered_signatures` for a psycopg AsyncConnection (the same cache)."""
    known = _REGISTERED.get(raw, _UNASKED)
    if known is not _UNASKED:
        return known
    cursor = await raw.execute(_HAS_CACHE)
    return _remember(raw, await cursor.fetchone())
