"""Live probes: act as the app role for probe tenant A and try to reach probe tenant B.

The caller holds one transaction that is always rolled back. Two probe tenants get a row
in every probed table (generated from the catalog, so new tables are covered). Tenant
rows other than the root are written BY THE APP ROLE for that tenant, through the normal
tables, so triggers and rules fire as in production (the owner writes only what the app
may not). B's rows carry canary values. Each probe runs in a savepoint as the app role
with the tenant bound by :func:`hotelbot_cli.db.tenant.tenant_statements`, and is rolled
back to that savepoint. Keys are compared with their own types (never text against a
JSON rendering), and every UPDATE/DELETE probe is checked, as the owner, to really match
B's row. An error is a refusal unless it is an integrity error (class 23): those come
after rows were reached. A non-superuser owner inserts the probe rows after
``ALTER TABLE … NO FORCE ROW LEVEL SECURITY`` (rolled back with everything else).
Token and canary values are generated here and never leave this module.
"""

from __future__ import annotations

import functools
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hotelbot_cli.db.tenant import (
    TENANT_SETTING,
    parse_hotel_id,
    propagates_set_local,
    signing_key,
    tenant_statements,
)
from hotelbot_cli.errors import UsageError
from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.report import CheckResult

#: How long ago the probe's expired signature ran out: past any clock skew.
EXPIRED_BY_S = 3600
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
    """What it takes to insert a row: columns, primary key, references, natural keys."""

    table: TenantTable
    columns: list[Column]
    pk: list[str]
    refs: list[tuple[str, list[str], int, list[str]]] = field(default_factory=list)
    natural: list[list[str]] = field(default_factory=list)  # unique keys, tenant column removed

    def type_of(self, column: str) -> str:
        return next(c.type for c in self.columns if c.name == column)


@dataclass
class Fixture:
    hotel_a: str
    hotel_b: str
    token_b: str
    canary_b: str
    rows: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)  # (oid, tenant)
    broken: dict[int, str] = field(default_factory=dict)  # oid -> why no row
    phones_b: list[str] = field(default_factory=list)
    written_by_app: set[int] = field(default_factory=set)

    def secrets_of_b(self) -> list[str]:
        return [self.canary_b, self.token_b, self.hotel_b, *self.phones_b]


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
    keys = conn.execute(
        """
        SELECT i.indisprimary, ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o),
               ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(i.indkey) k(n)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n)
          FROM pg_index i WHERE i.indrelid = %s AND i.indisunique AND 0 <> ALL(i.indkey)
         ORDER BY NOT i.indisprimary, i.indexrelid
        """,
        (table.oid,),
    ).fetchall()
    pk = next((list(k[1]) for k in keys if k[0]), [])
    natural = [
        [c for c in k[1] if c != table.column]
        for k in keys
        if not k[0] and any(t != "uuid" for t in k[2]) and [c for c in k[1] if c != table.column]
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
    return Shape(table, cols, pk, refs, natural)


def _order(shapes: list[Shape]) -> list[Shape]:
    """Referenced tables first (the root first of all)."""
    done: list[Shape] = []
    pending = sorted(shapes, key=lambda s: not s.table.root)
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


def _param(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value


def _value(  # noqa: PLR0912, PLR0917 - one rule per kind of column, in priority order
    shape: Shape, column: Column, hotel: str, fixture: Fixture, token: str, canary: str | None
) -> Any:
    """A value for ``column`` (cast by the INSERT), or None to leave its default."""
    table = shape.table
    base = column.type.split("(")[0]
    if column.generated:
        return None
    if column.name == table.column:
        return str(uuid.uuid4()) if table.root else hotel
    for _name, cols, ref_oid, ref_cols in shape.refs:
        if column.name in cols:
            ref = fixture.rows.get((ref_oid, hotel))
            if ref is not None:
                return _param(ref[ref_cols[cols.index(column.name)]])
    if (table.name, column.name) in _KNOWN:
        return _KNOWN[(table.name, column.name)]
    if column.name == "green_api_token":
        return token
    if base in _TEXT and ("phone" in column.name or "whatsapp" in column.name):
        phone = _phone()
        if canary is not None:
            fixture.phones_b.append(phone)
        return phone
    if column.name in shape.pk and column.type == "uuid":
        return str(uuid.uuid4())
    if canary is not None and column.enum_first is None and not column.has_default:
        if base in _TEXT and _fits(column.type, canary):
            return canary
        if base in {"jsonb", "json"}:
            return '{"rls": "' + canary + '"}'
    if not column.not_null or column.has_default:
        return None
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


def _fits(type_name: str, text: str) -> bool:
    """Whether ``text`` fits a text type such as ``character varying(20)``."""
    if "(" not in type_name:
        return True
    size = type_name.split("(", 1)[1].rstrip(")")
    return size.isdigit() and int(size) >= len(text)


def _insert_sql(shape: Shape, values: dict[str, Any], returning: bool = False) -> sql.Composed:
    """INSERT of ``values``; probes never use RETURNING (it adds the SELECT policy's check)."""
    query = sql.SQL("INSERT INTO {} AS probe ({}) VALUES ({})").format(
        _ident(shape.table),
        sql.SQL(", ").join(sql.Identifier(c) for c in values),
        sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(shape.type_of(c))) for c in values),
    )
    return query + sql.SQL(" RETURNING probe.*") if returning else query


