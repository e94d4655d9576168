"""Effect probes: where does tenant B's data end up, and can tenant A's writes change it?

Runs inside the probes' rolled-back transaction, after tenant B's bot wrote its canary rows
through the normal tables (so triggers and rules fired as in production):

1. The owner runs the routine jobs: REFRESH every reachable materialized view, ANALYZE
   every reachable relation without row security (planner statistics are what
   ``pg_stats`` shows; it hides those of tables whose row security applies).
2. As tenant A, and with no tenant, every readable column of every reachable relation the
   audit did not prove tenant-bound (RLS-protected tenant tables are not scanned: that is
   what keeps a clean run fast) and the planner statistics are searched for B's canary,
   token, id and phone numbers.
3. Tenant A acts: writes its own rows (insert, update, delete: its triggers fire) and
   uses B's natural keys (unique keys such as a phone number) to insert, rename and
   delete; after each action B's rows are compared, as the checker, with before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from psycopg import Connection, sql

from hotelbot_cli.rls.catalog import ROLES_CTE, TenantTable
from hotelbot_cli.rls.effective_policy import command_judgements
from hotelbot_cli.rls.outcome import describe_outcome
from hotelbot_cli.rls.prober import Prober
from hotelbot_cli.rls.report import CheckResult
from hotelbot_cli.rls.rows import (
    Fixture,
    ProbeError,
    Shape,
    fresh_row,
    ident,
    insert_sql,
    param,
    row_filter,
    updatable_column,
)

if TYPE_CHECKING:
    from hotelbot_cli.rls.audit import Audit


def _view_inputs(conn: Connection[Any], oid: int) -> tuple[list[int], bool]:
    """The relations a view reads, and whether it calls a function outside the catalogs."""
    rows = conn.execute(
        """
        SELECT d.refclassid = 'pg_proc'::regclass, d.refobjid,
               d.refclassid = 'pg_proc'::regclass AND EXISTS (
                   SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE p.oid = d.refobjid AND n.nspname <> 'pg_catalog')
          FROM pg_rewrite rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass
           AND d.objid = rw.oid AND d.refobjid <> rw.ev_class
         WHERE rw.ev_class = %s AND d.refclassid IN ('pg_class'::regclass, 'pg_proc'::regclass)
        """,
        (oid,),
    ).fetchall()
    return [r[1] for r in rows if not r[0]], any(r[2] for r in rows)


def _bound_for_select(t: TenantTable, found: Audit, conn: Connection[Any] | None = None) -> bool:
    """Proven to show A only A's rows: RLS-bound SELECT, or an invoker view of only such."""
    if t.kind == "v":
        if not t.invoker or conn is None:
            return False
        reads, calls = _view_inputs(conn, t.oid)
        by_oid = {r.oid: r for r in found.reachable}
        return not calls and all(o in by_oid and _bound_for_select(by_oid[o], found) for o in reads)
    if t.kind not in "rpf" or not (t.enabled and t.forced):
        return False
    judged = command_judgements(t, found.ctx).get("SELECT")
    return judged is not None and judged.verdict == "bound"


def _readable_columns(conn: Connection[Any], app_oid: int, oid: int) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            f"""
            WITH {ROLES_CTE}
            SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %(rel)s AND a.attnum > 0
               AND NOT a.attisdropped AND EXISTS (SELECT 1 FROM roles r
                   WHERE has_column_privilege(r.oid, a.attrelid, a.attnum, 'SELECT'))
             ORDER BY a.attnum
            """,
            {"app": app_oid, "rel": oid},
        ).fetchall()
    ]


def routine_jobs(conn: Connection[Any], rels: list[TenantTable]) -> None:
    """What the owner runs anyway: matview refreshes, statistics (errors are skipped)."""
    for t in rels:
        if t.kind == "m":
            statement = sql.SQL("REFRESH MATERIALIZED VIEW {}")
        elif t.kind in "rp" and not t.enabled:
            statement = sql.SQL("ANALYZE {}")
        else:
            continue
        conn.execute("SAVEPOINT rls_job")
        try:
            conn.execute(statement.format(ident(t)))
            conn.execute("RELEASE SAVEPOINT rls_job")
        except psycopg.Error:
            conn.execute("ROLLBACK TO SAVEPOINT rls_job")


