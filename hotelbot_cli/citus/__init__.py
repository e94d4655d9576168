"""Citus awareness: is this database a Citus coordinator, are our tables distributed?

The schema is the same on one node and on a cluster (revision 013); what differs is how
some commands must talk to it. Those commands ask here, once per run, and adapt:
``seed`` switches local execution off, ``bench`` reads Citus plans, ``db stats`` reads
per-node sizes. ``hotelbot db distribute`` (:mod:`hotelbot_cli.citus.distribute`) turns a
single-node schema into a distributed one.
"""

from __future__ import annotations

from typing import Any

#: The tenant tables, distributed by this column and colocated with the first.
DISTRIBUTION_COLUMN = "hotel_id"
#: Reference tables: a full copy on every node (the tenants themselves, and the key that
#: the policy's verifier reads wherever a shard is scanned).
REFERENCE_TABLES = ("hotels", "hotelbot_private.tenant_key")


def citus_version(cur: Any) -> str | None:
    """The installed Citus extension's version in this database, or None (plain PostgreSQL)."""
    cur.execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'")
    row = cur.fetchone()
    return str(row[0]) if row else None


def is_distributed(cur: Any, table: str = "hotels") -> bool:
    """True when ``table`` is a Citus table (distributed or reference) in this database."""
    if citus_version(cur) is None:
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