def _ident(table: TenantTable) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))


def _row_values(
    shape: Shape, hotel: str, fixture: Fixture, token: str, canary: str | None = None
) -> dict[str, Any]:
    values = {}
    for column in shape.columns:
        value = _value(shape, column, hotel, fixture, token, canary)
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
    """Runs statements as the app role for a given tenant, each in a rolled-back savepoint.

    On a distributed (Citus) schema one transaction may touch a shard as one user only
    (the worker connections are per user), so there each probe is a transaction of its
    own, rolled back; the fixture rows are committed (and removed at the end), and what a
    probe's write did is read back as tenant B (``observer``), by the same user.
    """

    def __init__(self, conn: Connection[Any], cfg: RlsConfig | str) -> None:
        from hotelbot_cli import citus

        self.conn = conn
        self.cfg = cfg if isinstance(cfg, RlsConfig) else RlsConfig(app_role=cfg)
        self.app_role = self.cfg.app_role
        # Signed on the client, as the bot does: SET LOCAL reaches Citus' workers, a
        # server-side set_config() does not.
        self.key = signing_key(conn)
        with conn.cursor() as cur:
            self.distributed = citus.is_distributed(cur)
        self.observer: str | None = None
        #: Root rows (tenants) committed as fixture on a distributed schema, to remove.
        self.committed_roots: list[str] = []

    def binding(self, tenant: str | None, forge: str | None = None, ttl: int | None = None) -> str:
        """The statements that make this transaction the app role for ``tenant``: what the
        library sends for a real tenant id; unset, empty and malformed values (a forgotten or
        forged tenant) are set by hand. One string, so it costs one round trip."""
        setting = self.cfg.tenant_setting
        statements: list[str] = []
        if setting == TENANT_SETTING:
            bound = _is_uuid(tenant)
            statements += tenant_statements(
                tenant if bound else None,
                self.app_role,
                key=self.key,
                ttl=ttl,
                propagate=propagates_set_local(self.conn),
            )
        else:
            bound = False
            statements.append(
                sql.SQL("SELECT set_config('role', {}, true)")
                .format(sql.Literal(self.app_role))
                .as_string(self.conn)
            )
        if tenant is None:
            statements.append(
                sql.SQL("RESET {}").format(sql.Identifier(*setting.split("."))).as_string(self.conn)
            )
        elif not bound:
            statements.append(
                sql.SQL("SELECT set_config({}, {}, true)")
                .format(sql.Literal(setting), sql.Literal(tenant))
                .as_string(self.conn)
            )
        if forge is not None:  # SQL injected into the tenant's transaction names another
            statements.append(
                sql.SQL("SELECT set_config({}, {}, true)")
                .format(sql.Literal(setting), sql.Literal(forge))
                .as_string(self.conn)
            )
        return "; ".join(statements)

    def bind(self, tenant: str | None) -> None:
        self.conn.execute(self.binding(tenant).encode())

    def unbind(self) -> None:
        """Back to the checking role, no tenant (for work kept after a released savepoint)."""
        self.conn.execute("RESET ROLE")
        self.conn.execute("SELECT set_config(%s, '', true)", (self.cfg.tenant_setting,))

    def run(
        self,
        tenant: str | None,
        query: Any,
        params: Any = None,
        after: Callable[[], Any] | None = None,
        *,
        forge: str | None = None,
        ttl: int | None = None,
    ) -> Any:
        """(rowcount, first row) or the psycopg error; ``after`` runs as the checker, inside.
        ``ttl`` signs the tenant for that many seconds (negative: already expired).

        On one node: savepoint and binding go in one round trip, the statement in a second,
        the rollback to the savepoint in a third. On Citus the probe is a transaction of its
        own, rolled back, with nothing else in it, and ``after`` reads as the observer (the
        same user as the write: its shard connections see it).
        """
        conn = self.conn
        if self.distributed:
            conn.rollback()
            start = self.binding(tenant, forge, ttl)

            def undo() -> None:
                conn.rollback()
        else:
            start = "SAVEPOINT rls_probe; " + self.binding(tenant, forge, ttl)

            def undo() -> None:
                conn.execute("ROLLBACK TO SAVEPOINT rls_probe")

        conn.execute(start.encode())
        try:
            try:
                cur = conn.execute(query, params)
                outcome: Any = (cur.rowcount, cur.fetchone() if cur.description else None)
            except psycopg.Error as exc:
                if after is None:
                    return exc
                undo()
                outcome = exc
            if after is None:
                return outcome
            self._as_checker()
            try:
                return outcome, after()
            except psycopg.Error as exc:
                return exc
        finally:
            undo()

    def _as_checker(self) -> None:
        """Between a probe's statement and its ``after``: who reads (see :meth:`run`)."""
        if not self.distributed:
            self.conn.execute("RESET ROLE")
        elif self.observer:
            self.conn.execute(self.binding(self.observer).encode())

    def keep(self, tenant: str, query: Any, params: Any) -> dict[str, Any]:
        """Run a write as the app role for ``tenant`` and keep it; the returned row as a dict."""
        if self.distributed:  # committed (removed by run_probes): see the class docstring
            self.conn.rollback()
            try:
                self.bind(tenant)
                with self.conn.cursor(row_factory=dict_row) as cur:
                    kept = cur.execute(query, params).fetchone()
                self.conn.commit()
            finally:
                self.conn.rollback()
            assert kept is not None
            return kept
        self.conn.execute("SAVEPOINT rls_keep")
        try:
            self.bind(tenant)
            with self.conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(query, params).fetchone()
            self.conn.execute("RELEASE SAVEPOINT rls_keep")
        except psycopg.Error:
            self.conn.execute("ROLLBACK TO SAVEPOINT rls_keep")
            raise
        finally:
            self.unbind()
        assert row is not None
        return row


