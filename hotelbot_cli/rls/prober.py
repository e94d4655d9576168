"""The prober: one connection acting as the app role for a probe tenant, in savepoints.

It binds a tenant with the library's own statements
(:func:`hotelbot_cli.db.tenant.tenant_statements`), runs one statement, reads what it did and
rolls back to its savepoint; it also builds the two probe tenants' fixture (rows written by
the app role, so triggers fire as in production) and removes it.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg.rows import dict_row

from hotelbot_cli.db.tenant import (
    SIGNATURE_SETTING,
    TENANT_SETTING,
    parse_hotel_id,
    propagates_set_local,
    signing_key,
    tenant_statements,
)
from hotelbot_cli.db.tenant_cache import REMEMBER_TENANT, VERIFIED_TENANTS, registered_signatures
from hotelbot_cli.errors import UsageError
from hotelbot_cli.rls.catalog import TenantTable
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.rows import (
    Fixture,
    ProbeError,
    Shape,
    ident,
    insert_order,
    insert_sql,
    row_values,
    shape_of,
)


def in_savepoint(conn: Connection[Any], work: Callable[[], Any]) -> Any:
    """Run ``work`` in a savepoint that is always rolled back; return its result or the error."""
    conn.execute("SAVEPOINT rls_probe")
    try:
        return work()
    except psycopg.Error as exc:
        return exc
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT rls_probe")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_uuid(value: str | None) -> bool:
    try:
        parse_hotel_id(value)
    except UsageError:
        return False
    return value is not None


@dataclass(frozen=True)
class Outcome:
    """What one probe statement did: refused with ``error``, or touched ``rowcount`` rows
    with ``row`` first. ``after`` is what the checker read afterwards; ``checked`` is False
    when that read itself failed (``error`` is then the checker's)."""

    error: psycopg.Error | None = None
    rowcount: int = 0
    row: tuple[Any, ...] | None = None
    after: Any = None
    checked: bool = True

    @property
    def value(self) -> Any:
        """The first column of the first row (a count, say); None without a row."""
        return None if self.row is None else self.row[0]

    @property
    def count(self) -> int:
        """A ``SELECT count(*)`` probe's count; 0 when the statement was refused."""
        return 0 if self.error is not None else int(self.value or 0)


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

    def binding(
        self,
        tenant: str | None,
        forge: str | None = None,
        ttl: int | None = None,
        plant: str | None = None,
    ) -> str:
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
                # registered every time: each probe meets the policies as a bot whose
                # signature is in the cache of verified signatures (revision 013)
                registered=None if registered_signatures(self.conn) is None else set(),
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
        if plant is not None:
            statements += self._planting(plant)
        return "; ".join(statements)

    def _planting(self, other: str) -> list[str]:
        """SQL injected into the tenant's transaction that tries to get a made-up signature
        for ``other`` into the cache of verified signatures (revision 013), by writing it
        and by asking the registering function, then binds ``other`` with it."""
        bogus = f"{int(time.time()) + 3600}:{'0' * 64}"
        values = {"hotel": sql.Literal(other), "signature": sql.Literal(bogus)}
        plant = sql.SQL(
            "DO $plant$ BEGIN"
            " BEGIN INSERT INTO {cache} (digest, expires_at) VALUES"
            " (sha256(convert_to({hotel} || ':' || {signature}, 'UTF8')),"
            " now() + interval '1 hour');"
            " EXCEPTION WHEN OTHERS THEN NULL; END;"
            " BEGIN PERFORM {remember}({hotel}::uuid, {signature});"
            " EXCEPTION WHEN OTHERS THEN NULL; END;"
            " END $plant$"
        ).format(
            cache=sql.Identifier(*VERIFIED_TENANTS.split(".")),
            remember=sql.Identifier(*REMEMBER_TENANT.split(".")),
            **values,
        )
        bind = sql.SQL(
            "SELECT set_config({setting}, {hotel}, true),"
            " set_config({sig_setting}, {signature}, true)"
        ).format(
            setting=sql.Literal(self.cfg.tenant_setting),
            sig_setting=sql.Literal(SIGNATURE_SETTING),
            **values,
        )
        return [plant.as_string(self.conn), bind.as_string(self.conn)]

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
        plant: str | None = None,
    ) -> Outcome:
        """What ``query`` did as the app role for ``tenant``; ``after`` runs as the checker,
        inside the probe, and its result is the outcome's ``after``.
        ``ttl`` signs the tenant for that many seconds (negative: already expired).

        On one node: savepoint and binding go in one round trip, the statement in a second,
        the rollback to the savepoint in a third. On Citus the probe is a transaction of its
        own, rolled back, with nothing else in it, and ``after`` reads as the observer (the
        same user as the write: its shard connections see it).
        """
        conn = self.conn
        if self.distributed:
            conn.rollback()
            start = self.binding(tenant, forge, ttl, plant)

            def undo() -> None:
                conn.rollback()
        else:
            start = "SAVEPOINT rls_probe; " + self.binding(tenant, forge, ttl, plant)

            def undo() -> None:
                conn.execute("ROLLBACK TO SAVEPOINT rls_probe")

        conn.execute(start.encode())
        try:
            try:
                cur = conn.execute(query, params)
                outcome = Outcome(
                    rowcount=cur.rowcount, row=cur.fetchone() if cur.description else None
                )
            except psycopg.Error as exc:
                if after is None:
                    return Outcome(error=exc)
                undo()
                outcome = Outcome(error=exc)
            if after is None:
                return outcome
            self._as_checker()
            try:
                return dataclasses.replace(outcome, after=after())
            except psycopg.Error as exc:
                return Outcome(error=exc, checked=False)
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


