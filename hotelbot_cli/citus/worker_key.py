"""The tenant key on every worker: a plain local copy of the coordinator's key row.

The policies' verifier runs wherever a shard is scanned, and a query on a shard may not
read a Citus table, so each worker keeps its own ``hotelbot_private.tenant_key`` (refreshed
on every ``db distribute``: run it again after rotating the key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotelbot_cli.citus.cluster_state import KEY_TABLE, NotDistributable
from hotelbot_cli.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: The key table as revision 009 creates it; workers get the same table, local to them.
KEY_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} ("
    " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    " key bytea NOT NULL CHECK (length(key) = 32),"
    " ipad bytea NOT NULL, opad bytea NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())"
)


def copy_key(conn: Connection) -> None:
    """Upsert the coordinator's key row into a local table on every worker."""
    from sqlalchemy import text

    row = conn.execute(
        text(
            "SELECT format('(%L::bytea, %L::bytea, %L::bytea, %L::timestamptz)',"
            f" key, ipad, opad, created_at) FROM {KEY_TABLE}"
        )
    ).scalar()
    if row is None:
        raise NotDistributable("the tenant key table is empty (run `hotelbot db upgrade`)")
    command = (
        "BEGIN; SET LOCAL citus.enable_ddl_propagation = off; "
        f"{KEY_TABLE_DDL}; REVOKE ALL ON {KEY_TABLE} FROM PUBLIC; "
        f"GRANT SELECT (ipad, opad) ON {KEY_TABLE} TO hotelbot_tenant_verifier; "
        f"INSERT INTO {KEY_TABLE} (key, ipad, opad, created_at) VALUES {row}"
        " ON CONFLICT (singleton) DO UPDATE SET key = EXCLUDED.key, ipad = EXCLUDED.ipad,"
        " opad = EXCLUDED.opad, created_at = EXCLUDED.created_at; COMMIT"
    )
    failed = [
        f"{host}:{port}: {result}"
        for host, port, ok, result in conn.execute(
            text("SELECT * FROM run_command_on_workers(:c)"), {"c": command}
        )
        if not ok
    ]
    if failed:
        raise DatabaseError("could not copy the tenant key to " + "; ".join(failed))
