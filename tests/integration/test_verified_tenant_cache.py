"""The cache of verified signatures (revision 013): the bot's signature is checked once,
then looked up; what is not in the cache still goes through the verifier, and nothing the
app role can run puts a signature there that the verifier would refuse."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest
from rls_support import Tenant, signing_key_of
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from hotelbot_cli.db.engine import session_factory
from hotelbot_cli.db.tenant import sign, tenant_binding, tenant_session
from hotelbot_cli.settings import libpq_url

CACHE = "hotelbot_private.verified_tenants"


def _cached(db_url: URL) -> int:
    with psycopg.connect(libpq_url(db_url)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {CACHE}").fetchone()
    return row[0] if row else -1


def _verifier_calls(session: Any) -> int:
    """Calls of the verifier so far in this transaction (track_functions is on)."""
    return int(
        session.execute(
            text(
                "SELECT coalesce(pg_stat_get_xact_function_calls("
                "'hotelbot_current_hotel_id()'::regprocedure), 0)"
            )
        ).scalar()
    )


@pytest.fixture
def tracked(db_url: URL) -> URL:
    """Function call counts for every session of this database (a superuser setting)."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        database = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{database}\" SET track_functions = 'pl'")
    return db_url


def test_a_signature_is_registered_once_then_looked_up(
    bot: Engine, tracked: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, b = two_hotels
    factory = session_factory(bot)
    before = _cached(tracked)
    with tenant_session(a.hotel_id, factory) as s:  # registers A's signature
        assert {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))} == {a.hotel_id}
    assert _cached(tracked) == before + 1
    for _ in range(3):
        with tenant_session(a.hotel_id, factory) as s:
            assert s.execute(text("SELECT count(*) FROM guests")).scalar() == 1
            others = text("SELECT count(*) FROM messages WHERE hotel_id <> :a")
            assert s.execute(others, {"a": a.hotel_id}).scalar() == 0
            assert _verifier_calls(s) == 0  # the cache answered, the verifier never ran
    assert _cached(tracked) == before + 1  # same connection, same signature: no new row
    with tenant_session(b.hotel_id, factory) as s:
        assert {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))} == {b.hotel_id}
    assert _cached(tracked) == before + 2


def test_without_the_cache_the_verifier_answers_the_same(
    bot: Engine, tracked: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, b = two_hotels
    factory = session_factory(bot)
    with tenant_session(a.hotel_id, factory) as s:
        s.execute(text("SELECT 1"))
    with psycopg.connect(libpq_url(tracked), autocommit=True) as conn:
        conn.execute(f"DELETE FROM {CACHE}")  # a vacuumed, restored or other database
    with tenant_session(a.hotel_id, factory) as s:  # the connection believes it registered
        assert {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))} == {a.hotel_id}
        assert _verifier_calls(s) == 1
        s.execute(text(f"SELECT set_config('app.current_hotel_id', '{b.hotel_id}', true)"))
        assert s.execute(text("SELECT count(*) FROM guests")).scalar() == 0


def test_a_registration_rolled_back_leaves_the_tenant_correct(
    bot: Engine, db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_hotels
    factory = session_factory(bot)
    with pytest.raises(RuntimeError), tenant_session(a.hotel_id, factory):
        raise RuntimeError("the request failed")
    assert _cached(db_url) == 0
    with tenant_session(a.hotel_id, factory) as s:
        assert {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))} == {a.hotel_id}


@pytest.mark.parametrize(
    "case",
    ["wrong key", "expired", "other hotel's", "garbage", "read-only transaction"],
)
def test_the_registering_function_stores_only_what_verifies(
    bot_url: URL, db_url: URL, two_hotels: tuple[Tenant, Tenant], case: str
) -> None:
    a, b = two_hotels
    key = signing_key_of(db_url)
    now = int(time.time())
    hotel, signature = a.hotel_id, sign(uuid.UUID(a.hotel_id), now + 300, key)
    if case == "wrong key":
        signature = sign(uuid.UUID(a.hotel_id), now + 300, b"x" * 32)
    elif case == "expired":
        signature = sign(uuid.UUID(a.hotel_id), now - 5, key)
    elif case == "other hotel's":
        hotel = b.hotel_id
    elif case == "garbage":
        signature = "garbage"
    with psycopg.connect(libpq_url(bot_url)) as conn:
        if case == "read-only transaction":
            conn.execute("SET TRANSACTION READ ONLY")
        row = conn.execute(
            "SELECT hotelbot_private.remember_tenant(%s::uuid, %s)", (hotel, signature)
        ).fetchone()
        conn.commit()
    assert row == (False,)
    assert _cached(db_url) == 0