def as_owner(conn: Connection[Any], query: Any, params: Any) -> dict[str, Any]:
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
    shapes = insert_order([shape_of(conn, t, tenant_oids) for t in tables])
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
                    sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(ident(shape.table))
                )
                conn.execute("RELEASE SAVEPOINT rls_force")
            except psycopg.Error as exc:
                conn.execute("ROLLBACK TO SAVEPOINT rls_force")
                fixture.broken[shape.table.oid] = (
                    f"cannot insert probe rows: {first_line(exc)}; run rls-check as the owner of"
                    " the tables or a superuser"
                )
                continue
        for label in ("A", "B"):
            hotel = (fixture.hotel_a if label == "A" else fixture.hotel_b) or ""
            try:
                row = _insert_probe_row(prober, shape, fixture, hotel, label == "B")
            except (ProbeError, psycopg.Error) as exc:
                fixture.broken[shape.table.oid] = f"cannot insert a probe row: {first_line(exc)}"
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
    attempts = [row_values(shape, hotel, fixture, token, canary)]
    attempts.append(row_values(shape, hotel, fixture, token))
    last: Exception | None = None
    for as_app in (False,) if shape.table.root else (True, False):
        for values in attempts:
            query = insert_sql(shape, values, returning=True)
            params = list(values.values())
            try:
                if as_app:
                    row = prober.keep(hotel, query, params)
                    fixture.written_by_app.add(shape.table.oid)
                    return row
                return as_owner(prober.conn, query, params)
            except psycopg.Error as exc:
                last = exc
    assert last is not None
    raise last


def refused(outcome: Outcome, *sqlstates: str) -> bool:
    """A write was refused: no row touched, or any error but an integrity one (class 23), which
    comes after rows were reached (unless listed in ``sqlstates``)."""
    if outcome.error is not None:
        state = outcome.error.sqlstate or ""
        return not state.startswith("23") or state in sqlstates
    return outcome.rowcount == 0


def describe_outcome(outcome: Outcome) -> str:
    error = outcome.error
    if error is not None:
        word = "refused" if error.sqlstate == "42501" else "error"
        return f"{word} ({error.sqlstate}: {first_line(error)})"
    return f"{outcome.rowcount} row(s)"


def matched_rows(conn: Connection[Any], table: TenantTable, where: Any, params: Any) -> int:
    """Rows a probe's key matches as the checker (owner or bypass): proves the probe aims."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE ").format(ident(table)) + where
    outcome = in_savepoint(conn, lambda: conn.execute(query, params).fetchone())
    return -1 if isinstance(outcome, psycopg.Error) else int(outcome[0])


def updatable_column(prober: Prober, shape: Shape) -> str:
    """A column the app role may UPDATE (so the probe tests the policy, not a privilege)."""
    row = prober.conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0"
        " AND NOT a.attisdropped AND a.attgenerated = ''"
        " AND has_column_privilege(%s, a.attrelid, a.attnum, 'UPDATE')"
        " ORDER BY a.attnum LIMIT 1",
        (shape.table.oid, prober.app_role),
    ).fetchone()
    return row[0] if row else str(shape.table.column)


def remove_fixture(prober: Prober) -> None:
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