def _as_owner(conn: Connection[Any], query: Any, params: Any) -> dict[str, Any]:
    conn.execute("SAVEPOINT rls_row")
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(query, params).fetchone()
        conn.execute("RELEASE SAVEPOINT rls_row")
    except psycopg.Error:
        conn.execute("ROLLBACK TO SAVEPOINT rls_row")
        raise
    assert row is not None
    return row


def build_fixture(
    conn: Connection[Any], tables: list[TenantTable], bypass: bool, prober: Prober
) -> tuple[Fixture, list[Shape]]:
    """Two probe tenants, each with one row in every probed table it can get."""
    tenant_oids = {t.oid for t in tables}
    shapes = _order([_shape(conn, t, tenant_oids) for t in tables])
    fixture = Fixture(
        hotel_a="",
        hotel_b="",
        token_b="rls-probe-" + secrets.token_hex(16),
        canary_b="rlscanary" + secrets.token_hex(6),
    )
    root = next((s for s in shapes if s.table.root), None)
    if root is None:
        for t in tables:
            fixture.broken[t.oid] = f"no tenant root table {prober.cfg.root_table} is reachable"
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
            try:
                row = _insert_probe_row(prober, shape, fixture, hotel, label == "B")
            except (ProbeError, psycopg.Error) as exc:
                fixture.broken[shape.table.oid] = f"cannot insert a probe row: {_first(exc)}"
                break
            if shape is root:
                hotel = str(row[str(shape.table.column)])
                if prober.distributed:
                    prober.committed_roots.append(hotel)
                if label == "A":
                    fixture.hotel_a = hotel
                else:
                    fixture.hotel_b = hotel
            if prober.distributed:
                prober.conn.commit()
            fixture.rows[(shape.table.oid, hotel)] = row
    return fixture, shapes


