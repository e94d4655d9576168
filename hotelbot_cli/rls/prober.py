"""The prober: one connection acting as the app role for a probe tenant, in savepoints.

It binds a tenant with the library's own statements
(:func:`hotelbot_cli.db.tenant.tenant_statements`), runs one statement, reads what it did
(an :class:`~hotelbot_cli.rls.outcome.Outcome`) and rolls back to its savepoint. The two
probe tenants it acts for are :mod:`hotelbot_cli.rls.fixture`.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Collection
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import Connection, sql
from psycopg.abc import Params
from psycopg.rows import dict_row

from hotelbot_cli.db.tenant import (
    SIGNATURE_SETTING,
    TENANT_SETTING,
    parse_hotel_id,
    propagates_set_local,
    signing_key,
    signs_tenants,
    tenant_statements,
)
from hotelbot_cli.db.tenant_cache import REMEMBER_TENANT, VERIFIED_TENANTS, registered_signatures
from hotelbot_cli.errors import UsageError
from hotelbot_cli.rls.config import RlsConfig
from hotelbot_cli.rls.outcome import Outcome

T = TypeVar("T")

#: Policy expressions and bodies of functions outside the system schemas that read a
#: setting: with current_setting(), or with SHOW (in a volatile function's EXECUTE).
_TEXTS_READING_SETTINGS = r"""
SELECT read.text FROM (
    SELECT pg_catalog.pg_get_expr(polqual, polrelid) FROM pg_catalog.pg_policy
    UNION ALL SELECT pg_catalog.pg_get_expr(polwithcheck, polrelid) FROM pg_catalog.pg_policy
    UNION ALL SELECT p.prosrc FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
) AS read (text)
WHERE read.text ~* '(current_setting\s*\(|\mshow\s)'
"""
_NAME = r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z0-9_$.]+)?"
#: A setting read by current_setting() or SHOW; a quoted literal.
_SETTING_READ = re.compile(
    rf"current_setting\s*\(\s*'({_NAME})'|\bSHOW\s+\"?({_NAME})", re.IGNORECASE
)
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
#: Values SQL injected into a transaction would try in a setting that a policy reads: the
#: usual spellings of a switch and a wildcard, then every literal of the code that reads it.
FORGED_VALUES = ("on", "true", "1", "yes", "all", "*", "admin", "")
#: At most this many values per setting (with tenant B's id): each is a probe per table.
MAX_FORGED_VALUES = 32


#: The built-in settings the app role may set in its transaction: every session may set a
#: ``user`` one (``SET application_name``), others where SET on them was granted (PG 15+).
_SETTABLE_BUILT_INS = (
    "SELECT lower(name) FROM pg_catalog.pg_settings WHERE name NOT LIKE '%%.%%'"
    " AND (context = 'user' OR pg_catalog.has_parameter_privilege(%s, name, 'SET'))"
)


def read_settings(
    texts: list[str], own: set[str], settable: Collection[str] = ()
) -> dict[str, list[str]]:
    """Setting -> the values to forge it with, for every setting ``texts`` read that any SQL
    in a tenant's transaction may set: a custom one (``prefix.name``) or a built-in one in
    ``settable`` (``own``: the tenant's own settings, probed elsewhere). The values are the
    switches of :data:`FORGED_VALUES`, then the literals of the texts that read it: whatever
    the code compares a setting with, SQL can set it to."""
    found: dict[str, list[str]] = {}
    for text in texts:
        names = {(a or b).lower() for a, b in _SETTING_READ.findall(text)} - own
        names = {name for name in names if "." in name or name in settable}
        literals = [v.replace("''", "'") for v in _LITERAL.findall(text) if len(v) <= 64]
        for name in names:
            values = found.setdefault(name, list(FORGED_VALUES))
            values += [v for v in literals if v not in values and v.lower() != name]
    return {name: values[:MAX_FORGED_VALUES] for name, values in sorted(found.items())}


#: A statement the prober runs with parameters (what ``Connection.execute`` takes).
Statement: TypeAlias = str | bytes | sql.SQL | sql.Composed


def in_savepoint(conn: Connection[Any], work: Callable[[], T]) -> T | psycopg.Error:
    """Run ``work`` in a savepoint that is always rolled back; return its result or the error."""
    conn.execute("SAVEPOINT rls_probe")
    try:
        return work()
    except psycopg.Error as exc:
        return exc
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT rls_probe")


def _is_uuid(value: str | None) -> bool:
    try:
        parse_hotel_id(value)
    except UsageError:
        return False
    return value is not None


def _cache_row(
    hotel: sql.Composable, signature: sql.Composable, expires: sql.Composable
) -> sql.Composed:
    """The row revision 013's cache of verified signatures holds for ``hotel`` bound with
    ``signature`` until ``expires``: the digest the policies look up."""
    return sql.SQL(
        "INSERT INTO {cache} (digest, expires_at) VALUES"
        " (sha256(convert_to({hotel} || ':' || {signature}, 'UTF8')), {expires})"
    ).format(
        cache=sql.Identifier(*VERIFIED_TENANTS.split(".")),
        hotel=hotel,
        signature=signature,
        expires=expires,
    )


#: As the verifier stored the transaction's signature while it was valid (to its expiry),
#: and before anything pruned it: what a signature that leaked and then expired finds.
_CACHED_AS_BOUND = _cache_row(
    hotel=sql.SQL("current_setting({})").format(sql.Literal(TENANT_SETTING)),
    signature=sql.SQL("current_setting({})").format(sql.Literal(SIGNATURE_SETTING)),
    expires=sql.SQL("to_timestamp(split_part(current_setting({}), ':', 1)::bigint)").format(
        sql.Literal(SIGNATURE_SETTING)
    ),
) + sql.SQL(" ON CONFLICT (digest) DO NOTHING")


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
        #: The database offers signed tenants (revision 009): the library signs every
        #: tenant it binds, so a policy that trusts the bare setting is a hole.
        self.signs = signs_tenants(conn)
        self.observer: str | None = None
        self._other_settings: dict[str, list[str]] | None = None
        #: Root rows (tenants) committed as fixture on a distributed schema, to remove.
        self.committed_roots: list[str] = []

    def binding(
        self,
        tenant: str | None,
        forge: str | None = None,
        ttl: int | None = None,
        plant: str | None = None,
        settings: tuple[tuple[str, str], ...] = (),
        *,
        cached: bool = False,
    ) -> str:
        """The statements that make this transaction the app role for ``tenant``: what the
        library sends for a real tenant id; unset, empty and malformed values (a forgotten or
        forged tenant) are set by hand; ``settings`` are other (name, value) pairs SQL in the
        transaction sets; ``cached``: the checker first puts the bound signature in the
        cache of verified signatures, valid or not, as the verifier stored it while it was
        (a signed tenant on one node only). One string, so it costs one round trip."""
        setting = self.cfg.tenant_setting
        statements: list[str] = []
        if setting == TENANT_SETTING and self.signs:
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
            if cached:  # right after the binding, before the role switch: as the checker
                statements.insert(1, _CACHED_AS_BOUND.as_string(self.conn))
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
            statements.append(self._set_local(setting, tenant))
        if forge is not None:  # SQL injected into the tenant's transaction names another
            statements.append(self._set_local(setting, forge))
        if plant is not None:
            statements += self._planting(plant)
        statements += [self._set_local(name, value) for name, value in settings]
        return "; ".join(statements)

    def _set_local(self, name: str, value: str) -> str:
        """Set ``name`` for this transaction as SQL injected into it would: ``SET LOCAL``
        where the server passes that on to other nodes (Citus), else ``set_config()``."""
        if propagates_set_local(self.conn):
            return (
                sql.SQL("SET LOCAL {} = {}")
                .format(sql.Identifier(*name.split(".")), sql.Literal(value))
                .as_string(self.conn)
            )
        return (
            sql.SQL("SELECT set_config({}, {}, true)")
            .format(sql.Literal(name), sql.Literal(value))
            .as_string(self.conn)
        )

    def other_settings(self) -> dict[str, list[str]]:
        """Settings that policies or functions read, besides the tenant's own, that the app
        role may set (custom ones, and built-ins such as ``application_name``), with the
        values to forge each with (:func:`read_settings`): any SQL in a transaction may set
        them, so none may widen what a tenant sees."""
        if self._other_settings is None:
            own = {self.cfg.tenant_setting.lower(), SIGNATURE_SETTING}
            texts = [r[0] for r in self.conn.execute(_TEXTS_READING_SETTINGS).fetchall()]
            rows = self.conn.execute(_SETTABLE_BUILT_INS, (self.cfg.app_role,)).fetchall()
            self._other_settings = read_settings(texts, own, {r[0] for r in rows})
        return self._other_settings

    def _planting(self, other: str) -> list[str]:
        """SQL injected into the tenant's transaction that tries to get a made-up signature
        for ``other`` into the cache of verified signatures (revision 013), by writing it
        and by asking the registering function, then binds ``other`` with it."""
        bogus = f"{int(time.time()) + 3600}:{'0' * 64}"
        values = {"hotel": sql.Literal(other), "signature": sql.Literal(bogus)}
        plant = sql.SQL(
            "DO $plant$ BEGIN"
            " BEGIN {insert};"
            " EXCEPTION WHEN OTHERS THEN NULL; END;"
            " BEGIN PERFORM {remember}({hotel}::uuid, {signature});"
            " EXCEPTION WHEN OTHERS THEN NULL; END;"
            " END $plant$"
        ).format(
            insert=_cache_row(**values, expires=sql.SQL("now() + interval '1 hour'")),
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
        query: Statement,
        params: Params | None = None,
        after: Callable[[], Any] | None = None,
        *,
        forge: str | None = None,
        ttl: int | None = None,
        plant: str | None = None,
        settings: tuple[tuple[str, str], ...] = (),
        cached: bool = False,
    ) -> Outcome:
        """What ``query`` did as the app role for ``tenant``; ``after`` runs as the checker,
        inside the probe, and its result is the outcome's ``after``.
        ``ttl`` signs the tenant for that many seconds (negative: already expired);
        ``cached``: see :meth:`binding`.

        On one node: savepoint and binding go in one round trip, the statement in a second,
        the rollback to the savepoint in a third. On Citus the probe is a transaction of its
        own, rolled back, with nothing else in it, and ``after`` reads as the observer (the
        same user as the write: its shard connections see it).
        """
        conn = self.conn
        if self.distributed:
            conn.rollback()
            start = self.binding(tenant, forge, ttl, plant, settings, cached=cached)

            def undo() -> None:
                conn.rollback()
        else:
            start = "SAVEPOINT rls_probe; " + self.binding(
                tenant, forge, ttl, plant, settings, cached=cached
            )

            def undo() -> None:
                conn.execute("ROLLBACK TO SAVEPOINT rls_probe")

        try:
            conn.execute(start.encode())
        except psycopg.Error as exc:
            if not settings:  # the tenant's own binding: a fault of the prober's, said aloud
                raise
            undo()  # the server refused a forged value ('admin' for a boolean): opens nothing
            return Outcome(error=exc)
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

    def keep(self, tenant: str, query: Statement, params: Params) -> dict[str, Any]:
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
