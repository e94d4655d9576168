"""``[tool.hotelbot.rls-check]``: what the checker treats as the tenant, and what was reviewed.

Every name the checker relies on comes from here, so it works on any multi-tenant
PostgreSQL schema, not only hotelbot's. Defaults are hotelbot's own values, including
the reviews (hash pins) of hotelbot's SECURITY DEFINER functions: an installed copy run
outside a checkout checks the same things. A project's ``pyproject.toml`` section
replaces a default key by key; ``non-tenant`` and ``reviewed`` entries are added to the
built-in ones.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotelbot_cli.db.tenant_cache import VERIFIED_TENANTS
from hotelbot_cli.errors import UsageError


@dataclass(frozen=True)
class Review:
    """A SECURITY DEFINER (or LEAKPROOF, or NOTIFY-ing) function someone read and accepted."""

    function: str  # regprocedure text, e.g. hotelbot_hotel_id_for_whatsapp(text)
    sha256: str  # of its definition, see hotelbot_cli.rls.code_paths.definition_hash
    review: str


@dataclass(frozen=True)
class NonTenant:
    """A reachable object that holds no tenant data, with the reason."""

    object: str  # relation name, schema-qualified unless in the current schema
    reason: str


_VERIFIER_REVIEW = (
    "returns the bound hotel only when its signature verifies and has not expired; it reads"
    " the signing key's pads but never returns them or a signature (reviewed for 013)"
)
_REMEMBER_REVIEW = (
    "stores the digest of a signature only after verifying its MAC and expiry; returns"
    " nothing (reviewed for 013)"
)

#: hotelbot's reviewed functions, as the head revision leaves them. The lookup reads one
#: active hotel's id by WhatsApp number, through an owner policy open only while the
#: function runs. The signature's verifier and registrar run as a role that can read the
#: signing key: each appears twice, owned by hotelbot_tenant_verifier or, where 009 could
#: not hand them over, by the owner of the tenant root.
BUILTIN_REVIEWS = (
    Review(
        "hotelbot_hotel_id_for_whatsapp(text)",
        "e2ddf34f4592c66dec6ddef264fb31e11b041ff6a801648727abbc956324c5a8",  # any schema
        "returns only the id of an active hotel for a WhatsApp number; the owner policy it "
        "opens (hotels_whatsapp_lookup) is on only inside the function (reviewed for 007)",
    ),
    Review(
        "hotelbot_current_hotel_id()",
        "c0cfd886787e703bed7f06676ed87d543382fabf483cf1892814f5d7fd89de1d",
        _VERIFIER_REVIEW,
    ),
    Review(
        "hotelbot_current_hotel_id()",
        "73a9e1e908420d08e2fc03f4bfcec9c680cbbc721ad2afdd8b4720bcc53229ad",
        _VERIFIER_REVIEW,
    ),
    Review(
        "hotelbot_private.remember_tenant(uuid,text)",
        "f3c717f8b462eae9e604996aef1a21f765fa1e426ee7ea6715c10bb849292019",
        _REMEMBER_REVIEW,
    ),
    Review(
        "hotelbot_private.remember_tenant(uuid,text)",
        "3d6b904ee101f848ef7ff6aefe651c1b2b294d59cb1dd1380e6f9f78af68a1a0",
        _REMEMBER_REVIEW,
    ),
)


#: hotelbot's own non-tenant objects (the canary search still checks the claim).
BUILTIN_NON_TENANT = (
    NonTenant(
        VERIFIED_TENANTS,
        "SHA-256 digests of verified tenant signatures and their expiry, read by the tenant "
        "policies: a digest shows neither hotel nor signature (revision 013)",
    ),
)


@dataclass(frozen=True)
class RlsConfig:
    """Names of the tenant mechanism; declared non-tenant objects; reviewed functions."""

    tenant_column: str = "hotel_id"
    tenant_setting: str = "app.current_hotel_id"
    app_role: str = "app_user"
    root_table: str = "hotels"
    root_column: str = "id"
    non_tenant: tuple[NonTenant, ...] = ()
    reviewed: tuple[Review, ...] = field(default=BUILTIN_REVIEWS)

    def reviews_for(self, signature: str) -> tuple[Review, ...]:
        """Every review of ``signature`` (a function may have several reviewed forms)."""
        return tuple(r for r in self.reviewed if r.function == signature)

    def declared(self, name: str) -> NonTenant | None:
        """The project's declaration of ``name``, else hotelbot's own (always known)."""
        return next((n for n in (*self.non_tenant, *BUILTIN_NON_TENANT) if n.object == name), None)


_KEYS = {
    "tenant-column": "tenant_column",
    "tenant-setting": "tenant_setting",
    "app-role": "app_role",
    "root-table": "root_table",
    "root-column": "root_column",
}


def section(pyproject: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The raw ``[tool.hotelbot.rls-check]`` table of ``pyproject`` (./pyproject.toml)."""
    path = pyproject or Path.cwd() / "pyproject.toml"
    if not path.is_file():
        return path, {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    found = data.get("tool", {}).get("hotelbot", {}).get("rls-check", {})
    if not isinstance(found, dict):
        raise UsageError(f"{path}: [tool.hotelbot.rls-check] must be a table")
    return path, found


def _entries(path: Path, raw: Any, key: str, needs: tuple[str, ...]) -> list[dict[str, str]]:
    items = raw.get(key, [])
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and all(isinstance(i.get(n), str) and i.get(n) for n in needs)
        for i in items
    ):
        raise UsageError(
            f"{path}: every [tool.hotelbot.rls-check] {key} entry needs {', '.join(needs)}",
            "e.g. " + key + " = [{" + ", ".join(n + ' = "…"' for n in needs) + "}]",
        )
    return items


def load_config(pyproject: Path | None = None, **overrides: Any) -> RlsConfig:
    """The configuration: built-in defaults, then pyproject, then explicit ``overrides``."""
    path, raw = section(pyproject)
    values: dict[str, Any] = {}
    for key, attr in _KEYS.items():
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                raise UsageError(f"{path}: [tool.hotelbot.rls-check] {key} must be a name")
            values[attr] = raw[key]
    values["non_tenant"] = tuple(
        NonTenant(i["object"], i["reason"])
        for i in _entries(path, raw, "non-tenant", ("object", "reason"))
    )
    mine = [
        Review(i["function"], i["sha256"], i["review"])
        for i in _entries(path, raw, "reviewed", ("function", "sha256", "review"))
    ]
    names = {r.function for r in mine}
    values["reviewed"] = (*mine, *(r for r in BUILTIN_REVIEWS if r.function not in names))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RlsConfig(**values)
