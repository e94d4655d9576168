"""Live probes: act as the app role for probe hotel A and try to reach probe hotel B.

The caller holds one transaction that is always rolled back. Two probe hotels get a
row in every tenant table (generated from the catalog, so new tables are covered);
each probe then runs in a savepoint as ``SET LOCAL ROLE <app>`` with the tenant set
transaction-locally, and is rolled back to that savepoint. A non-superuser owner
inserts the probe rows after ``ALTER TABLE … NO FORCE ROW LEVEL SECURITY`` (rolled back
with everything else; it takes an ACCESS EXCLUSIVE lock until the rollback).
Token values are generated here and never leave this module.
"""

from __future__ import annotations

import functools
import json
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import Connection, sql

from hotelbot_cli.db.tenant import parse_hotel_id, tenant_statements
from hotelbot_cli.errors import UsageError
from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.report import CheckResult

_TEXT = {"text", "character varying", "character", "name", "citext"}
_INT = {"integer", "bigint", "smallint"}
_NOW = {"timestamp with time zone", "timestamp without time zone", "date", "time without time zone"}
#: Values that satisfy the CHECK constraints this project knows about.
_KNOWN = {
    ("triggers", "trigger_type"): "event_based",
    ("triggers", "conditions"): '{"event": "rls-check"}',
}


class ProbeError(Exception):
    """A probe row could not be made; the message says why."""


@dataclass
class Column:
    name: str
    type: str
    not_null: bool
    has_default: bool
    generated: bool
    enum_first: str | None


@dataclass
class Shape:
    """What it takes to insert a row: columns, primary key and references to tenant tables."""

    table: TenantTable
    columns: list[Column]
    pk: list[str]
    refs: list[tuple[str, list[str], int, list[str]]] = field(default_factory=list)


@dataclass
class Fixture:
    hotel_a: str
    hotel_b: str
    token_b: str
    rows: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)  # (oid, hotel)
    broken: dict[int, str] = field(default_factory=dict)  # oid -> why no row


def _shape(conn: Connection[Any], table: TenantTable, tenant_oids: set[int]) -> Shape:
    cols = [
        Column(*r)
        for r in conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.atthasdef OR a.attidentity <> '', a.attgenerated <> '',
                   (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.atttypid
                     ORDER BY e.enumsortorder LIMIT 1)
              FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum
            """,
            (table.oid,),
        ).fetchall()
    ]
    pk = [
        r[0]
        for r in conn.execute(
            """
            SELECT a.attname FROM pg_index i
              JOIN unnest(i.indkey) WITH ORDINALITY k(n, o) ON true
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
             WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.o
            """,
            (table.oid,),
        ).fetchall()
    ]
    refs = [
        (r[0], list(r[1]), r[2], list(r[3]))
        for r in conn.execute(
            """
            SELECT c.conname,
                   ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                         ORDER BY k.o),
                   c.confrelid,
                   ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                         ORDER BY k.o)
              FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = %s ORDER BY 1
            """,
            (table.oid,),
        ).fetchall()
        if r[2] in tenant_oids and r[2] != table.oid
    ]
    return Shape(table, cols, pk, refs)


def _order(shapes: list[Shape]) -> list[Shape]:
    """Referenced tables first (hotels first of all)."""
    done: list[Shape] = []
    pending = list(shapes)
    while pending:
        ready = [
            s for s in pending if all(r[2] in {d.table.oid for d in done} for r in s.refs)
        ] or pending[:1]  # a cycle: take one and let its insert fail if it must
        for s in ready:
            pending.remove(s)
            done.append(s)
    return done


def _phone() -> str:
    return "+1999" + "".join(random.choice("0123456789") for _ in range(8))


def _value(  # noqa: PLR0912 - one rule per kind of column, in priority order
    shape: Shape, column: Column, hotel: str, fixture: Fixture, token: str
) -> str | None:
    """A text value for ``column`` (cast by the INSERT), or None to leave its default."""
    table = shape.table
    if column.generated:
        return None
    if column.name == table.column:
        return hotel if table.column == "hotel_id" else str(uuid.uuid4())
    for _name, cols, ref_oid, ref_cols in shape.refs:
        if column.name in cols:
            ref = fixture.rows.get((ref_oid, hotel))
            if ref is not None:
                return _text(ref[ref_cols[cols.index(column.name)]])
    if (table.name, column.name) in _KNOWN:
        return _KNOWN[(table.name, column.name)]
    if column.name == "green_api_token":
        return token
    if column.type.split("(")[0] in _TEXT and ("phone" in column.name or "whatsapp" in column.name):
        return _phone()
    if column.name in shape.pk and column.type == "uuid":
        return str(uuid.uuid4())
    if not column.not_null or column.has_default:
        return None
    base = column.type.split("(")[0]
    if column.enum_first is not None:
        return column.enum_first
    simple = {"uuid": str(uuid.uuid4()), "boolean": "true", "jsonb": "{}", "json": "{}"}
    if base in simple:
        return simple[base]
    if base in _TEXT:
        return "rls-probe"
    if base in _INT or base in {"numeric", "real", "double precision"}:
        return "1"
    if base in _NOW:
        return "now"
    raise ProbeError(f"cannot make a value for {column.name} ({column.type})")


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _insert_sql(shape: Shape, values: dict[str, str], returning: bool = False) -> sql.Composed:
    """INSERT of ``values``; probes never use RETURNING (it adds the SELECT policy's check)."""
    types = {c.name: c.type for c in shape.columns}
    query = sql.SQL("INSERT INTO {} AS probe ({}) VALUES ({})").format(
        _ident(shape.table),
        sql.SQL(", ").join(sql.Identifier(c) for c in values),
        sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(types[c])) for c in values),
    )
    return query + sql.SQL(" RETURNING to_jsonb(probe.*)") if returning else query


