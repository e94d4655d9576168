"""Bulk loading inside one transaction: RLS FORCE off/on, indexes and keys dropped/rebuilt, COPY.

Everything here runs on the single seeding transaction, so an interrupted run
leaves the schema and the data exactly as they were. Index and constraint
definitions come from the catalog (pg_get_indexdef / pg_get_constraintdef), so
the loader follows the schema as it grows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Copy, Cursor, sql
from psycopg.types.json import Jsonb

from hotelbot_cli.errors import DatabaseError
from hotelbot_cli.observability import sql_log
from hotelbot_cli.seed import rows


def our_tables() -> list[str]:
    """Our tables in dependency order, from the models' metadata."""
    from hotelbot_cli.models import Base

    return [t.name for t in Base.metadata.sorted_tables]


@dataclass
class SchemaSnapshot:
    """Indexes and index-backed/foreign-key constraints to drop before a load and rebuild after."""

    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)
    keys: list[tuple[str, str, str]] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.foreign_keys) + len(self.keys) + len(self.indexes)


def snapshot(cur: Cursor[Any], tables: Sequence[str]) -> SchemaSnapshot:
    """Read the definitions of every index, key and foreign key touching ``tables``."""
    snap = SchemaSnapshot()
    cur.execute(
        """
        WITH t AS (SELECT to_regclass(n)::oid AS oid FROM unnest(%s::text[]) AS n)
        SELECT con.contype, con.conrelid::regclass::text, quote_ident(con.conname),
               pg_get_constraintdef(con.oid), obj_description(con.oid, 'pg_constraint')
        FROM pg_constraint con
        WHERE (con.conrelid IN (SELECT oid FROM t) AND con.contype IN ('p', 'u', 'x', 'f'))
           OR (con.contype = 'f' AND con.confrelid IN (SELECT oid FROM t))
        ORDER BY con.contype, con.conrelid::regclass::text, con.conname
        """,
        (list(tables),),
    )
    for contype, table, name, definition, comment in cur.fetchall():
        target = snap.foreign_keys if contype == "f" else snap.keys
        target.append((table, name, definition))
        if comment is not None:
            snap.comments.append(f"COMMENT ON CONSTRAINT {name} ON {table} IS {sql.quote(comment)}")
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
               obj_description(i.indexrelid, 'pg_class')
        FROM pg_index i
        WHERE i.indrelid IN (SELECT to_regclass(n)::oid FROM unnest(%s::text[]) AS n)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                          WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
        ORDER BY 1
        """,
        (list(tables),),
    )
    for name, definition, comment in cur.fetchall():
        snap.indexes.append((name, definition))
        if comment is not None:
            snap.comments.append(f"COMMENT ON INDEX {name} IS {sql.quote(comment)}")
    return snap


def drop(cur: Cursor[Any], snap: SchemaSnapshot) -> None:
    """Drop foreign keys, then keys, then plain indexes (the reverse of their dependencies)."""
    for table, name, _ in snap.foreign_keys + snap.keys:
        cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, _ in snap.indexes:
        cur.execute(f"DROP INDEX {name}")


def split(snap: SchemaSnapshot, table: str) -> tuple[SchemaSnapshot, SchemaSnapshot]:
    """(everything but ``table``'s, ``table``'s own): its indexes, keys and foreign keys,
    to rebuild after rows that arrive last."""

    on = re.compile(r" ON (?:ONLY )?(?:\S+\.)?" + re.escape(table) + " USING ")
    rest, mine = SchemaSnapshot(), SchemaSnapshot()
    for key in snap.keys:
        (mine if key[0] == table else rest).keys.append(key)
    for foreign in snap.foreign_keys:
        (mine if foreign[0] == table else rest).foreign_keys.append(foreign)
    for index in snap.indexes:
        (mine if on.search(index[1]) else rest).indexes.append(index)
    mine.comments.extend(c for c in snap.comments if f" ON {table} IS " in c)
    rest.comments.extend(c for c in snap.comments if c not in mine.comments)
    return rest, mine


def restore(cur: Cursor[Any], snap: SchemaSnapshot, step: Any = None) -> None:
    """Rebuild what ``drop`` removed: indexes, keys, then foreign keys (validated in one pass)."""
    statements = [definition for _, definition in snap.indexes]
    statements += [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, d in snap.keys]
    statements += [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, d in snap.foreign_keys]
    for done, statement in enumerate(statements, 1):
        cur.execute(statement)
        if step:
            step(done, len(statements))
    for statement in snap.comments:
        cur.execute(statement)


def relax_rls(cur: Cursor[Any], tables: Sequence[str]) -> list[str]:
    """Turn FORCE ROW LEVEL SECURITY off where it is on; return those tables to restore.

    COPY is refused to a role subject to RLS, and FORCE subjects the owner; with FORCE
    off the owner bypasses RLS for this transaction only (DDL is transactional).
    """
    cur.execute(
        """
        SELECT c.oid::regclass::text, c.relforcerowsecurity,
               pg_has_role(c.relowner, 'USAGE') OR r.rolsuper OR r.rolbypassrls
        FROM unnest(%s::text[]) AS n
        JOIN pg_class c ON c.oid = to_regclass(n)
        JOIN pg_roles r ON r.rolname = current_user
        """,
        (list(tables),),
    )
    forced = []
    for table, force, owner in cur.fetchall():
        if not owner:
            raise DatabaseError(
                f"the role {_user(cur)} does not own {table}",
                "seed as the owner of the tables (the role that ran the migrations)",
            )
        if force:
            forced.append(table)
            cur.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    return forced


def force_rls(cur: Cursor[Any], tables: Iterable[str]) -> None:
    for table in tables:
        cur.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def _user(cur: Cursor[Any]) -> str:
    cur.execute("SELECT current_user")
    row = cur.fetchone()
    return str(row[0]) if row else "?"


#: The tables the Python side writes by COPY, each with its model's columns (seed/rows.py).
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    table: rows.copy_columns(table)
    for table in ("hotels", "triggers", "guests", "conversations", "staff_notifications")
}


def _as_is(text: str) -> str:
    return text


def copy_query(table: str, *, freeze: bool = False) -> sql.Composed:
    """The binary ``COPY … FROM STDIN`` of ``table``'s model columns (FREEZE with ``freeze``:
    the table was truncated in this transaction, the rows are written frozen and no reader
    has to set hint bits later)."""
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in COLUMNS[table])
    options = sql.SQL("FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY")
    return sql.SQL("COPY {} ({}) FROM STDIN ({})").format(sql.Identifier(table), names, options)


def write_rows(copy: Copy, table: str, rows: Iterable[Sequence[Any]]) -> int:
    """Write ``rows`` of ``table`` into ``copy`` (binary, the model's column types); how many.

    Enum columns travel as text (an enum's binary form is its label); JSON columns arrive
    as JSON text and are sent as they are.
    """
    types = [kind for _, kind in COLUMNS[table]]
    json_at = [i for i, kind in enumerate(types) if kind == "jsonb"]
    copy.set_types(types)
    count = 0
    for row in rows:
        if json_at:
            row = list(row)  # noqa: PLW2901 - wrap the JSON text in place
            for i in json_at:
                row[i] = Jsonb(row[i], dumps=_as_is)
        copy.write_row(row)
        count += 1
    return count


def copy_stream(cur: Cursor[Any], table: str, stream: bytes, *, freeze: bool = False) -> None:
    """COPY a complete binary stream of ``table``'s rows (``seed.encoded`` made it)."""
    with cur.copy(copy_query(table, freeze=freeze)) as copy:
        copy.write(stream)


def generated_counts(gen: Any, params: dict[str, Any]) -> list[bytes]:
    """The sentiment counts of the messages ``copy_generated`` wrote from the conversations
    in ``params`` (``server_side.COUNT_PARAMS`` and ``m``), built on ``gen``: binary COPY
    rows, one block per hotel."""
    from hotelbot_cli.seed import server_side as ss
    from hotelbot_cli.seed.encoded import accept_encoded

    with gen.cursor(binary=True) as cur:
        accept_encoded(cur)
        cur.execute(ss.COUNTS, params)
        return [bytes(block) for (block,) in cur.fetchall()]


def copy_blocks(
    cur: Cursor[Any], table: str, columns: Sequence[str], blocks: Iterable[bytes], *, freeze: bool
) -> None:
    """COPY ``blocks`` (binary COPY rows the server built) into ``table``'s ``columns``."""
    from hotelbot_cli.seed import server_side as ss

    option = ", FREEZE" if freeze else ""
    with cur.copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY{option})"
    ) as copy:
        copy.write(ss.COPY_HEADER)
        for block in blocks:
            copy.write(block)
        copy.write(ss.COPY_TRAILER)


