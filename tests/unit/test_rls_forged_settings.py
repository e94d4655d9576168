"""Which settings the forging probe sets, and to what (pure: no database)."""

from __future__ import annotations

from hotelbot_cli.rls.prober import FORGED_VALUES, MAX_FORGED_VALUES, read_settings

OWN = {"app.current_hotel_id", "app.tenant_signature"}


def test_the_tenant_s_own_settings_are_left_to_the_other_probes() -> None:
    text = (
        "(hotel_id = (NULLIF(current_setting('app.current_hotel_id'::text, true), ''::text))::uuid)"
    )
    assert read_settings([text], OWN) == {}


def test_every_literal_of_the_code_that_reads_a_setting_is_a_value_to_forge() -> None:
    policy = "(current_setting('App.Mode'::text, true) = 'maintenance-window'::text)"
    body = "SELECT coalesce(current_setting('app.role', true), '') IN ('it''s me', 'support')"
    found = read_settings([policy, body, "SELECT 'unrelated'"], OWN)
    assert set(found) == {"app.mode", "app.role"}  # folded to lower case, as PostgreSQL does
    assert found["app.mode"][: len(FORGED_VALUES)] == list(FORGED_VALUES)
    assert "maintenance-window" in found["app.mode"] and "app.mode" not in found["app.mode"]
    assert {"it's me", "support"} <= set(found["app.role"])
    assert "unrelated" not in found["app.role"] + found["app.mode"]


def test_values_are_capped_per_setting() -> None:
    body = "current_setting('app.x') IN (" + ", ".join(f"'v{i}'" for i in range(100)) + ")"
    assert len(read_settings([body], OWN)["app.x"]) == MAX_FORGED_VALUES


def test_a_setting_read_with_show_is_forged_too() -> None:
    body = "BEGIN EXECUTE 'SHOW app.support_mode' INTO v; RETURN v = 'on'; END"
    assert set(read_settings([body, 'SHOW "App.Quoted"'], OWN)) == {
        "app.support_mode",
        "app.quoted",
    }


def test_a_built_in_setting_is_forged_when_the_app_role_may_set_it() -> None:
    body = (
        "SELECT current_setting('application_name') = 'support-console'"
        " AND current_setting('server_version_num')::int > 0; -- show the console"
    )
    found = read_settings([body], OWN, settable={"application_name", "search_path"})
    assert set(found) == {"application_name"}  # not the read-only one, nor prose after SHOW
    assert "support-console" in found["application_name"]
    assert read_settings([body], OWN) == {}  # nothing settable given: custom settings only
