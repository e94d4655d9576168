"""No spelling of a connection string shows its password; tenant settings parse strictly."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotelbot_cli.db.tenant import sign, tenant_binding, tenant_statements
from hotelbot_cli.errors import ConfigError, UsageError
from hotelbot_cli.settings import (
    Settings,
    display_url,
    normalize_url,
    redact_text,
    redact_url,
    tenant_key_from_env,
    tenant_ttl_from_env,
)

SECRET = "Sup3r-s3cret"


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://bot:{SECRET}@db:5432/hotelbot",
        f"postgresql://bot:{SECRET}@with@at@db/hotelbot",
        f"postgresql://db/hotelbot?user=bot&password={SECRET}&sslmode=require",
        f"postgresql://db/hotelbot?PASSWORD={SECRET}",
        f"host=db port=5432 user=bot password={SECRET} dbname=hotelbot",
        f"host=db password = '{SECRET} with space' dbname=x",
        f"host=db password={SECRET}\\ esc dbname=x",
        f"error: DATABASE_URL 'postgres://bot:{SECRET}@db:x/y' is malformed",
        f"sslpassword={SECRET}",
    ],
)
def test_redact_text_hides_every_spelling(text: str) -> None:
    shown = redact_text(text)
    assert SECRET not in shown and "***" in shown


def test_parsed_urls_are_shown_as_written_without_passwords() -> None:
    socket = normalize_url("postgresql://postgres:@/hotelbot?host=/tmp/pg&port=5432")
    assert redact_url(socket) == "postgresql://postgres@/hotelbot?host=/tmp/pg&port=5432"


def test_redact_url_hides_query_passwords_of_parsed_urls() -> None:
    url = normalize_url(f"postgresql://bot:{SECRET}@db/x?password={SECRET}")
    assert SECRET not in redact_url(url)
    assert redact_url(f"postgresql://bot:{SECRET}@db/x") == "postgresql://bot:***@db/x"


def test_malformed_urls_never_echo_the_password() -> None:
    for raw in (f"postgresql://bot:{SECRET}@db:notaport/x", f"host=db password={SECRET}"):
        with pytest.raises(ConfigError) as err:
            normalize_url(raw)
        assert SECRET not in str(err.value)


def test_tenant_key_and_ttl_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTELBOT_TENANT_KEY", raising=False)
    monkeypatch.delenv("HOTELBOT_TENANT_TTL", raising=False)
    assert tenant_key_from_env() is None and tenant_ttl_from_env() == 300
    monkeypatch.setenv("HOTELBOT_TENANT_KEY", "ab" * 32)
    monkeypatch.setenv("HOTELBOT_TENANT_TTL", "60")
    assert tenant_key_from_env() == b"\xab" * 32 and tenant_ttl_from_env() == 60
    for bad in ("zz", "abcd"):
        monkeypatch.setenv("HOTELBOT_TENANT_KEY", bad)
        with pytest.raises(ConfigError, match="HOTELBOT_TENANT_KEY"):
            tenant_key_from_env()


def test_prepare_threshold_and_app_url_settings() -> None:
    assert Settings.from_env({}).prepare_threshold == 5
    assert Settings.from_env({"HOTELBOT_POOL": "null"}).prepare_threshold is None
    assert Settings.from_env({"HOTELBOT_PREPARE_THRESHOLD": "none"}).prepare_threshold is None
    assert Settings.from_env({"HOTELBOT_PREPARE_THRESHOLD": "2"}).prepare_threshold == 2
    url = "postgresql://bot@db/x"
    assert Settings.from_env({"HOTELBOT_APP_DATABASE_URL": f" {url} "}).app_database_url == url


def test_tenant_binding_is_one_constant_statement_with_a_valid_signature() -> None:
    hotel = uuid.uuid4()
    key = b"k" * 32
    (sql_text, params), role = tenant_binding(hotel, "app_user", key=key, ttl=100)
    # One statement whose text never changes (psycopg prepares it), the values as parameters.
    assert sql_text == tenant_binding(uuid.uuid4(), key=b"j" * 32)[0][0]
    assert params is not None and params["hotel"] == str(hotel)
    expires = int(params["signature"].split(":")[0])
    assert params["signature"] == sign(hotel, expires, key)
    assert role == ('SET LOCAL ROLE "app_user"', None)
    # The same hotel within half the signature's life reuses the signature.
    assert tenant_binding(hotel, key=key, ttl=100)[0][1] == params


def test_a_binding_is_remade_after_half_its_life_and_registered_once_per_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hotelbot_cli.db.tenant as tenant

    hotel, key = uuid.uuid4(), b"m" * 32
    clock = [1_000_010.0]  # 10 s into a 50 s slot: valid until the end of the next one
    monkeypatch.setattr(tenant.time, "time", lambda: clock[0])
    first = tenant_binding(hotel, key=key, ttl=100)[0][1]
    assert first is not None and first["signature"] == sign(hotel, 1_000_100, key)
    clock[0] += 39  # more than half the life left: the same signature
    assert tenant_binding(hotel, key=key, ttl=100)[0][1] == first
    assert tenant_binding(str(hotel), key=key, ttl=100)[0][1] == first  # the id's text too
    clock[0] += 1  # half gone: signed again, for the slot after the next
    renewed = tenant_binding(hotel, key=key, ttl=100)[0][1]
    assert renewed is not None and renewed["signature"] == sign(hotel, 1_000_150, key)
    # Another key never reuses this key's signature.
    assert tenant_binding(hotel, key=b"n" * 32, ttl=100)[0][1] != renewed
    # A connection registers each signature once: the statement comes last, then not again.
    registered: set[str] = set()
    with_registration = tenant_binding(hotel, "app_user", key=key, ttl=100, registered=registered)
    assert [sql.split("(")[0] for sql, _ in with_registration][1:] == [
        'SET LOCAL ROLE "app_user"',
        "SELECT hotelbot_private.remember_tenant",
    ]
    assert registered == {renewed["signature"]}
    assert len(tenant_binding(hotel, "app_user", key=key, ttl=100, registered=registered)) == 2
    # What is remembered is never handed out to be changed.
    tenant_binding(hotel, key=key, ttl=100).append(("SELECT 1", None))
    assert len(tenant_binding(hotel, key=key, ttl=100)) == 1
    with pytest.raises(UsageError):
        tenant_binding([str(hotel)], key=key)  # unhashable, and not a hotel id
    # No tenant: nothing to sign, so a malformed signing setting cannot get in the way.
    monkeypatch.setenv("HOTELBOT_TENANT_TTL", "soon")
    assert [sql for sql, _ in tenant_binding(None, "app_user")][1] == 'SET LOCAL ROLE "app_user"'
    with pytest.raises(ConfigError, match="HOTELBOT_TENANT_TTL"):
        tenant_binding(hotel, key=key)


@given(now=st.integers(0, 2**40), ttl=st.integers(1, 10**6))
def test_a_signature_lives_between_half_its_ttl_and_its_ttl(now: int, ttl: int) -> None:
    from hotelbot_cli.db.tenant import expiry

    life = expiry(now, ttl) - now
    assert ttl // 2 < life <= ttl or (ttl < 2 and life == ttl)
    # Every signer in the same slot agrees on it.
    if ttl >= 2:
        slot_start = now - now % (ttl // 2)
        assert expiry(slot_start, ttl) == expiry(slot_start + ttl // 2 - 1, ttl)


def test_tenant_statements_render_the_binding_as_literals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hotel = uuid.uuid4()
    key = b"k" * 32
    first = tenant_statements(hotel, "app_user", key=key, ttl=100)[0]
    assert first.startswith(f"SELECT FROM set_config('app.current_hotel_id', '{hotel}', true)")
    assert "%(" not in first
    # Citus: SET LOCALs (propagated to the workers), literals validated and quoted.
    statements = tenant_statements(hotel, "app_user", key=key, ttl=100, propagate=True)
    assert statements[0] == f"SET LOCAL app.current_hotel_id = '{hotel}'"
    value = statements[1].split("'")[1]
    assert value == sign(hotel, int(value.split(":")[0]), key)
    assert statements[2] == 'SET LOCAL ROLE "app_user"'
    assert tenant_statements(None, 'we"ird', propagate=True) == [
        "SET LOCAL app.current_hotel_id = ''",
        "SET LOCAL app.tenant_signature = ''",
        'SET LOCAL ROLE "we""ird"',
    ]
    with pytest.raises(UsageError):
        tenant_statements("1' OR true --", key=key)
    monkeypatch.delenv("HOTELBOT_TENANT_KEY", raising=False)
    signed_on_server = tenant_statements(hotel, ttl=100)[0]
    assert f"hotelbot_private.sign_tenant('{hotel}'::uuid, " in signed_on_server
    with pytest.raises(ConfigError, match="Citus"):
        tenant_binding(hotel, propagate=True)


# -- a raw "@" in the password (issue 10): the host is the part after the LAST "@" ----------


@pytest.mark.parametrize(
    ("raw", "password", "host", "port", "database"),
    [
        ("postgresql://u:p@ss@nohost:1/x", "p@ss", "nohost", 1, "x"),
        ("postgresql://u:p%40ss@nohost:1/x", "p@ss", "nohost", 1, "x"),
        ("postgresql://u:a@b:c@nohost/x", "a@b:c", "nohost", None, "x"),
        ("postgresql://u:s3:cr/et@nohost:1/x", "s3:cr/et", "nohost", 1, "x"),
        ("postgresql://u:pa ss@nohost:1/x", "pa ss", "nohost", 1, "x"),
        ("postgresql://u:p@h/db?application_name=a@b", "p", "h", None, "db"),
    ],
)
def test_a_raw_at_sign_stays_in_the_password(
    raw: str, password: str, host: str, port: int | None, database: str
) -> None:
    url = normalize_url(raw)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u",
        password,
        host,
        port,
        database,
    )
    assert redact_url(url).startswith("postgresql://u:***@" + host)


@pytest.mark.parametrize(
    ("raw", "host", "port", "database", "query"),
    [
        ("postgresql://h/db?user=a@b", "h", None, "db", {"user": "a@b"}),
        ("postgresql://h:5432/db?user=a@b", "h", 5432, "db", {"user": "a@b"}),
        ("postgresql://bot@/db?host=/run/p@g", None, None, "db", {"host": "/run/p@g"}),
    ],
)
def test_an_at_sign_after_the_host_is_not_user_info(
    raw: str, host: str | None, port: int | None, database: str, query: dict[str, str]
) -> None:
    url = normalize_url(raw)
    assert (url.host, url.port, url.database, dict(url.query)) == (host, port, database, query)


def test_malformed_urls_name_the_variable_and_hide_the_password() -> None:
    for raw in (
        f"postgresql://u:{SECRET}@x@nohost:abc/x",
        f"postgresql://u:{SECRET} x@nohost:abc/x",
        f"postgresql://u:{SECRET}/x@nohost:abc/x",
    ):
        with pytest.raises(ConfigError) as err:
            normalize_url(raw, "HOTELBOT_APP_DATABASE_URL")
        shown = str(err.value)
        assert (
            SECRET not in shown and "HOTELBOT_APP_DATABASE_URL 'postgresql://u:***@nohost" in shown
        )


# -- property: whatever the password, no spelling shows it and the URL parses to it ----------

#: Printable ASCII; a raw (unencoded) password may not hold white space, "%" (it starts an
#: escape), or a "/" or "?" after digits only (``u:12/x@h`` is host u, port 12, as in libpq).
_PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
_RAW = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="%/?"))


@settings(max_examples=300, deadline=None)
@given(password=st.text(_PRINTABLE | st.just(" ") | st.just("é"), min_size=1))
def test_any_password_percent_encoded_round_trips_and_never_shows(password: str) -> None:
    url = normalize_url(f"postgresql://u:{quote(password, safe='')}@nohost:1/x")
    assert (url.password, url.host, url.port) == (password, "nohost", 1)
    assert redact_url(url) == "postgresql://u:***@nohost:1/x"
    query = f"postgresql://nohost:1/x?sslmode=disable&password={quote(password, safe='')}"
    assert redact_text(query) == "postgresql://nohost:1/x?sslmode=disable&password=***"
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    dsn = f"host=nohost password='{escaped}' dbname=x"
    assert redact_text(dsn) == display_url(dsn) == "host=nohost password=*** dbname=x"


@settings(max_examples=300, deadline=None)
@given(password=_RAW.filter(bool))
def test_any_raw_password_stays_whole_and_never_shows(password: str) -> None:
    raw = f"postgresql://u:{password}@nohost:1/x"
    url = normalize_url(raw)
    assert (url.password, url.host, url.port, url.database) == (password, "nohost", 1, "x")
    assert redact_text(raw) == display_url(raw) == "postgresql://u:***@nohost:1/x"
    with pytest.raises(ConfigError) as err:  # malformed (bad port): the message hides it too
        normalize_url(raw.replace(":1/", ":port/"))
    assert "'postgresql://u:***@nohost:port/x' is malformed" in str(err.value)