def copy_counts(cur: Cursor[Any], blocks: list[bytes], *, freeze: bool = False) -> None:
    """COPY what :func:`generated_counts` built into the counts table."""
    from hotelbot_cli.db import sentiment
    from hotelbot_cli.seed import server_side as ss

    copy_blocks(cur, sentiment.HOURLY, ss.COUNT_COLUMNS, blocks, freeze=freeze)


def copy_generated(
    cur: Cursor[Any], gen: Any, params: dict[str, Any], *, freeze: bool = False
) -> tuple[int, int]:
    """Messages and staff notifications of a chunk of conversations, built by the server on
    ``gen`` (another connection, outside this transaction: the rows depend on ``params``
    only) and COPYed into the tables here as they stream in; returns the rows written.

    Two server processes work at once: one builds the rows' binary COPY bytes, one writes
    them (frozen when ``freeze``); Python only hands over one bytes object per
    ``server_side.GROUP`` conversations. psycopg's queued writer sends them from its own
    thread, so this one goes back to reading while the writing server still takes them in:
    waiting on both in turn left each server idle half the time (the loop took 2.9-3.0 s
    of the reference dataset's messages, 0.8-0.9 s of it in writes; queued, 2.6-2.7 s).
    Its queue is psycopg's, bounded (1,024 buffers of at most 128 KiB); it stayed near
    empty here, where peak RSS did not move (134 MB).
    The notifications (a few per conversation) wait in memory for the messages' COPY.
    """
    from psycopg.copy import QueuedLibpqWriter

    from hotelbot_cli.seed import server_side as ss
    from hotelbot_cli.seed.encoded import accept_encoded

    option = ", FREEZE" if freeze else ""
    messages = notified = 0
    notes: list[bytes] = []
    with cur.copy(
        f"COPY messages ({', '.join(ss.MESSAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY{option})",
        writer=QueuedLibpqWriter(cur),
    ) as copy:
        copy.write(ss.COPY_HEADER)
        started = time.perf_counter()
        with gen.cursor(binary=True) as source:
            accept_encoded(source)
            for rows, notifications, count, conversations in source.stream(
                ss.ROWS, params, binary=True
            ):
                copy.write(rows)
                messages += conversations
                if count:
                    notes.append(notifications)
                    notified += count
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if sql_log.wanted(elapsed_ms):  # a stream is not logged by the cursor: say it here
            sql_log.log_statement(ss.ROWS, None, elapsed_ms, messages)
        copy.write(ss.COPY_TRAILER)
    if notes:
        copy_blocks(cur, "staff_notifications", ss.NOTIFICATION_COLUMNS, notes, freeze=freeze)
    return messages * params["m"], notified