def _ident(table: TenantTable) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))


def _row_values(shape: Shape, hotel: str, fixture: Fixture, token: str) -> dict[str, str]:
    values = {}
    for column in shape.columns:
        value = _value(shape, column, hotel, fixture, token)
        if value is not None:
            values[column.name] = value
    return values


def _savepoint(conn: Connection[Any], work: Callable[[], Any]) -> Any:
    """Run ``work`` in a savepoint that is always rolled back; return its result or the error."""
    conn.execute("SAVEPOINT rls_probe")
    try:
        return work()
    except psycopg.Error as exc:
        return exc
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT rls_probe")


def build_fixture(
    conn: Connection[Any], tables: list[TenantTable], bypass: bool
) -> tuple[Fixture, list[Shape]]:
    """Two probe hotels, each with one row in every tenant table it can get."""
    tenant_oids = {t.oid for t in tables}
    shapes = _order([_shape(conn, t, tenant_oids) for t in tables])
    fixture = Fixture(hotel_a="", hotel_b="", token_b="rls-probe-" + secrets.token_hex(16))
    hotels = next((s for s in shapes if s.table.column == "id"), None)
    if hotels is None:
        for t in tables:
            fixture.broken[t.oid] = "no hotels table"
        return fixture, shapes
    for shape in shapes:
        if not bypass:
            try:
                conn.execute("SAVEPOINT rls_force")
                conn.execute(
                    sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(
                        _ident(shape.table)
                    )
                )
                conn.execute("RELEASE SAVEPOINT rls_force")
            except psycopg.Error as exc:
                conn.execute("ROLLBACK TO SAVEPOINT rls_force")
                fixture.broken[shape.table.oid] = (
                    f"cannot insert probe rows: {_first(exc)}; run rls-check as the owner of"
                    " the tables or a superuser"
                )
                continue
        for label in ("A", "B"):
            hotel = (fixture.hotel_a if label == "A" else fixture.hotel_b) or ""
            token = fixture.token_b if label == "B" else "rls-probe-" + secrets.token_hex(16)
            try:
                values = _row_values(shape, hotel, fixture, token)
                conn.execute("SAVEPOINT rls_row")
                row = conn.execute(
                    _insert_sql(shape, values, returning=True), list(values.values())
                ).fetchone()
                conn.execute("RELEASE SAVEPOINT rls_row")
            except (ProbeError, psycopg.Error) as exc:
                if isinstance(exc, psycopg.Error):
                    conn.execute("ROLLBACK TO SAVEPOINT rls_row")
                fixture.broken[shape.table.oid] = f"cannot insert a probe row: {_first(exc)}"
                break
            assert row is not None
            if shape is hotels:
                if label == "A":
                    fixture.hotel_a = str(row[0]["id"])
                else:
                    fixture.hotel_b = str(row[0]["id"])
                hotel = str(row[0]["id"])
            fixture.rows[(shape.table.oid, hotel)] = row[0]
    return fixture, shapes


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_uuid(value: str | None) -> bool:
    try:
        parse_hotel_id(value)
    except UsageError:
        return False
    return value is not None