def _insert_probe_row(
    prober: Prober, shape: Shape, fixture: Fixture, hotel: str, is_b: bool
) -> dict[str, Any]:
    """As the app role for the tenant when it may (rich canary values first), else as owner."""
    token = fixture.token_b if is_b else "rls-probe-" + secrets.token_hex(16)
    canary = fixture.canary_b if is_b else "rlsprobe" + secrets.token_hex(6)
    attempts = [_row_values(shape, hotel, fixture, token, canary)]
    attempts.append(_row_values(shape, hotel, fixture, token))
    last: Exception | None = None
    for as_app in (False,) if shape.table.root else (True, False):
        for values in attempts:
            query = _insert_sql(shape, values, returning=True)
            params = list(values.values())
            try:
                if as_app:
                    row = prober.keep(hotel, query, params)
                    fixture.written_by_app.add(shape.table.oid)
                    return row
                return _as_owner(prober.conn, query, params)
            except psycopg.Error as exc:
                last = exc
    assert last is not None
    raise last


def _refused(outcome: Any, *sqlstates: str) -> bool:
    """A write was refused: no row touched, or any error but an integrity one (class 23), which
    comes after rows were reached (unless listed in ``sqlstates``)."""
    if isinstance(outcome, psycopg.Error):
        state = outcome.sqlstate or ""
        return not state.startswith("23") or state in sqlstates
    return bool(outcome[0] == 0)


def _outcome(outcome: Any) -> str:
    if isinstance(outcome, psycopg.Error):
        word = "refused" if outcome.sqlstate == "42501" else "error"
        return f"{word} ({outcome.sqlstate}: {_first(outcome)})"
    return f"{outcome[0]} row(s)"


def _where(shape: Shape, row: dict[str, Any], key: list[str]) -> tuple[sql.Composable, list[Any]]:
    """``k = %s::type`` for each key column, with the row's own typed values."""
    return (
        sql.SQL(" AND ").join(
            sql.SQL("{} = %s::{}").format(sql.Identifier(k), sql.SQL(shape.type_of(k))) for k in key
        ),
        [_param(row[k]) for k in key],
    )


