"""No spelling of a connection string shows its password; tenant settings parse strictly."""

from __future__ import annotations

import uuid

import pytest

from hotelbot_cli.db.tenant import sign, tenant_binding, tenant_statements
from hotelbot_cli.errors import ConfigError, UsageError
from hotelbot_cli.settings import (
    Settings,
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


def test_tenant_statements_render_the_binding_as_literals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hotel = uuid.uuid4()
    key = b"k" * 32
    first = tenant_statements(hotel, "app_user", key=key, ttl=100)[0]
    assert first.startswith(f"SELECT set_config('app.current_hotel_id', '{hotel}', true),")
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