class Prober:
    """Runs statements as the app role for a given tenant, each in a rolled-back savepoint."""

    def __init__(self, conn: Connection[Any], app_role: str) -> None:
        self.conn = conn
        self.app_role = app_role

    def run(self, tenant: str | None, query: Any, params: Any = None) -> Any:
        """(rowcount, first row) or the psycopg error."""

        def work() -> tuple[int, Any]:
            # A real hotel id binds as the library does; unset, empty and malformed values
            # are what a forgotten or forged tenant looks like, so they are set by hand.
            bound = _is_uuid(tenant)
            for statement in tenant_statements(tenant if bound else None, self.app_role):
                self.conn.execute(statement)
            if tenant is None:
                self.conn.execute("RESET app.current_hotel_id")
            elif not bound:
                self.conn.execute("SELECT set_config('app.current_hotel_id', %s, true)", (tenant,))
            cur = self.conn.execute(query, params)
            row = cur.fetchone() if cur.description else None
            return cur.rowcount, row

        return _savepoint(self.conn, work)


def _refused(outcome: Any, *sqlstates: str) -> bool:
    """A write was refused: no row touched, or a privilege/policy error (or one of ``sqlstates``).

    Any other error (say a foreign-key action failing after a DELETE) means rows WERE reached.
    """
    if isinstance(outcome, psycopg.Error):
        return outcome.sqlstate in {"42501", *sqlstates}
    return bool(outcome[0] == 0)


def _outcome(outcome: Any) -> str:
    if isinstance(outcome, psycopg.Error):
        word = "refused" if outcome.sqlstate == "42501" else "error"
        return f"{word} ({outcome.sqlstate}: {_first(outcome)})"
    return f"{outcome[0]} row(s)"


def probe_table(
    prober: Prober, shape: Shape, fixture: Fixture, fixture_for: Callable[[str], dict[str, str]]
) -> list[CheckResult]:
    """Every probe for one table; fixture_for(hotel) makes a fresh row's values."""
    t = shape.table
    a, b = fixture.hotel_a, fixture.hotel_b
    row_a = fixture.rows[(t.oid, a)]
    row_b = fixture.rows[(t.oid, b)]
    table = _ident(t)
    col = sql.Identifier(t.column)
    key = shape.pk or [t.column]

    def where(row: dict[str, Any]) -> tuple[sql.Composable, list[str]]:
        return (
            sql.SQL(" AND ").join(sql.SQL("{}::text = %s").format(sql.Identifier(k)) for k in key),
            [_text(row[k]) for k in key],
        )

    wa, pa = where(row_a)
    wb, pb = where(row_b)
    results: list[CheckResult] = []

    def add(check_id: str, ok: bool, detail: str, fix: str) -> None:
        results.append(
            CheckResult(
                check_id, "probe", t.display, "pass" if ok else "fail", detail, None if ok else fix
            )
        )

    count = sql.SQL("SELECT count(*) FROM {} WHERE ").format(table)
    own = prober.run(a, count + wa, pa)
    add(
        "probe-read-own",
        not isinstance(own, psycopg.Error) and own[1][0] == 1,
        "hotel A reads its own row: "
        + (_outcome(own) if isinstance(own, psycopg.Error) else str(own[1][0])),
        f"GRANT SELECT ON {t.display} TO <app role> and check the USING clause",
    )
    other = prober.run(
        a, count + sql.SQL("{} <> %s OR (").format(col) + wb + sql.SQL(")"), [a, *pb]
    )
    leaked = isinstance(other, psycopg.Error) is False and other[1][0] > 0
    add(
        "probe-read-other",
        not leaked,
        f"hotel A sees {other[1][0]} row(s) of other hotels"
        if leaked
        else "hotel A sees no row of another hotel",
        f"ENABLE and FORCE row level security on {t.display} with a tenant-bound USING",
    )
    writable = _updatable_column(prober, shape)
    touch = sql.SQL("UPDATE {} SET {} = {} WHERE ").format(
        table, sql.Identifier(writable), sql.Identifier(writable)
    )
    upd = prober.run(a, touch + wb, pb)
    add(
        "probe-update-other",
        _refused(upd),
        f"UPDATE of hotel B's row: {_outcome(upd)}",
        f"bind USING on {t.display} to the current hotel",
    )
    dele = prober.run(a, sql.SQL("DELETE FROM {} WHERE ").format(table) + wb, pb)
    add(
        "probe-delete-other",
        _refused(dele),
        f"DELETE of hotel B's row: {_outcome(dele)}",
        f"bind USING on {t.display} to the current hotel",
    )
    new_key = b if t.column == "hotel_id" else str(uuid.uuid4())
    repoint = prober.run(
        a, sql.SQL("UPDATE {} SET {} = %s::uuid WHERE ").format(table, col) + wa, [new_key, *pa]
    )
    add(
        "probe-repoint",
        _refused(repoint),
        f"moving hotel A's row to another hotel: {_outcome(repoint)}",
        f"REVOKE UPDATE ({t.column}) ON {t.display} FROM <app role>; bind WITH CHECK",
    )
    try:
        values = fixture_for(b)
        ins = prober.run(a, _insert_sql(shape, values), list(values.values()))
        add(
            "probe-insert-other",
            isinstance(ins, psycopg.Error) and _refused(ins),
            f"INSERT of a row for hotel B: {_outcome(ins)}",
            f"bind WITH CHECK on {t.display} to the current hotel",
        )
    except ProbeError as exc:
        add("probe-insert-other", False, str(exc), "add a probe value for this column")
    results += _cross_reference(
        prober, shape=shape, fixture=fixture, fixture_for=fixture_for, wa=wa, pa=pa
    )
    results += _no_tenant(prober, shape=shape, row_a=row_a, wa=wa, pa=pa, fixture_for=fixture_for)
    return results