def _matched(conn: Connection[Any], table: TenantTable, where: Any, params: Any) -> int:
    """Rows a probe's key matches as the checker (owner or bypass): proves the probe aims."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE ").format(_ident(table)) + where
    outcome = _savepoint(conn, lambda: conn.execute(query, params).fetchone())
    return -1 if isinstance(outcome, psycopg.Error) else int(outcome[0])


def probe_table(
    prober: Prober, shape: Shape, fixture: Fixture, fixture_for: Callable[[str], dict[str, Any]]
) -> list[CheckResult]:
    """Every probe for one table; fixture_for(tenant) makes a fresh row's values."""
    t = shape.table
    assert t.column is not None
    a, b = fixture.hotel_a, fixture.hotel_b
    row_a = fixture.rows[(t.oid, a)]
    row_b = fixture.rows[(t.oid, b)]
    table = _ident(t)
    col = sql.Identifier(t.column)
    key = shape.pk or [t.column]
    wa, pa = _where(shape, row_a, key)
    wb, pb = _where(shape, row_b, key)
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
        "tenant A reads its own row: "
        + (_outcome(own) if isinstance(own, psycopg.Error) else str(own[1][0])),
        f"GRANT SELECT ON {t.display} TO {prober.app_role} and check the USING clause",
    )
    other = prober.run(
        a,
        count
        + sql.SQL("{} <> %s::{} OR (").format(col, sql.SQL(shape.type_of(t.column)))
        + wb
        + sql.SQL(")"),
        [a, *pb],
    )
    leaked = isinstance(other, psycopg.Error) is False and other[1][0] > 0
    add(
        "probe-read-other",
        not leaked,
        f"tenant A sees {other[1][0]} row(s) of other tenants"
        if leaked
        else "tenant A sees no row of another tenant",
        f"ENABLE and FORCE row level security on {t.display} with a tenant-bound USING",
    )
    if prober.cfg.tenant_setting == TENANT_SETTING:  # the library signs its tenant
        forged = prober.run(a, count + wb, pb, forge=b)
        seen = 0 if isinstance(forged, psycopg.Error) else forged[1][0]
        # A warning, not a failure: honest code never forges its tenant (the threat model
        # of the other probes); SQL injected into a request can, unless the tenant is signed.
        results.append(
            CheckResult(
                "probe-forged-tenant",
                "probe",
                t.display,
                "pass" if seen == 0 else "warn",
                f"tenant A's transaction setting {prober.cfg.tenant_setting} to tenant B by"
                f" hand sees {seen} of B's row(s)",
                None
                if seen == 0
                else f"compare the policies on {t.display} with the signature-verifying"
                " hotelbot_current_hotel_id() (revision 009), not the bare setting",
            )
        )
        if seen == 0 and not isinstance(forged, psycopg.Error):
            # The policies verify signatures: a signature of B's own that has expired (one
            # that leaked an hour ago, say) must open nothing either.
            stale = prober.run(b, count + wb, pb, ttl=-EXPIRED_BY_S)
            opened = 0 if isinstance(stale, psycopg.Error) else stale[1][0]
            add(
                "probe-expired-signature",
                opened == 0,
                f"tenant B bound with its own signature, expired {EXPIRED_BY_S} s ago,"
                f" sees {opened} of B's row(s)",
                "hotelbot_current_hotel_id() must return NULL for an expired signature:"
                " re-create it with revision 011's body (its expires < now() test)",
            )
    writable = _updatable_column(prober, shape)
    touch = sql.SQL("UPDATE {} SET {} = {} WHERE ").format(
        table, sql.Identifier(writable), sql.Identifier(writable)
    )
    for check_id, query in (
        ("probe-update-other", touch + wb),
        ("probe-delete-other", sql.SQL("DELETE FROM {} WHERE ").format(table) + wb),
    ):
        outcome = prober.run(a, query, pb)
        matched = _matched(prober.conn, t, wb, pb)
        word = "UPDATE" if "update" in check_id else "DELETE"
        if matched != 1:
            add(
                check_id,
                False,
                f"{word} probe is void: its key matches {matched} row(s) of tenant B as the"
                " checker, so it proves nothing",
                "report this: the probe could not address tenant B's row",
            )
        else:
            add(
                check_id,
                _refused(outcome),
                f"{word} of tenant B's row: {_outcome(outcome)}",
                f"bind USING on {t.display} to the current tenant",
            )
    new_key = b if not t.root else str(uuid.uuid4())
    repoint = prober.run(
        a,
        sql.SQL("UPDATE {} SET {} = %s::{} WHERE ").format(
            table, col, sql.SQL(shape.type_of(t.column))
        )
        + wa,
        [new_key, *pa],
    )
    add(
        "probe-repoint",
        _refused(repoint),
        f"moving tenant A's row to another tenant: {_outcome(repoint)}",
        f"REVOKE UPDATE ({t.column}) ON {t.display} FROM {prober.app_role}; bind WITH CHECK",
    )
    try:
        values = fixture_for(b)
        ins = prober.run(a, _insert_sql(shape, values), list(values.values()))
        add(
            "probe-insert-other",
            isinstance(ins, psycopg.Error),
            f"INSERT of a row for tenant B: {_outcome(ins)}",
            f"bind WITH CHECK on {t.display} to the current tenant",
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
    return row[0] if row else str(shape.table.column)


def _cross_reference(
    prober: Prober,
    *,
    shape: Shape,
    fixture: Fixture,
    fixture_for: Callable[[str], dict[str, Any]],
    wa: sql.Composable,
    pa: list[Any],
) -> list[CheckResult]:
    t = shape.table
    a, b = fixture.hotel_a, fixture.hotel_b
    results = []
    for name, cols, ref_oid, ref_cols in shape.refs:
        own_cols = [c for c in cols if c != t.column]
        target = fixture.rows.get((ref_oid, b))
        if not own_cols or target is None:
            continue
        values = [_param(target[ref_cols[cols.index(c)]]) for c in own_cols]
        assign = sql.SQL(", ").join(
            sql.SQL("{} = %s::{}").format(sql.Identifier(c), sql.SQL(shape.type_of(c)))
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
        ok = _refused(upd, "23503") and (isinstance(ins, psycopg.Error) or ins[0] == 0)
        results.append(
            CheckResult(
                "probe-cross-reference",
                "probe",
                t.display,
                "pass" if ok else "fail",
                f"{name}: pointing tenant A's row at tenant B's: update {_outcome(upd)},"
                f" insert {_outcome(ins)}",
                None
                if ok
                else f"make {name} composite: FOREIGN KEY ({t.column}, …) REFERENCES"
                f" …({t.column}, id)",
            )
        )
    return results


def _no_tenant(
    prober: Prober,
    *,
    shape: Shape,
    row_a: dict[str, Any],
    wa: sql.Composable,
    pa: list[Any],
    fixture_for: Callable[[str], dict[str, Any]],
) -> list[CheckResult]:
    """With no tenant (or an empty one) nothing is visible or writable; errors are refusals."""
    t = shape.table
    assert t.column is not None
    table = _ident(t)
    results = []
    a = str(row_a[t.column])
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
                f" {_outcome(dele)}, insert {_outcome(ins)} (an error is a refusal)",
                None
                if ok
                else f"policies must compare with NULLIF(current_setting("
                f"'{prober.cfg.tenant_setting}', true), '') so that no tenant means no rows",
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
            None if ok else "cast the setting to the tenant column's type in the policy",
        )
    )
    return results


