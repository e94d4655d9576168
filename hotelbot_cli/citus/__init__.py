"""Citus awareness: is this database a Citus coordinator, are our tables distributed?

The schema is the same on one node and on a cluster (revision 012); what differs is how
some commands must talk to it. Those commands ask here, once per run, and adapt:
``seed`` switches local execution off, ``bench`` reads Citus plans, ``db stats`` reads
per-node sizes. ``hotelbot db distribute`` (:mod:`hotelbot_cli.citus.distribute`) turns a
single-node schema into a distributed one.
"""

from __future__ import annotations

import weakref
from typing import Any

#: The tenant tables, distributed by this column and colocated with the first.
DISTRIBUTION_COLUMN = "hotel_id"
#: Reference tables: a full copy on every node (the tenants themselves, and the key that
#: the policy's verifier reads wherever a shard is scanned).
REFERENCE_TABLES = ("hotels", "hotelbot_private.tenant_key")


#: The citus extension's version in this database; no row on a plain PostgreSQL.
VERSION_QUERY = "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'"
#: psycopg connection -> its server's Citus version ('' for none), asked once per connection.
_VERSIONS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def citus_version(conn: Any) -> str | None:
    """The Citus version of ``conn``'s database (a psycopg connection), or None (plain PostgreSQL).

    This module owns the question "is this Citus" for the whole package: one catalog query
    the first time a physical connection asks, remembered for the connection's life (a
    pooled connection keeps its server). The tenant binding asks it too
    (:func:`hotelbot_cli.db.tenant.propagates_set_local`).
    """
    known = _VERSIONS.get(conn)
    if known is None:
        known = remember_version(conn, conn.execute(VERSION_QUERY).fetchone())
    return known or None


async def citus_version_async(conn: Any) -> str | None:
    """:func:`citus_version` for a psycopg AsyncConnection (the same cache)."""
    known = _VERSIONS.get(conn)
    if known is None:
        cursor = await conn.execute(VERSION_QUERY)
        known = remember_version(conn, await cursor.fetchone())
    return known or None


def remember_version(conn: Any, row: Any) -> str | None:
    """Record :data:`VERSION_QUERY`'s answer ``row`` for ``conn``; the version or None."""
    known = _VERSIONS[conn] = str(row[0]) if row else ""
    return known or None


def is_citus(conn: Any) -> bool:
    """True when ``conn`` (a psycopg connection) is connected to a Citus database."""
    return citus_version(conn) is not None


def is_distributed(cur: Any, table: str = "hotels") -> bool:
    """True when ``table`` is a Citus table (distributed or reference) in this database."""
    if not is_citus(cur.connection):
        return False
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition"
        " WHERE logicalrelid = to_regclass(%s))",
        (table,),
    )
    row = cur.fetchone()
    return bool(row and row[0])


def bulk_load_settings(cur: Any) -> bool:
    """On a distributed schema, the transaction settings a bulk load needs; True there.

    Local execution (the coordinator reading its own copy of a reference table) may not be
    followed by ANALYZE or DDL in the same transaction, and foreign keys to reference tables
    require one connection per node once a reference table was modified.
    """
    if not is_distributed(cur):
        return False
    cur.execute("SET LOCAL citus.enable_local_execution = off")
    cur.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
    return True
