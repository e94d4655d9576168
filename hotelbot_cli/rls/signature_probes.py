"""The probes of a signed tenant: SQL inside tenant A's transaction against the signature.

What SQL injected into a tenant's transaction can do when the library signs its tenant:
name another hotel by hand, use an expired signature (also one whose digest the cache of
verified signatures still holds), plant a made-up one in that cache (revision 013).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from hotelbot_cli.db.tenant_cache import REMEMBER_TENANT, VERIFIED_TENANTS, registered_signatures
from hotelbot_cli.rls.prober import Prober
from hotelbot_cli.rls.report import CheckResult, Status, probe_result

#: How long ago the probe's expired signature ran out: past any clock skew.
EXPIRED_BY_S = 3600


def _forged_status(prober: Prober, *, opened: bool) -> Status:
    """A forgery that opened B's rows fails where the database signs its tenants (revision
    009): the library binds every tenant signed, so a policy that trusts a setting lets SQL
    injected into a request read another hotel. A schema without signed tenants has no
    defence to compare with; there it is a warning (honest code never forges its tenant)."""
    return "pass" if not opened else "fail" if prober.signs else "warn"


def signature_probes(
    prober: Prober,
    display: str,
    a: str,
    b: str,
    *,
    query: sql.Composed,
    params: list[Any],
    reads_cache: bool,
) -> list[CheckResult]:
    """What SQL inside a tenant's transaction can do against the signed tenant: name
    another hotel, use an expired signature, plant a made-up one in the cache.

    ``query`` counts tenant B's probe row (``params`` its key); ``reads_cache``: every
    policy that admits the app role reads the cache of verified signatures (revision 013),
    so the table has chosen signed tenants."""
    results: list[CheckResult] = []

    def _add(check_id: str, ok: bool, detail: str, fix: str) -> None:
        results.append(probe_result(check_id, display, ok, detail, fix))

    forged = prober.run(a, query, params, forge=b)
    seen = forged.count
    status = _forged_status(prober, opened=seen > 0)
    results.append(
        CheckResult(
            "probe-forged-tenant",
            "probe",
            display,
            status,
            f"tenant A's transaction setting {prober.cfg.tenant_setting} to tenant B by"
            f" hand sees {seen} of B's row(s)"
            + (
                "; this database signs its tenants, so this table's policy trusts a tenant"
                " any SQL in the transaction can set"
                if status == "fail"
                else ""
            ),
            None
            if seen == 0
            else f"compare the policies on {display} with the signature-verifying"
            " (SELECT hotelbot_current_hotel_id()) (revision 009), not the bare setting",
        )
    )
    results += _forged_settings(prober, display, a, b, query=query, params=params)
    if seen == 0 and forged.error is None:
        # The policies verify signatures: a signature of B's own that has expired (one
        # that leaked an hour ago, say) must open nothing either.
        stale = prober.run(b, query, params, ttl=-EXPIRED_BY_S)
        opened = stale.count
        _add(
            "probe-expired-signature",
            opened == 0,
            f"tenant B bound with its own signature, expired {EXPIRED_BY_S} s ago,"
            f" sees {opened} of B's row(s)",
            "hotelbot_current_hotel_id() must return NULL for an expired signature:"
            " re-create it with revision 011's body (its expires < now() test)",
        )
    caches = reads_cache and registered_signatures(prober.conn) is not None
    if caches and not prober.distributed and seen == 0 and forged.error is None:
        # The same expired signature, its digest still in the cache: stored by the verifier
        # while it was valid, not yet pruned (only a registration prunes). A policy that
        # finds the digest but not its expiry lets a leaked signature live on.
        kept = prober.run(b, query, params, ttl=-EXPIRED_BY_S, cached=True)
        _add(
            "probe-expired-cached-signature",
            kept.count == 0,
            f"tenant B bound with its own signature, expired {EXPIRED_BY_S} s ago and still in"
            f" the cache of verified signatures, sees {kept.count} of B's row(s)",
            f"the policy on {display} must find the digest only while it is unexpired"
            f" (v.expires_at >= now(), revision 013), else ask hotelbot_current_hotel_id()",
        )
    if caches:
        # Where every admitting policy reads the cache of verified signatures (013), a
        # made-up signature opens nothing, whatever the forging probe found: SQL in A's
        # transaction writes one for B into the cache, or hands it to the registering
        # function, then binds B with it. It fails where the forging probe only warns: a
        # policy that reads the cache has chosen signed tenants.
        planted = prober.run(a, query, params, plant=b)
        _add(
            "probe-planted-signature",
            planted.count == 0,
            "tenant A's transaction planting a made-up signature of tenant B in the"
            f" cache of verified signatures, then binding B with it, sees"
            f" {planted.count} of B's row(s)",
            f"REVOKE INSERT, UPDATE ON {VERIFIED_TENANTS} FROM the app role and every role it"
            f" can become; {REMEMBER_TENANT}() must store only a signature that verifies"
            f" (revision 013's body); the policy on {display} must find the digest of the bound"
            " hotel and signature, else ask hotelbot_current_hotel_id() (revision 013)",
        )
    return results


def _forged_settings(
    prober: Prober, display: str, a: str, b: str, *, query: sql.Composed, params: list[Any]
) -> list[CheckResult]:
    """Tenant A's transaction setting each other setting that policies or functions read
    (an ``app.is_admin``, an ``app.all_hotels``) to a switch, a wildcard, a value the code
    compares it with, or B's id: none may show B's row. Nothing to probe (no result) where
    nothing else is read."""
    settings = prober.other_settings()
    if not settings:
        return []
    opened = []
    for name, values in settings.items():
        for value in (*values, b):
            outcome = prober.run(a, query, params, settings=((name, value),))
            if outcome.count:
                opened.append(f"{name} = {'<B>' if value == b else repr(value)}")
    status = _forged_status(prober, opened=bool(opened))
    return [
        CheckResult(
            "probe-forged-setting",
            "probe",
            display,
            status,
            f"tenant A's transaction setting {', '.join(opened)} by hand sees B's row"
            if opened
            else f"tenant A's transaction setting {', '.join(settings)} by hand sees none of"
            " B's rows",
            None
            if not opened
            else f"a policy on {display}, or a function it calls, trusts a setting any SQL in"
            " the transaction can set: bind it to the signed tenant"
            " (SELECT hotelbot_current_hotel_id()) only",
        )
    ]