def test_the_app_role_may_read_the_cache_but_never_write_it(
    bot_url: URL, db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    _, b = two_hotels
    digest = f"sha256(convert_to('{b.hotel_id}:1:0', 'UTF8'))"
    with psycopg.connect(libpq_url(bot_url), autocommit=True) as conn:
        conn.execute(f"SELECT count(*) FROM {CACHE}")
        for statement in (
            f"INSERT INTO {CACHE} VALUES ({digest}, now() + interval '1 hour')",
            f"UPDATE {CACHE} SET expires_at = now() + interval '1 year'",
            f"DELETE FROM {CACHE}",
            f"TRUNCATE {CACHE}",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_the_binding_registers_after_the_role_switch_and_only_once() -> None:
    key, hotel = b"k" * 32, str(uuid.uuid4())
    registered: set[str] = set()
    first = [sql for sql, _ in tenant_binding(hotel, "app_user", key=key, registered=registered)]
    again = [sql for sql, _ in tenant_binding(hotel, "app_user", key=key, registered=registered)]
    assert first[1] == 'SET LOCAL ROLE "app_user"'
    assert first[2].startswith("SELECT hotelbot_private.remember_tenant(")
    assert len(again) == 2 and len(registered) == 1
    without_cache = tenant_binding(hotel, "app_user", key=key, registered=None)
    forgotten = tenant_binding(None, "app_user", key=key, registered=set())
    assert not [s for s, _ in without_cache + forgotten if "remember" in s]


def test_a_new_key_empties_the_cache(
    bot: Engine, db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    """A rotated key voids the old signatures for the verifier; the cache must not vouch
    for them until they expire."""
    a, _ = two_hotels
    factory = session_factory(bot)
    with tenant_session(a.hotel_id, factory) as s:
        s.execute(text("SELECT 1 FROM guests"))
    assert _cached(db_url) == 1
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "UPDATE hotelbot_private.tenant_key SET key = sha256(key), ipad = sha256(ipad) || ipad,"
            " opad = sha256(opad) || opad"
        )
    assert _cached(db_url) == 0
    with tenant_session(a.hotel_id, factory) as s:  # still signed with the old key
        assert s.execute(text("SELECT count(*) FROM guests")).scalar() == 0


def test_a_function_of_another_shape_is_not_mistaken_for_the_cache(
    bot: Engine, db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    """A hotelbot_private.remember_tenant() the library does not know (other arguments):
    the library does not call it, and tenant sessions work through the verifier."""
    a, _ = two_hotels
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("DROP FUNCTION hotelbot_private.remember_tenant(uuid, text)")
        conn.execute(
            "CREATE FUNCTION hotelbot_private.remember_tenant(hotel text) RETURNS boolean"
            " LANGUAGE sql AS $$ SELECT false $$"
        )
    with tenant_session(a.hotel_id, session_factory(bot)) as s:
        assert {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))} == {a.hotel_id}
    assert _cached(db_url) == 0


def test_a_login_that_may_not_register_still_gets_its_tenant(
    bot: Engine, db_url: URL, two_hotels: tuple[Tenant, Tenant]
) -> None:
    """The registering function's grant revoked: the library does not call it (no
    'permission denied' in the bot's transaction) and the verifier answers."""
    a, _ = two_hotels
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "REVOKE EXECUTE ON FUNCTION hotelbot_private.remember_tenant(uuid, text) FROM app_user"
        )
    with tenant_session(a.hotel_id, session_factory(bot)) as s:
        assert {str(r[0]) for r in s.execute(text("SELECT hotel_id FROM guests"))} == {a.hotel_id}
    assert _cached(db_url) == 0
