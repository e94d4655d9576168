"""Tenant-scoped sessions: the hotel is bound transaction-locally, signed, in one round trip.

The policies (revisions 009, 011) trust ``app.current_hotel_id`` only together with
``app.tenant_signature = '<expires>:<hmac>'``: an HMAC-SHA256 over ``'<hotel>:<expires>'``
keyed by a secret the app role cannot read. SQL injected into hotel A's transaction may set
any hotel id it likes, with ``SET`` or ``set_config(..., false)``; without hotel B's
signature, B's rows stay invisible. The bot signs with ``HOTELBOT_TENANT_KEY`` (written by
``hotelbot db create-login``); the owner, which may read the key, signs on the server.

The binding is transaction-local and made of validated literals: it ends with the
transaction, so a pooled connection never carries one hotel into the next user's
transaction. On one node it is a single ``SELECT FROM set_config(…, true), set_config(…, true)``
(one statement: each statement costs the client ~13 µs in psycopg); on Citus, which
propagates ``SET LOCAL`` to the workers but never ``set_config()``, it is ``SET LOCAL``s
(``propagate=True``; :func:`propagates_set_local` tells which a connection needs).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from hotelbot_cli import citus
from hotelbot_cli.db.tenant_cache import (
    REMEMBER_TENANT,
    registered_signatures,
    registered_signatures_async,
)
from hotelbot_cli.errors import ConfigError, UsageError
from hotelbot_cli.observability.context import bind_tenant
from hotelbot_cli.settings import tenant_key_from_env, tenant_ttl_from_env

TENANT_SETTING = "app.current_hotel_id"
SIGNATURE_SETTING = "app.tenant_signature"
#: The signing secret (revision 009): whoever reads it, or a function whose owner does,
#: may sign any hotel.
TENANT_KEY = "hotelbot_private.tenant_key"
_KEY_SCHEMA, _KEY_TABLE = TENANT_KEY.split(".")
#: FROM/WHERE of the key's catalog row (``c``, its pg_class row): a catalog join needs no
#: USAGE on the key's schema, where to_regclass() fails without it.
TENANT_KEY_CLASS = (
    "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    f" WHERE n.nspname = '{_KEY_SCHEMA}' AND c.relname = '{_KEY_TABLE}'"
)
#: The role tenant code runs as unless told otherwise (revision 007).
APP_ROLE = "app_user"


def parse_hotel_id(value: Any) -> uuid.UUID:
    """Validate a hotel id (UUID or its text); anything else is a UsageError."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise UsageError(f"hotel id {value!r} is not a UUID") from None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sign(hotel_id: uuid.UUID, expires: int, key: bytes) -> str:
    """The value of ``app.tenant_signature`` for ``hotel_id`` until ``expires`` (Unix s)."""
    message = f"{hotel_id}:{expires}".encode()
    return f"{expires}:{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def expiry(now: int, ttl: int) -> int:
    """When a signature made at ``now`` expires: the end of the next ``ttl/2`` slot.

    Between ``ttl/2`` and ``ttl`` from now, and the same for every process that signs
    within the slot: they all make the same signature for a hotel, so the database's
    cache of verified signatures (revision 013) holds a few rows per hotel, not one per
    hotel, process and restart, and stays a one-page lookup.
    """
    half = ttl // 2
    return now + ttl if half < 1 else (now // half + 2) * half


Binding = list[tuple[str, dict[str, Any] | None]]


#: (hotel as given, role, key, ttl, propagate) -> (renew at, binding, remember params): a
#: binding is reused while more than half its signature's life is left. The bot serves one
#: hotel many times a minute, and on a host whose idle vCPU halts, code that runs right
#: after the previous round trip runs cold: parsing the id, reading the environment and
#: signing cost the bench's tenant 30-50 µs there, a dictionary lookup ~1 µs. A signature
#: depends only on the hotel, the key and the slot (:func:`expiry`), so a hotel's id as a
#: UUID and as text get the same one. Bounded: cleared when it outgrows the number of
#: hotels a bot serves.
_BINDINGS: dict[tuple[Any, ...], tuple[int, Binding, dict[str, Any] | None]] = {}
_BINDINGS_MAX = 4096


def tenant_binding(
    hotel_id: Any,
    role: str | None = None,
    *,
    key: bytes | None = None,
    ttl: int | None = None,
    propagate: bool = False,
    registered: set[str] | None = None,
) -> Binding:
    """The statements (SQL, parameters) that bind the current transaction to ``hotel_id``.

    The one owner of tenant binding: ``tenant_session``, ``bench`` and ``rls-check``'s
    probes all send exactly these, right after BEGIN; they end with the transaction.
    ``hotel_id=None`` binds the role with no tenant (the "forgotten tenant").

    On one node, one ``SELECT FROM set_config(…)`` whose text never changes: psycopg prepares
    it once per connection, where a literal per hotel and signature would be parsed every
    time. ``propagate=True`` (Citus) sends ``SET LOCAL``s of validated literals instead,
    which reach the workers, and needs the key.

    ``key`` (default ``HOTELBOT_TENANT_KEY``) signs on the client; without one the
    owner signs on the server with ``hotelbot_private.sign_tenant()``, which the app role
    cannot call. The role comes last: everything before it runs as the login.
    ``ttl`` (default ``HOTELBOT_TENANT_TTL``, 300 s) bounds the signature's life; a
    binding is made once per hotel and half of that life (see :data:`_BINDINGS`).

    ``registered`` (from :func:`~hotelbot_cli.db.tenant_cache.registered_signatures`) is the
    connection's set of signatures already in the database's cache: a client-signed one
    that is not there yet is registered by one more statement
    (``hotelbot_private.remember_tenant``, after the role switch: the app role may call
    it) and added to it.
    """
    if hotel_id is None:  # no tenant: nothing to sign or register, no environment to read
        return _bind(None, role, key=None, life=0, propagate=propagate, now=0)[1]
    life = tenant_ttl_from_env() if ttl is None else ttl
    key = tenant_key_from_env() if key is None else key
    now = int(time.time())
    memo = (hotel_id, role, key, life, propagate)
    try:
        hit = _BINDINGS.get(memo)
        hashable = True
    except TypeError:  # an unhashable hotel id: made afresh, and parse_hotel_id judges it
        hit, hashable = None, False
    if hit is None or hit[0] <= now:
        expires, made, remember = _bind(
            hotel_id, role, key=key, life=life, propagate=propagate, now=now
        )
        hit = (expires - life // 2, made, remember)
        if hashable:
            if len(_BINDINGS) >= _BINDINGS_MAX:
                _BINDINGS.clear()
            _BINDINGS[memo] = hit
    _, binding, remember = hit
    if remember is None or registered is None or remember["signature"] in registered:
        return list(binding)
    if len(registered) >= _BINDINGS_MAX:
        registered.clear()
    registered.add(remember["signature"])
    return [*binding, (_REMEMBER, remember)]


def _bind(
    hotel_id: Any, role: str | None, *, key: bytes | None, life: int, propagate: bool, now: int
) -> tuple[int, Binding, dict[str, Any] | None]:
    """:func:`tenant_binding` made afresh: when its signature expires, the statements, and
    the parameters of the statement that registers a client-made signature (None when
    there is none to register)."""
    hid, expires = "", expiry(now, life)
    values: tuple[str, str] | None = ("", "")
    if hotel_id is not None:
        hotel = parse_hotel_id(hotel_id)
        hid = str(hotel)
        values = None if key is None else (hid, sign(hotel, expires, key))
    binding: Binding = []
    remember = None
    if values is None:  # the owner, without the key: sign on the server
        if propagate:
            raise ConfigError(
                "a tenant on Citus is signed by the client, but no signing key is available",
                "set HOTELBOT_TENANT_KEY (`hotelbot db create-login --env-file` writes it)",
            )
        binding.append((_SIGN_ON_SERVER, {"hotel": hid, "expires": expires}))
    elif propagate:
        binding += [
            (f"SET LOCAL {TENANT_SETTING} = {_literal(values[0])}", None),
            (f"SET LOCAL {SIGNATURE_SETTING} = {_literal(values[1])}", None),
        ]
    else:
        params = {"hotel": values[0], "signature": values[1]}
        binding.append((_SET_SIGNED, params))
        remember = params if values[0] and values[1] else None
    if role:
        binding.append((f"SET LOCAL ROLE {_identifier(role)}", None))
    return expires, binding, remember


#: Both settings in FROM, so the statement returns one row of no columns: the client decodes
#: nothing of it. Against ``SELECT set_config(…), set_config(…)``, which sends both values
#: back, a tenant read's transaction in the bench's driver (2,000 shuffled owner/old/new
#: triples per operation, three runs) was 3-22 µs faster in 9 of 10 comparisons, 5 µs slower
#: in one: a few µs, within the run's noise one at a time.
_SET_SIGNED = (
    f"SELECT FROM set_config('{TENANT_SETTING}', %(hotel)s, true) AS hotel,"
    f" set_config('{SIGNATURE_SETTING}', %(signature)s, true) AS signature"
)
#: Once per connection and signature: the statement that puts it in the cache.
_REMEMBER = f"SELECT {REMEMBER_TENANT}(%(hotel)s::uuid, %(signature)s)"
_SIGN_ON_SERVER = (
    f"SELECT FROM set_config('{TENANT_SETTING}', %(hotel)s, true) AS hotel,"
    f" set_config('{SIGNATURE_SETTING}',"
    " hotelbot_private.sign_tenant(%(hotel)s::uuid, %(expires)s), true) AS signature"
)


def tenant_statements(
    hotel_id: Any,
    role: str | None = None,
    *,
    key: bytes | None = None,
    ttl: int | None = None,
    propagate: bool = False,
    registered: set[str] | None = None,
) -> list[str]:
    """:func:`tenant_binding` as literal SQL strings, for callers that send plain text
    (one string per statement; values validated and quoted)."""
    rendered = []
    binding = tenant_binding(
        hotel_id, role, key=key, ttl=ttl, propagate=propagate, registered=registered
    )
    for sql_text, params in binding:
        quoted = {
            k: str(v) if isinstance(v, int) else _literal(str(v)) for k, v in (params or {}).items()
        }
        rendered.append(sql_text % quoted if params else sql_text)
    return rendered


def propagates_set_local(raw: Any) -> bool:
    """Whether ``raw``'s server needs ``SET LOCAL`` for the tenant to reach other nodes (Citus).

    :func:`hotelbot_cli.citus.is_citus` answers (asked once per physical connection).
    """
    return citus.is_citus(raw)


def signing_key(owner: psycopg.Connection[Any]) -> bytes | None:
    """The key a bot login signs with: HOTELBOT_TENANT_KEY, else read by the owner.

    Only the owner (or a role it granted the key to) may read ``hotelbot_private``; for
    anyone else, or before revision 009, this is None and signing falls back to the server.
    """
    key = tenant_key_from_env()
    if key is not None:
        return key
    try:
        with owner.transaction():
            row = owner.execute(
                f"SELECT key FROM {TENANT_KEY} WHERE has_table_privilege('{TENANT_KEY}', 'SELECT')"
            ).fetchone()
    except psycopg.Error:  # no such schema yet, or no USAGE on it
        return None
    return bytes(row[0]) if row else None


def signs_tenants(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database signs its tenants (revision 009's key exists): there a policy
    that trusts a setting SQL can set is a hole, not a weaker design."""
    row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {TENANT_KEY_CLASS})").fetchone()
    return bool(row and row[0])


def _refuse_autocommit(raw: Any) -> None:
    if raw.autocommit:
        raise UsageError(
            "a tenant session needs a transaction, but the connection is in autocommit mode",
            "use an engine without isolation_level='AUTOCOMMIT'",
        )


def _unsigned(exc: Exception) -> Exception:
    """A login that may not sign on the server needs the key: say so, not 'permission denied'."""
    if "hotelbot_private" in str(exc) or "sign_tenant" in str(exc):  # schema, or (013) function
        return ConfigError(
            "this login cannot sign a tenant: HOTELBOT_TENANT_KEY is not set",
            "export the key that `hotelbot db create-login --env-file` wrote",
        )
    return exc


def set_tenant(connection: Connection, hotel_id: Any, role: str | None = None) -> uuid.UUID:
    """Bind the current transaction of ``connection`` to ``hotel_id`` as ``role``.

    ``role`` defaults to the app role: tenant code never runs with the login's own rights.
    psycopg's pipeline sends the implicit BEGIN and the binding together: no extra round
    trip. Refuses an autocommit connection, where the binding would not outlive its
    statement.
    """
    hid = parse_hotel_id(hotel_id)
    raw = connection.connection.driver_connection
    assert raw is not None
    _refuse_autocommit(raw)
    propagate = propagates_set_local(raw)
    registered = None if propagate else registered_signatures(raw)
    binding = tenant_binding(hid, role or APP_ROLE, propagate=propagate, registered=registered)
    try:
        with raw.pipeline():
            for statement, params in binding:
                raw.execute(statement, params)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _unsigned(exc) from None
    return hid


async def set_tenant_async(
    connection: AsyncConnection, hotel_id: Any, role: str | None = None
) -> uuid.UUID:
    """Async twin of :func:`set_tenant`."""
    hid = parse_hotel_id(hotel_id)
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    _refuse_autocommit(raw)
    propagate = await citus.citus_version_async(raw) is not None
    registered = None if propagate else await registered_signatures_async(raw)
    binding = tenant_binding(hid, role or APP_ROLE, propagate=propagate, registered=registered)
    try:
        async with raw.pipeline():
            for statement, params in binding:
                await raw.execute(statement, params)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _unsigned(exc) from None
    return hid


@contextmanager
def tenant_session(
    hotel_id: Any, factory: sessionmaker[Session] | None = None, role: str | None = None
) -> Iterator[Session]:
    """A Session in one transaction bound to ``hotel_id``; committed on success, else rolled back.

    Runs as ``role`` (default: the app role, ``app_user``) for this transaction only. The
    default factory uses the bot's login (``HOTELBOT_APP_DATABASE_URL``) when configured.
    """
    hid = parse_hotel_id(hotel_id)
    if factory is None:
        from hotelbot_cli.db.engine import get_app_engine, session_factory

        factory = session_factory(get_app_engine())
    with bind_tenant(hid), factory() as session, session.begin():
        set_tenant(session.connection(), hid, role)
        yield session


@asynccontextmanager
async def async_tenant_session(
    hotel_id: Any, engine: AsyncEngine | None = None, role: str | None = None
) -> AsyncIterator[AsyncSession]:
    """Async twin of :func:`tenant_session`."""
    hid = parse_hotel_id(hotel_id)
    from hotelbot_cli.db.engine import async_session_factory

    with bind_tenant(hid):
        async with async_session_factory(engine)() as session, session.begin():
            await set_tenant_async(await session.connection(), hid, role)
            yield session