def probe_token(prober: Prober, fixture: Fixture, root: Shape) -> CheckResult:
    """Tenant A cannot read tenant B's green_api_token by any filter on the root table."""
    if not any(c.name == "green_api_token" for c in root.columns):
        return CheckResult(
            "probe-token", "probe", root.table.display, "skip", "no green_api_token column"
        )
    found = prober.run(
        fixture.hotel_a,
        sql.SQL("SELECT count(*) FROM {} WHERE green_api_token = %s").format(_ident(root.table)),
        [fixture.token_b],
    )
    ok = isinstance(found, psycopg.Error) or found[1][0] == 0
    return CheckResult(
        "probe-token",
        "probe",
        root.table.display,
        "pass" if ok else "fail",
        "tenant A cannot read tenant B's green_api_token"
        if ok
        else "tenant A can read tenant B's green_api_token",
        None
        if ok
        else "bind the root policy to id = current tenant, or REVOKE SELECT"
        " (green_api_token) from the app role",
    )


def _fresh_row(shape: Shape, fixture: Fixture, hotel: str) -> dict[str, Any]:
    """A new row's values, with fresh distinct text (so copies and overwrites show)."""
    phones = list(fixture.phones_b)
    values = _row_values(
        shape,
        hotel,
        fixture,
        "rls-probe-" + secrets.token_hex(8),
        "rlsprobe" + secrets.token_hex(6),
    )
    fixture.phones_b[:] = phones
    return values


