"""`db distribute`'s plan, built from a described cluster state (no Citus needed)."""

from __future__ import annotations

import pytest

from hotelbot_cli.citus.cluster_state import (
    ClusterState,
    ForeignKey,
    NotDistributable,
    Policy,
    refusal,
)
from hotelbot_cli.citus.plan import build_plan
from hotelbot_cli.citus.policy_form import function_form
from hotelbot_cli.cli.db import render_plan
from hotelbot_cli.db import sentiment
from hotelbot_cli.models import TENANT_TABLES

POLICY = (
    "((hotel_id = ( SELECT (NULLIF(current_setting('app.current_hotel_id'::text, true),"
    " ''::text))::uuid AS \"nullif\")) AND (hotel_id = ( SELECT hotelbot_current_hotel_id()"
    " AS hotelbot_current_hotel_id)))"
)
FKS = (
    ForeignKey(
        "guests", "fk_guests_hotel_id_hotels", "FOREIGN KEY (hotel_id) REFERENCES hotels(id)"
    ),
    ForeignKey(
        "conversations",
        "fk_conversations_hotel_id_guest_id_guests",
        "FOREIGN KEY (hotel_id, guest_id) REFERENCES guests(hotel_id, id) ON DELETE CASCADE",
    ),
)


def _state(**changes: object) -> ClusterState:
    base = {
        "database": "hotelbot",
        "citus_version": "13.2-1",
        "is_coordinator": True,
        "workers": ("w1:5432", "w2:5432"),
        "foreign_keys": FKS,
        "policies": (Policy("guests", "guests_tenant_isolation", POLICY, POLICY),),
        "app_login": {"w1:5432": True},
    }
    base.update(changes)
    return ClusterState(**base)  # type: ignore[arg-type]


def test_function_form_unwraps_only_the_initplan_wrapper() -> None:
    assert function_form(POLICY) == (
        "((hotel_id = ((NULLIF(current_setting('app.current_hotel_id'::text, true),"
        " ''::text))::uuid)) AND (hotel_id = (hotelbot_current_hotel_id())))"
    )
    reads = "(hotel_id IN ( SELECT h.id FROM hotels h))"
    assert function_form(reads) == reads  # a sub-select that reads a table is Citus' to refuse
    assert function_form("is_active") == "is_active"


CACHED = (
    "(hotel_id = ( SELECT COALESCE(( SELECT (NULLIF(current_setting('app.current_hotel_id'::text,"
    " true), ''::text))::uuid AS \"nullif\"\n WHERE (EXISTS ( SELECT 1\n"
    " FROM hotelbot_private.verified_tenants v\n WHERE ((v.digest = ( SELECT sha256(convert_to((("
    "current_setting('app.current_hotel_id'::text, true) || ':'::text) ||"
    " current_setting('app.tenant_signature'::text, true)), 'UTF8'::name)) AS sha256)) AND"
    ' (v.expires_at >= now()))))), hotelbot_current_hotel_id()) AS "coalesce"))'
)


def test_function_form_keeps_only_the_verifier_of_a_cached_policy() -> None:
    """A shard may not read the cache: the verifier, which the cache only remembers, stays."""
    assert function_form(CACHED) == "(hotel_id = (hotelbot_current_hotel_id()))"
    other = "(hotel_id = COALESCE(( SELECT h.id FROM hotels h), hotelbot_current_hotel_id()))"
    assert function_form(other) == other  # not the cache: Citus' to refuse


def test_a_fresh_cluster_gets_every_step_in_order() -> None:
    plan = build_plan(_state())
    actions = [s.action for s in plan.steps]
    assert actions[:2] == ["setting", "policy"]
    assert actions.index("drop-foreign-key") < actions.index("reference")
    assert actions.index("reference") < actions.index("distribute")
    assert actions.index("truncate-local") < actions.index("add-foreign-key")
    assert actions[-1] == "worker-key" and plan.distributes
    distributed = [s.sql for s in plan.steps if s.action == "distribute"]
    assert "colocate_with => 'none'" in distributed[0]
    assert all("colocate_with => 'guests'" in sql for sql in distributed[1:])
    assert len(distributed) == len(TENANT_TABLES)
    # the sentiment counts' triggers go before messages is distributed, the counts with them
    dropped = [s.target for s in plan.steps if s.action == "drop-trigger"]
    assert dropped == list(sentiment.TRIGGERS)
    assert actions.index("empty-counts") < actions.index("distribute")
    assert "SELECT" not in next(s.sql for s in plan.steps if s.action == "policy")
    assert any("w2:5432" in note and "LOGIN" in note for note in plan.operator)
    assert not any("w1:5432" in note for note in plan.operator)
    lines = render_plan(plan, dry_run=True)
    assert "would run" in lines[0] and len(lines) == len(plan.steps) + 1


def test_a_distributed_cluster_only_refreshes_the_key() -> None:
    done = dict.fromkeys(TENANT_TABLES, "distributed")
    state = _state(
        propagate_set_commands="local",
        citus_tables={"hotels": "reference", **done},
        policies=(Policy("guests", "guests_tenant_isolation", function_form(POLICY), None),),
    )
    plan = build_plan(state)
    assert [s.action for s in plan.steps] == ["worker-key"] and not plan.distributes
    assert "already distributed" in render_plan(plan, dry_run=False)[-1]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"citus_version": None}, "not a Citus database"),
        ({"is_coordinator": False}, "not the Citus coordinator"),
        ({"workers": ()}, "no active worker"),
        ({"has_key": False}, "tenant key is missing"),
    ],
)
def test_refusals(changes: dict[str, object], says: str) -> None:
    state = _state(**changes)
    assert says in (refusal(state) or "")
    with pytest.raises(NotDistributable, match=says):
        build_plan(state)