def canary_search(prober: Prober, found: Audit, fixture: Fixture) -> list[CheckResult]:
    """Search what the app role can read, outside proven tenant-bound tables, for B's data."""
    conn = prober.conn
    app_oid = found.app_oid
    assert app_oid is not None  # the probes run only where the app role exists
    patterns = [f"%{s}%" for s in fixture.secrets_of_b() if s]
    results = []
    for t in found.reachable:
        if "SELECT" not in t.privileges or t.kind == "S" or _bound_for_select(t, found, conn):
            continue
        columns = _readable_columns(conn, app_oid, t.oid)
        if not columns:
            continue
        text = sql.SQL("concat_ws(' ', {})").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
        )
        query = sql.SQL("SELECT count(*) FROM {} t WHERE {} LIKE ANY(%s)").format(ident(t), text)
        seen = []
        for label, tenant in (("tenant A", fixture.hotel_a), ("no tenant", None)):
            outcome = prober.run(tenant, query, [patterns])
            if outcome.error is None and outcome.value:
                seen.append(f"{label} finds {outcome.value} row(s)")
        results.append(
            CheckResult(
                "probe-canary",
                "probe",
                t.display,
                "fail" if seen else "pass",
                f"tenant B's canary data is readable here: {'; '.join(seen)}"
                if seen
                else "no trace of tenant B's data as tenant A or with no tenant",
                None
                if not seen
                else f"this {t.display} holds tenant data: make it tenant-bound (RLS with a"
                " tenant policy, security_invoker for views) or stop copying tenant data into it",
            )
        )
    # pg_stats hides the statistics of tables whose row security applies: search the rest.
    exposed = [t.oid for t in found.reachable if t.kind in "rpm" and not t.enabled]
    stats = prober.run(
        fixture.hotel_a,
        "SELECT string_agg(DISTINCT schemaname || '.' || tablename, ', ') FROM pg_stats"
        " WHERE (schemaname, tablename) IN (SELECT n.nspname, c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(%s))"
        " AND concat_ws(' ', most_common_vals::text, histogram_bounds::text) LIKE ANY(%s)",
        [exposed, patterns],
    )
    where = None if stats.error is not None else stats.value
    results.append(
        CheckResult(
            "probe-canary",
            "probe",
            "pg_stats",
            "fail" if where else "pass",
            f"planner statistics of {where} show tenant B's values to tenant A"
            if where
            else "planner statistics show no value of tenant B",
            None if not where else f"REVOKE SELECT on the columns of {where} from the app role",
        )
    )
    return results


def _snapshot(conn: Connection[Any], shapes: list[Shape], tenant: str) -> dict[str, str]:
    """Tenant B's rows in every probed table, as the checker (owner or bypass), in one query."""
    if not shapes:
        return {}
    parts = []
    for s in shapes:
        col = s.table.column
        assert col is not None
        parts.append(
            sql.SQL(
                "SELECT {}::text, (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY"
                " to_jsonb(t)::text), '[]')::text FROM {} t WHERE {} = %(t)s::{})"
            ).format(
                sql.Literal(s.table.display),
                ident(s.table),
                sql.Identifier(col),
                sql.SQL(s.type_of(col)),
            )
        )
    rows = conn.execute(sql.SQL(" UNION ALL ").join(parts), {"t": tenant}).fetchall()
    return {name: text for name, text in rows}


class Action(NamedTuple):
    """One write tenant A tries, and the check whose verdict it feeds."""

    check_id: str
    what: str
    statement: sql.Composed
    params: list[Any]