def _setup_failed(detail: str, fix: str) -> list[CheckResult]:
    """The probes cannot start: one failed ``probe-setup`` result says why."""
    return [CheckResult("probe-setup", "probe", None, "fail", detail, fix)]


def run_probes(conn: Connection[Any], cfg: RlsConfig, found: Any) -> list[CheckResult]:
    """Build the fixture and run every probe; the caller rolls the transaction back.

    On a distributed schema the fixture is committed and removed here, at the end.
    """
    can = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    bypass = bool(can and can[0])
    switch = _savepoint(
        conn,
        lambda: conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(cfg.app_role))),
    )
    if isinstance(switch, psycopg.Error):
        return _setup_failed(
            f"cannot act as {cfg.app_role}: {_first(switch)}",
            f"GRANT {cfg.app_role} TO <the role in DATABASE_URL> (migration 007 does it)",
        )
    prober = Prober(conn, cfg)
    if prober.distributed and not bypass:
        return _setup_failed(
            "on a distributed schema the probe rows are committed (and removed): that"
            " needs a role that bypasses row level security",
            "run rls-check on the Citus coordinator as a superuser or a BYPASSRLS role",
        )
    if not prober.distributed:
        return _probe(prober, found, bypass)
    conn.rollback()
    try:
        return _probe(prober, found, bypass)
    finally:
        _remove_fixture(prober)


def _remove_fixture(prober: Prober) -> None:
    """Delete the committed probe tenants; their rows go with them (ON DELETE CASCADE)."""
    conn, cfg = prober.conn, prober.cfg
    conn.rollback()
    if prober.committed_roots:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE {}::text = ANY(%s)").format(
                sql.Identifier(cfg.root_table), sql.Identifier(cfg.root_column)
            ),
            (prober.committed_roots,),
        )
    conn.commit()


def _probe(prober: Prober, found: Any, bypass: bool) -> list[CheckResult]:
    from hotelbot_cli.rls.effects import effect_probes

    fixture, shapes = build_fixture(prober.conn, found.tenant_tables, bypass, prober)
    prober.observer = fixture.hotel_b or None
    results: list[CheckResult] = []
    root = next((s for s in shapes if s.table.root), None)
    ready = []
    for shape in shapes:
        t = shape.table
        if t.oid in fixture.broken or not fixture.hotel_b:
            results.append(
                CheckResult(
                    "probe-setup",
                    "probe",
                    t.display,
                    "fail",
                    fixture.broken.get(t.oid, "no probe tenants"),
                    "see the detail; add a value for the column in hotelbot_cli/rls/probes.py"
                    " or --ignore probe-setup:<table> with a reason",
                )
            )
            continue
        ready.append(shape)
        results += probe_table(
            prober, shape, fixture, functools.partial(_fresh_row, shape, fixture)
        )
    if root is not None and fixture.hotel_b and root.table.oid not in fixture.broken:
        results.append(probe_token(prober, fixture, root))
    if fixture.hotel_b:
        results += effect_probes(prober, found, ready, fixture, bypass)
    return results