def _updatable_column(prober: Prober, shape: Shape) -> str:
    """A column the app role may UPDATE (so the probe tests the policy, not a privilege)."""
    row = prober.conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0"
        " AND NOT a.attisdropped AND a.attgenerated = ''"
        " AND has_column_privilege(%s, a.attrelid, a.attnum, 'UPDATE')"
        " ORDER BY a.attnum LIMIT 1",
        (shape.table.oid, prober.app_role),
    ).fetchone()
    return row[0] if row else shape.table.column


def _cross_reference(
    prober: Prober,
    *,
    shape: Shape,
    fixture: Fixture,
    fixture_for: Callable[[str], dict[str, str]],
    wa: sql.Composable,
    pa: list[str],
) -> list[CheckResult]:
    t = shape.table
    a, b = fixture.hotel_a, fixture.hotel_b
    results = []
    for name, cols, ref_oid, ref_cols in shape.refs:
        own_cols = [c for c in cols if c != t.column]
        target = fixture.rows.get((ref_oid, b))
        if not own_cols or target is None:
            continue
        values = [_text(target[ref_cols[cols.index(c)]]) for c in own_cols]
        assign = sql.SQL(", ").join(
            sql.SQL("{} = %s::{}").format(sql.Identifier(c), sql.SQL(_type(shape, c)))
            for c in own_cols
        )
        upd = prober.run(
            a,
            sql.SQL("UPDATE {} SET ").format(_ident(t)) + assign + sql.SQL(" WHERE ") + wa,
            [*values, *pa],
        )
        try:
            row = fixture_for(a)
            row.update(dict(zip(own_cols, values, strict=True)))
            ins: Any = prober.run(a, _insert_sql(shape, row), list(row.values()))
        except ProbeError:
            ins = (0, None)
        ok = _refused(upd, "23503") and _refused(ins, "23503")
        results.append(
            CheckResult(
                "probe-cross-reference",
                "probe",
                t.display,
                "pass" if ok else "fail",
                f"{name}: pointing hotel A's row at hotel B's: update {_outcome(upd)},"
                f" insert {_outcome(ins)}",
                None
                if ok
                else f"make {name} composite: FOREIGN KEY (hotel_id, …) REFERENCES …(hotel_id, id)",
            )
        )
    return results


def _type(shape: Shape, column: str) -> str:
    return next(c.type for c in shape.columns if c.name == column)