def _writes(
    s: Shape,
    fixture: Fixture,
    *,
    check_id: str,
    whose: str,
    where: tuple[sql.Composable, list[Any]],
    overrides: dict[str, Any],
    writable: str,
) -> list[Action]:
    """The insert, update and delete tenant A may try on ``s`` (as its privileges allow).

    ``where`` picks the row updated and deleted; ``overrides`` are column values the
    inserted row takes (e.g. tenant B's natural key); ``whose`` names the target; the
    update sets ``writable`` (a column the app role may update) to itself.
    """
    t = s.table
    acts: list[Action] = []
    if "INSERT" in t.privileges:
        try:
            values = fresh_row(s, fixture, fixture.hotel_a) | overrides
            acts.append(
                Action(check_id, f"insert {whose}", insert_sql(s, values), list(values.values()))
            )
        except ProbeError:
            pass
    clause, params = where
    if "UPDATE" in t.privileges:
        column = sql.Identifier(writable)
        touch = sql.SQL("UPDATE {} SET {} = {} WHERE ").format(ident(t), column, column)
        acts.append(Action(check_id, f"update {whose}", touch + clause, params))
    if "DELETE" in t.privileges:
        delete = sql.SQL("DELETE FROM {} WHERE ").format(ident(t))
        acts.append(Action(check_id, f"delete {whose}", delete + clause, params))
    return acts


def _actions(prober: Prober, shapes: list[Shape], fixture: Fixture) -> list[Action]:
    """What tenant A tries: writes to its own rows, then writes naming B's natural keys."""
    acts: list[Action] = []
    for s in shapes:
        t = s.table
        row_a = fixture.rows[(t.oid, fixture.hotel_a)]
        row_b = fixture.rows[(t.oid, fixture.hotel_b)]
        writable = updatable_column(prober, s)
        own = row_filter(s, row_a, s.pk or [str(t.column)])
        acts += _writes(
            s,
            fixture,
            check_id="probe-write-effects",
            whose=f"of its {t.display} row",
            where=own,
            overrides={},
            writable=writable,
        )
        for natural in s.natural:
            named = f"with {t.display} ({', '.join(natural)}) of tenant B"
            acts += _writes(
                s,
                fixture,
                check_id="probe-natural-key",
                whose=named,
                where=row_filter(s, row_b, natural),
                overrides={c: param(row_b[c]) for c in natural},
                writable=writable,
            )
    return acts


def write_effects(prober: Prober, shapes: list[Shape], fixture: Fixture) -> list[CheckResult]:
    """Tenant A's writes and its use of B's natural keys must leave B's rows unchanged."""
    conn = prober.conn
    before = _snapshot(conn, shapes, fixture.hotel_b)
    changed: dict[str, list[str]] = {"probe-write-effects": [], "probe-natural-key": []}
    tried: dict[str, int] = {"probe-write-effects": 0, "probe-natural-key": 0}
    for check_id, what, statement, params in _actions(prober, shapes, fixture):
        tried[check_id] += 1
        outcome = prober.run(
            fixture.hotel_a,
            statement,
            params,
            after=lambda: _snapshot(conn, shapes, fixture.hotel_b),
        )
        if not outcome.checked:
            continue
        diff = [name for name in before if before[name] != outcome.after.get(name)]
        if diff:
            changed[check_id].append(
                f"{what} ({describe_outcome(outcome)}) changed B's {', '.join(diff)}"
            )
    return [
        CheckResult(
            check_id,
            "probe",
            None,
            "fail" if changed[check_id] else "pass",
            "; ".join(changed[check_id])
            if changed[check_id]
            else f"{tried[check_id]} action(s) of tenant A left tenant B's rows unchanged",
            None
            if not changed[check_id]
            else "a trigger, rule or key lets one tenant's write reach another's rows: bind it to"
            " the tenant (include the tenant column in keys and in trigger/rule conditions)",
        )
        for check_id in ("probe-write-effects", "probe-natural-key")
    ]


def effect_probes(
    prober: Prober, found: Audit, shapes: list[Shape], fixture: Fixture, bypass: bool
) -> list[CheckResult]:
    """Routine jobs, the canary search, then A's writes diffed against B's rows."""
    routine_jobs(prober.conn, found.reachable)
    results = canary_search(prober, found, fixture)
    return results + write_effects(prober, shapes, fixture)


__all__ = ["effect_probes"]