def _no_tenant(
    prober: Prober,
    *,
    shape: Shape,
    row_a: dict[str, Any],
    wa: sql.Composable,
    pa: list[str],
    fixture_for: Callable[[str], dict[str, str]],
) -> list[CheckResult]:
    t = shape.table
    table = _ident(t)
    results = []
    a = str(row_a[t.column]) if t.column == "hotel_id" else str(row_a["id"])
    writable = _updatable_column(prober, shape)
    for label, tenant in (("unset", None), ("empty", "")):
        seen = prober.run(tenant, sql.SQL("SELECT count(*) FROM {}").format(table))
        upd = prober.run(
            tenant,
            sql.SQL("UPDATE {} SET {} = {} WHERE ").format(
                table, sql.Identifier(writable), sql.Identifier(writable)
            )
            + wa,
            pa,
        )
        dele = prober.run(tenant, sql.SQL("DELETE FROM {} WHERE ").format(table) + wa, pa)
        try:
            values = fixture_for(a)
            ins: Any = prober.run(tenant, _insert_sql(shape, values), list(values.values()))
        except ProbeError:
            ins = (0, None)
        rows = 0 if isinstance(seen, psycopg.Error) else seen[1][0]
        ok = rows == 0 and _refused(upd) and _refused(dele) and _refused(ins)
        results.append(
            CheckResult(
                f"probe-no-tenant-{label}",
                "probe",
                t.display,
                "pass" if ok else "fail",
                f"tenant {label}: sees {rows} row(s); update {_outcome(upd)}, delete"
                f" {_outcome(dele)}, insert {_outcome(ins)}",
                None
                if ok
                else "policies must compare with NULLIF(current_setting("
                "'app.current_hotel_id', true), '')::uuid so that no tenant means no rows",
            )
        )
    bad = prober.run("not-a-uuid", sql.SQL("SELECT count(*) FROM {}").format(table))
    ok = isinstance(bad, psycopg.Error) or bad[1][0] == 0
    results.append(
        CheckResult(
            "probe-malformed-tenant",
            "probe",
            t.display,
            "pass" if ok else "fail",
            f"tenant 'not-a-uuid': {_outcome(bad) if isinstance(bad, psycopg.Error) else bad[1][0]}"
            " (an error or no rows is right)",
            None if ok else "cast the setting to uuid in the policy",
        )
    )
    return results


def probe_token(prober: Prober, fixture: Fixture, hotels: Shape) -> CheckResult:
    """Hotel A cannot read hotel B's green_api_token by any filter on hotels."""
    if not any(c.name == "green_api_token" for c in hotels.columns):
        return CheckResult(
            "probe-token", "probe", hotels.table.display, "skip", "no green_api_token column"
        )
    found = prober.run(
        fixture.hotel_a,
        sql.SQL("SELECT count(*) FROM {} WHERE green_api_token = %s").format(_ident(hotels.table)),
        [fixture.token_b],
    )
    ok = isinstance(found, psycopg.Error) or found[1][0] == 0
    return CheckResult(
        "probe-token",
        "probe",
        hotels.table.display,
        "pass" if ok else "fail",
        "hotel A cannot read hotel B's green_api_token"
        if ok
        else "hotel A can read hotel B's green_api_token",
        None
        if ok
        else "bind the hotels policy to id = current hotel, or REVOKE SELECT"
        " (green_api_token) from the app role",
    )


def _fresh_row(shape: Shape, fixture: Fixture, hotel: str) -> dict[str, str]:
    return _row_values(shape, hotel, fixture, "rls-probe-" + secrets.token_hex(8))


def run_probes(
    conn: Connection[Any], app_role: str, tables: list[TenantTable]
) -> list[CheckResult]:
    """Build the fixture and run every probe; the caller rolls the transaction back."""
    can = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    bypass = bool(can and can[0])
    switch = _savepoint(
        conn, lambda: conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(app_role)))
    )
    if isinstance(switch, psycopg.Error):
        return [
            CheckResult(
                "probe-setup",
                "probe",
                None,
                "fail",
                f"cannot act as {app_role}: {_first(switch)}",
                f"GRANT {app_role} TO <the role in DATABASE_URL> (migration 007 does it)",
            )
        ]
    fixture, shapes = build_fixture(conn, tables, bypass)
    prober = Prober(conn, app_role)
    results: list[CheckResult] = []
    hotels = next((s for s in shapes if s.table.column == "id"), None)
    for shape in shapes:
        t = shape.table
        if t.oid in fixture.broken or not fixture.hotel_b:
            results.append(
                CheckResult(
                    "probe-setup",
                    "probe",
                    t.display,
                    "fail",
                    fixture.broken.get(t.oid, "no probe hotels"),
                    "see the detail; add a value for the column in hotelbot_cli/rls/probes.py"
                    " or --ignore probe-setup:<table> with a reason",
                )
            )
            continue
        results += probe_table(
            prober,
            shape,
            fixture,
            functools.partial(_fresh_row, shape, fixture),
        )
    if hotels is not None and fixture.hotel_b:
        results.append(probe_token(prober, fixture, hotels))
    return results
